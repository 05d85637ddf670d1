"""Training inputs as MLflow datasets: URL, digest and size of the points table and the cubes."""

from __future__ import annotations

import json
import shutil

import pandas as pd

from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.datasets import training_inputs
from soilnet.tracking.runs import RunTracker


def test_inputs_name_their_size_and_a_digest_that_follows_the_content(tiny_demo, tmp_path):
    root = tiny_demo.root
    inputs = training_inputs(f"{root}/points.parquet", f"{root}/raster.zarr", f"{root}/climate.zarr")
    by_name = {d.name: d for d in inputs}
    assert list(by_name) == ["points", "raster", "climate"]
    assert (by_name["points"].count, by_name["points"].unit) == (len(pd.read_parquet(f"{root}/points.parquet")), "rows")
    assert (by_name["raster"].count, by_name["raster"].unit) == (200 * 200, "pixels")  # 6 km at 30 m
    again = training_inputs(f"{root}/points.parquet", f"{root}/raster.zarr", f"{root}/climate.zarr")
    assert [d.digest for d in again] == [d.digest for d in inputs]
    changed = pd.read_parquet(f"{root}/points.parquet").iloc[:-1]
    changed.to_parquet(tmp_path / "points.parquet")
    shutil.copytree(f"{root}/raster.zarr", tmp_path / "raster.zarr")
    other = training_inputs(str(tmp_path / "points.parquet"), str(tmp_path / "raster.zarr"), f"{root}/climate.zarr")
    assert other[0].digest != inputs[0].digest and other[0].count == inputs[0].count - 1
    assert other[1].digest == inputs[1].digest  # same cube content, another folder


def test_a_run_shows_its_inputs_as_datasets(tiny_demo, tmp_path):
    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    root = tiny_demo.root
    tracker = RunTracker.start(cfg, str(tmp_path), "train")
    tracker.log_inputs(training_inputs(f"{root}/points.parquet", f"{root}/raster.zarr", f"{root}/climate.zarr"))
    tracker.finish()
    run = tracker.client.get_run(tracker.run_id)
    logged = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(logged) == {"points", "raster", "climate"}
    assert json.loads(logged["raster"].dataset.profile) == {"num_pixels": 200 * 200}
    assert json.loads(logged["points"].dataset.source)["url"].endswith("points.parquet")
    assert {t.key: t.value for t in logged["points"].tags}["mlflow.data.context"] == "training"
