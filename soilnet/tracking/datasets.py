"""What a training run was trained on, as MLflow datasets: the points table and the cubes.

Each input is recorded with its URL, a digest and its size (rows of the points table, pixels of a
cube), so the MLflow UI shows what a run saw and `soilnet.tracking.registry.promote` can refuse to
compare runs trained on different points. Digests never read a whole cube: a cube's digest covers
its Zarr metadata and, where the writer recorded them, its per-shard content digests
(``<variable>/_digests.npy``); the points table's digest covers the file's bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from soilnet import storage
from soilnet.redaction import redact_userinfo

#: Context tag of the inputs a run trained on.
TRAINING = "training"
#: MLflow's limit on a dataset digest.
DIGEST_CHARS = 36


@dataclass(frozen=True)
class InputDataset:
    """One input of a run: its role (``points``, ``raster``, ``climate``), URL, digest and size."""

    name: str
    url: str
    digest: str
    count: int
    unit: str

    def record(self) -> dict[str, object]:
        """The dataset as a plain dict (a spool record field)."""
        return asdict(self)


def _digest(parts: list[bytes]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:DIGEST_CHARS]


def _read(url: str) -> bytes:
    with storage.open_file(url, "rb") as f:
        return f.read()


def points_input(url: str) -> InputDataset:
    """The points table: digest of the Parquet file, its row count."""
    import io

    import pyarrow.parquet as pq

    data = _read(url)
    rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    return InputDataset("points", redact_userinfo(url), _digest([data]), int(rows), "rows")


def cube_input(name: str, url: str, variable: str, pixels: int) -> InputDataset:
    """A cube: digest of its metadata and shard digests (if recorded), its pixel count per layer."""
    parts = [_read(storage.join(url, "zarr.json")), _read(storage.join(url, variable, "zarr.json"))]
    index = storage.join(url, variable, "_digests.npy")
    if storage.exists(index):
        parts.append(_read(index))
    return InputDataset(name, redact_userinfo(url), _digest(parts), int(pixels), "pixels")


def training_inputs(points: str, raster: str, climate: str) -> list[InputDataset]:
    """The points table, raster cube and climate cube of a training job."""
    from soilnet.data.climate_cube import open_climate_cube
    from soilnet.data.raster_cube import open_raster_cube

    raster_grid = open_raster_cube(raster).grid
    climate_grid = open_climate_cube(climate).grid
    return [
        points_input(points),
        cube_input("raster", raster, "bands", raster_grid.width * raster_grid.height),
        cube_input("climate", climate, "climate", climate_grid.width * climate_grid.height),
    ]


def send_inputs(client: object, run_id: str, datasets: list[dict[str, object]], context: str) -> None:
    """Log recorded inputs (`InputDataset.record`) to a run as MLflow datasets with their context tag."""
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = [
        DatasetInput(
            Dataset(
                name=str(d["name"]),
                digest=str(d["digest"]),
                source_type="soilnet",
                source=json.dumps({"url": d["url"]}),
                profile=json.dumps({f"num_{d['unit']}": d["count"]}),
            ),
            tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)],
        )
        for d in datasets
    ]
    client.log_inputs(run_id, datasets=inputs)  # type: ignore[attr-defined]
