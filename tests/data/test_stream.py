"""The Ray Data stream on the S3 endpoint: exact windows and series, every location once per epoch per split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.folds import FoldConfig
from soilnet.data.locations import labelled_locations
from soilnet.data.raster_cube import RasterLayout, open_raster_cube
from soilnet.data.sampling import steps_per_epoch
from soilnet.data.stream import build_dataset, torch_collate
from soilnet.data.stream_config import StreamConfig


@pytest.fixture(scope="module")
def s3_region(s3_endpoint):
    import uuid

    import boto3

    bucket = f"stream-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    s3_bucket = f"s3://{bucket}"
    cfg = DemoConfig(width_km=6, height_km=6, n_points=37)
    paths = generate_demo_region(cfg, f"{s3_bucket}/demo", layout=RasterLayout(inner_chunk=32, shard=128))
    table = labelled_locations(_points(paths), "soc_g_kg", FoldConfig(k=3))
    return paths, table


def _points(paths):
    from soilnet.data.points import read_points

    return read_points(paths.points)[0]


def test_every_location_once_per_epoch_across_two_workers(s3_region, ray_local):
    # s3_region first: the S3 endpoint must be in the environment before local Ray starts its workers.
    import ray

    paths, table = s3_region
    # Border locations: windows reach outside the cube and come back padded with nodata.
    corner = table.iloc[:2].copy()
    cube = open_raster_cube(paths.raster)
    west, _, _, north = cube.grid.bounds
    corner[["x", "y"]] = [[west + 15.0, north - 15.0], [west + 45.0, north - 75.0]]
    corner["id"] = ["corner-a", "corner-b"]
    table = pd.concat([table, corner], ignore_index=True)
    assert len(table) % 2 == 1  # uneven on purpose
    cfg = StreamConfig(patch_px=32, batch_size=4, read_batch_size=8, reader_concurrency=1, read_threads=4)
    ds = build_dataset(table, paths.raster, paths.climate, cfg, epochs=[0, 1], world_size=2, output="raw")

    @ray.remote(num_cpus=0.25)
    def consume(split):
        rows = []
        for batch in split.iter_torch_batches(batch_size=cfg.batch_size, collate_fn=torch_collate):
            rows.append({k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in batch.items()})
        return rows

    splits = ds.streaming_split(2, equal=True)
    results = ray.get([consume.remote(s) for s in splits])
    per_worker = [sum(len(b["id"]) for b in rows) for rows in results]
    batches = [len(rows) for rows in results]
    steps = steps_per_epoch(len(table), 2, cfg.batch_size)
    assert per_worker[0] == per_worker[1] and batches == [2 * steps, 2 * steps]

    got = {k: np.concatenate([b[k] for rows in results for b in rows]) for k in results[0][0]}
    for epoch in (0, 1):
        real = (got["epoch"] == epoch) & (got["valid"] == 1)
        ids = got["id"][real]
        assert len(ids) == len(table) and set(ids) == set(table["id"])  # no losses, no duplicates

    # Bit-exact windows and series against direct slices of the source arrays.
    climate = open_climate_cube(paths.climate)
    by_id = table.set_index("id")
    for i in (
        np.flatnonzero(got["valid"] == 1)[::9].tolist()
        + np.flatnonzero(np.char.startswith(got["id"].astype(str), "corner")).tolist()
    ):
        loc = by_id.loc[got["id"][i]]
        r0, c0 = cube.window_at(loc["x"], loc["y"], 32)
        expected = np.full((14, 32, 32), cube.nodata, dtype=np.int16)
        ys = slice(max(r0, 0), min(r0 + 32, cube.grid.height))
        xs = slice(max(c0, 0), min(c0 + 32, cube.grid.width))
        expected[:, ys.start - r0 : ys.stop - r0, xs.start - c0 : xs.stop - c0] = cube.bands[:, ys, xs]
        np.testing.assert_array_equal(got["image"][i], expected, err_msg=str(got["id"][i]))
        row, col = climate.pixels_of(loc["x"], loc["y"], cube.grid.epsg)
        start = int(climate.month_index(np.datetime64(loc["date"], "M"), 61))
        np.testing.assert_array_equal(got["climate"][i], climate.data[:, start : start + 61, int(row), int(col)].T)
        assert got["target"][i] == np.float32(loc["target"])
    corners = got["image"][np.char.startswith(got["id"].astype(str), "corner")]
    assert (corners[:, :, :16, :] == cube.nodata).all() or (corners[:, :, :, :10] == cube.nodata).all()


def test_bad_tables_are_refused(s3_region):
    paths, table = s3_region
    cfg = StreamConfig()
    with pytest.raises(ValueError, match=r"lacks columns \['fold'\]"):
        build_dataset(table.drop(columns="fold"), paths.raster, paths.climate, cfg)
    with pytest.raises(ValueError, match="empty"):
        build_dataset(table.iloc[:0], paths.raster, paths.climate, cfg)


def test_several_outputs_stream_as_a_label_matrix(s3_region, ray_local):
    from soilnet.data.locations import label_matrix, labelled_outputs
    from soilnet.data.points import class_vocabulary
    from soilnet.data.targets import plan_outputs

    paths, _ = s3_region
    points = _points(paths)
    outputs = plan_outputs(["soc_g_kg", "ph_h2o", "taxonomy_order"], None, class_vocabulary(points))
    table = labelled_outputs(points, outputs, FoldConfig(k=3))
    table.loc[3, "target_1"] = np.nan  # a row without pH
    cfg = StreamConfig(patch_px=32, batch_size=8, read_batch_size=8, reader_concurrency=1, read_threads=2)
    batch = build_dataset(table, paths.raster, paths.climate, cfg, output="raw").take_batch(64)
    real = batch["valid"] == 1
    expected = pd.DataFrame(label_matrix(table), index=table["id"]).loc[batch["id"][real]].to_numpy()
    assert batch["target"].shape == (len(batch["id"]), 3)
    np.testing.assert_array_equal(batch["target"][real], expected)  # NaN where a label is missing
