"""The ``serve`` configuration: which map the viewer shows, where its points are, how it listens."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationError, model_validator

from soilnet.config import ConfigError, format_validation_error, parse_overrides, read_yaml
from soilnet.configbase import StrictModel


class ServeConfig(StrictModel):
    """The map viewer: its layers (a map's output folder or STAC), its sample points, its address."""

    map: str | None = Field(None, description="Output folder of a map job (holds stac/ and cog/); local path or s3://.")
    stac: str | None = Field(
        None, description="A STAC item, a folder of items, or a catalog/collection linking items; local or s3://."
    )
    points: str | None = Field(None, description="Points table (Parquet) drawn over the map; None draws none.")
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 inside a container).")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0 picks a free one).")
    max_points: int = Field(
        2000, ge=1, description="Points drawn one by one in the view; beyond this they are drawn as clusters."
    )
    cluster_px: int = Field(64, ge=8, le=512, description="Side of a cluster cell in screen pixels.")
    tile_px: int = Field(256, ge=64, le=1024, description="Side of a map tile in pixels.")
    percentiles: tuple[float, float] = Field(
        (2.0, 98.0), description="Percentiles of a continuous layer that span its colour scale."
    )
    max_classes: int = Field(
        16, ge=2, le=256, description="An integer layer with at most this many values is drawn as classes."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ServeConfig:
        if (self.map is None) == (self.stac is None):
            raise ValueError("serve: give exactly one of 'map' (a map output folder) or 'stac' (STAC item/folder)")
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"serve.percentiles {self.percentiles}: need 0 <= low < high <= 100")
        return self


def load_serve_config(
    path: str | os.PathLike[str] | None, overrides: Sequence[str], given: Mapping[str, Any]
) -> ServeConfig:
    """The ``serve`` section of a YAML file (or the whole file; none without ``path``), then ``field=value``
    overrides, then the values given as command-line options (taken as they are, not parsed as YAML)."""
    tree: dict[str, Any] = {}
    if path is not None:
        tree = read_yaml(path)
        tree = dict(tree.get("serve", tree))
    tree.update(parse_overrides(overrides))
    tree.update({k: v for k, v in given.items() if v is not None})
    try:
        return ServeConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{path or 'command line'} [serve]")) from exc
