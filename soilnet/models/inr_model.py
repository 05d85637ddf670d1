"""SoilNet's late fusion fed by an INR: predictions at any point of a window (the `miso` recipe).

The image branch is the LIIF embedding (`soilnet.models.inr`) of a query point instead of pooled
window features; climate (one series per window) and the head are SoilNet's, so the model
predicts whatever the head predicts (several targets, variances), at any list of points.
``forward`` predicts at the centre of pixel ``P // 2`` of each window: where a training window's
labelled point lies. A location encoder, when configured, serves the geo-contrastive training
terms only (MISO's prediction uses the image branch alone).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soilnet.models.config import LocationConfig
from soilnet.models.dense import cut_windows
from soilnet.models.encoder import ImageEncoder
from soilnet.models.fusion import SoilNetModel
from soilnet.models.inr import LIIF, centre_query, pixel_queries, shift_windows
from soilnet.models.location import build_location_encoder, to_lonlat


def query_coordinates(location: torch.Tensor, queries: torch.Tensor, window: int, cfg: LocationConfig) -> torch.Tensor:
    """What the location encoder reads for each query (B * Q, 2): projected x/y, or lon/lat for 'sphere'.

    `location` is each window's sample x/y (B, 2) in metres of ``cfg.epsg``, at the window's first query
    (B, 0); another query's offset from it is ``cfg.pixel_m`` per pixel, y north-up.
    """
    if location.device.type == "meta":  # FLOP counting (`soilnet.recipes.gpu_feed`): shapes only
        return torch.empty(queries.shape[0] * queries.shape[1], 2, device="meta", dtype=torch.float64)
    if cfg.pixel_m is None or (cfg.kind == "sphere" and cfg.epsg is None):
        raise ValueError("model.location needs epsg and pixel_m (a training job sets them from the raster cube)")
    half = window / 2 * cfg.pixel_m
    offsets = (queries.double() - queries[:, :1].double()) * torch.tensor(
        [half, -half], dtype=torch.float64, device=queries.device
    )
    xy = (location.double().unsqueeze(1) + offsets).reshape(-1, 2)
    if cfg.kind == "grid":
        return xy
    lonlat = to_lonlat(xy[:, 0].cpu().numpy(), xy[:, 1].cpu().numpy(), cfg.epsg)
    return torch.from_numpy(lonlat).to(queries.device)


class INRSoilModel(SoilNetModel):
    """Image encoder stages -> LIIF per query -> branch; climate -> branch; concat -> head."""

    def __init__(
        self,
        image_encoder: ImageEncoder,
        climate_encoder: nn.Module | None,
        inr: LIIF,
        window: int,
        branch_dim: int | None,
        head_hidden: list[int],
        location: LocationConfig | None = None,
        jitter_px: int = 0,
        **head_kwargs: object,
    ) -> None:
        super().__init__(image_encoder, climate_encoder, branch_dim, head_hidden, image_dim=inr.out_dim, **head_kwargs)
        for part in image_encoder.outside_stages():  # never run: no gradient for data parallel to wait for
            part.requires_grad_(False)
        self.inr = inr
        self.window, self.jitter_px = window, jitter_px
        self.location = location
        self.location_encoder = None
        if location is not None:  # embeddings as wide as the fused vector the head reads
            climate_dim = 0 if climate_encoder is None else branch_dim or climate_encoder.out_dim
            fused = (branch_dim or inr.out_dim) + climate_dim
            self.location_encoder = build_location_encoder(location, fused)
        self.register_buffer("centre", centre_query(window), persistent=False)

    def query_features(self, image: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """INR embeddings (B, Q, D) of queries (B, Q, 2) in [-1, 1] over each image (B, C, H, W)."""
        return self.inr(self.image_encoder.stage_features(image), queries)

    def fused_points(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None,
        queries: torch.Tensor,
        missing: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Image branch (B, Q, d), climate branch (B, d) or None, and their fusion (B, Q, F) the head reads."""
        image_part = self.image_branch(self.query_features(image, queries))
        series = self.encode_climate(climate, missing)
        if series is None:
            return image_part, None, image_part
        climate_part = self.climate_branch(series)
        fused = torch.cat([image_part, climate_part.unsqueeze(1).expand(-1, queries.shape[1], -1)], dim=-1)
        return image_part, climate_part, fused

    def head_points(self, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head outputs (B, Q, k) of fused embeddings (B, Q, F)."""
        b, q, _ = fused.shape
        return {k: v.reshape(b, q, -1) for k, v in self.head(fused.reshape(b * q, -1)).items()}

    def predict_points(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None,
        queries: torch.Tensor,
        missing: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Head outputs (B, Q, k) at queries (B, Q, 2) of each window."""
        return self.head_points(self.fused_points(image, climate, queries, missing)[2])

    def centre_queries(self, batch: int) -> torch.Tensor:
        """The centre query of each of `batch` windows (batch, 1, 2)."""
        return self.centre.expand(batch, 1, 2)

    def forward(
        self,
        image: torch.Tensor | None = None,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
        location: torch.Tensor | None = None,
        n_queries: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Predictions (B, k) at the centre pixel of each window (in training, of each window shifted by up to
        ``jitter_px``: the labelled point moves off-centre with it, MISO's centre jitter).

        With `location` (each window's sample x/y (B, 2)), also what the geo-contrastive terms compare,
        for the centre and `n_queries` random points per window (Q = 1 + n_queries): ``fused`` (B, Q, F),
        the location embeddings ``places`` (B, Q, F), ``image_embedding`` (B, d) at the centre and
        ``climate_embedding`` (B, d) when there is a climate branch. Everything runs inside this call,
        so distributed data parallel sees every parameter it trains.
        """
        if image is None:
            raise ValueError("an INR model needs image (B, C, P, P)")
        b = image.shape[0]
        labelled = self.centre_queries(b)
        if self.training and self.jitter_px > 0:
            shifts = torch.randint(-self.jitter_px, self.jitter_px + 1, (b, 2), device=image.device)
            image = shift_windows(image, shifts)
            labelled = labelled + shifts.flip(-1).unsqueeze(1).to(labelled.dtype) * 2 / self.window  # (x, y)
        if location is None:
            out = self.predict_points(image, climate, labelled, missing)
            return {k: v[:, 0] for k, v in out.items()}
        if self.location_encoder is None:
            raise ValueError("location embeddings need model.location in the recipe")
        random = torch.rand(b, n_queries, 2, device=image.device) * 2 - 1
        queries = torch.cat([labelled, random], dim=1)
        image_part, climate_part, fused = self.fused_points(image, climate, queries, missing)
        coords = query_coordinates(location, queries, self.window, self.location)
        places = self.location_encoder(coords.float()).reshape(b, queries.shape[1], -1)
        out = {k: v[:, 0] for k, v in self.head_points(fused[:, :1]).items()}
        out.update(fused=fused, places=places, image_embedding=image_part[:, 0])
        if climate_part is not None:
            out["climate_embedding"] = climate_part
        return out

    def grid_features(self, tile: torch.Tensor, window: int, stride: int, dense: bool, batch_size: int) -> torch.Tensor:
        """INR embeddings (h * w, D) of every output pixel of a normalised tile (1, C, H, W).

        Output pixel (i, j) covers input pixels from ``i * stride`` (the map grid of
        `soilnet.mapping.tiling`); its window of `window` px starts at ``i * stride + stride // 2 -
        window // 2``, read with the tile's halo. Exact (``dense=False``): every window cut and queried
        at the output pixel's centre, as in training. Dense: one encoder pass over the whole tile, every
        output pixel's centre queried in it (context beyond the window, like `predict_dense`).
        """
        _, _, height, width = tile.shape
        gh, gw = (height - window) // stride + 1, (width - window) // stride + 1
        centre = window // 2 + stride / 2 - stride // 2
        if not dense:
            windows = cut_windows(tile, window, stride)[0].reshape(gh * gw, tile.shape[1], window, window)
            point = torch.tensor(centre, device=tile.device)
            query = pixel_queries(window, point, point).view(1, 1, 2)
            parts = [
                self.image_branch_input(windows[i : i + batch_size], query)
                for i in range(0, windows.shape[0], batch_size)
            ]
            return torch.cat(parts)
        cell = self.image_encoder.cell
        padded = F.pad(tile, (0, -width % cell, 0, -height % cell))
        rows = (torch.arange(gh, device=tile.device) * stride + centre).double()
        cols = (torch.arange(gw, device=tile.device) * stride + centre).double()
        grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
        size = torch.tensor(padded.shape[-2:], device=tile.device, dtype=torch.float64)
        queries = torch.stack([grid_c.reshape(-1) / size[1] * 2 - 1, grid_r.reshape(-1) / size[0] * 2 - 1], dim=-1)
        stages = self.image_encoder.stage_features(padded)
        return torch.cat(
            [self.inr(stages, queries[None, i : i + 4096].float())[0] for i in range(0, queries.shape[0], 4096)]
        )

    def image_branch_input(self, windows: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """INR embeddings (N, D) of the same query (1, 1, 2) in each of N windows."""
        return self.query_features(windows, query.expand(windows.shape[0], 1, 2))[:, 0]
