"""Configured output URLs cannot escape the roots a job writes under (``..``, absolute paths, buckets, symlinks)."""

from __future__ import annotations

import os
import re

import pytest

from soilnet.config import ConfigError, load_config
from soilnet.mapping.config import MapConfig
from soilnet.paths import PathEscapeError, confine


def test_relative_urls_land_under_the_first_root(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    assert confine("runs/map", [root], "data.runs") == str(root / "runs" / "map")
    assert confine("a/./b/../c", [root], "data.runs") == str(root / "a" / "c")
    assert confine(root / "x", [root], "data.runs") == str(root / "x")


@pytest.mark.parametrize("bad", ["..", "../elsewhere", "runs/../../elsewhere", "a/b/../../../c"])
def test_dotdot_escapes_are_refused_and_name_the_field(tmp_path, bad):
    with pytest.raises(PathEscapeError, match=r"mapping\.output") as err:
        confine(bad, [tmp_path / "work"], "mapping.output")
    assert str(tmp_path / "work") in str(err.value)


def test_absolute_paths_outside_the_root_are_refused(tmp_path):
    root = tmp_path / "work"
    with pytest.raises(PathEscapeError, match="outside the configured roots"):
        confine("/etc/cron.d/soilnet", [root], "data.runs")
    with pytest.raises(PathEscapeError):
        confine(str(tmp_path / "work-other" / "x"), [root], "data.runs")  # a shared prefix is not containment
    with pytest.raises(PathEscapeError):
        confine(f"file://{tmp_path}/elsewhere", [root], "data.runs")


def test_a_symlink_out_of_a_local_root_is_refused(tmp_path):
    root, outside = tmp_path / "work", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(PathEscapeError, match=r"data\.runs"):
        confine("link/model.safetensors", [root], "data.runs")
    os.symlink(root / "inner", root / "inner-link")
    assert confine("inner-link/x", [root], "data.runs") == str(root / "inner" / "x")


def test_s3_urls_must_stay_in_the_root_bucket_and_prefix():
    roots = ["s3://soil-maps/nightly"]
    assert confine("s3://soil-maps/nightly/2026/tile.tif", roots, "map.out") == "s3://soil-maps/nightly/2026/tile.tif"
    assert confine("2026/a/../tile.tif", roots, "map.out") == "s3://soil-maps/nightly/2026/tile.tif"
    for bad in (
        "s3://other-bucket/nightly/x",
        "s3://soil-maps/nightly-old/x",
        "s3://soil-maps/nightly/../secrets/x",
        "s3://soil-maps/x",
        "../secrets",
        "/tmp/x",
    ):
        with pytest.raises(PathEscapeError, match=r"map\.out"):
            confine(bad, roots, "map.out")


def test_several_roots_and_bad_roots(tmp_path):
    roots = ["s3://soil-maps/nightly", str(tmp_path)]
    assert confine(str(tmp_path / "a"), roots, "f") == str(tmp_path / "a")
    assert confine("s3://soil-maps/nightly/a", roots, "f") == "s3://soil-maps/nightly/a"
    with pytest.raises(PathEscapeError, match="no root"):
        confine("a", [], "f")
    with pytest.raises(PathEscapeError, match="empty URL"):
        confine("", [tmp_path], "f")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("data.runs=/etc/soilnet", "data.runs"),
        ("data.runs=demo/../../outside", "data.runs"),
        ("pretrain.output=s3://other-bucket/encoders", "pretrain.output"),
        ("finetune.bundle=../bundle", "finetune.bundle"),
    ],
)
def test_job_configs_refuse_outputs_outside_the_workspace(override, field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"{re.escape(field)}: .* outside the configured roots"):
        load_config(None, [override])


def test_write_roots_admit_other_output_places(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shared = tmp_path / "shared"
    cfg = load_config(None, [f"data.write_roots=[{shared}, s3://team/soilnet]", f"data.runs={shared}/runs",
                             "finetune.bundle=s3://team/soilnet/bundle"])  # fmt: skip
    assert cfg.data.url("runs") == f"{shared}/runs"
    with pytest.raises(ConfigError, match=r"finetune\.bundle"):
        load_config(None, ["data.write_roots=[s3://team/soilnet]", "finetune.bundle=s3://team/other/bundle"])


def test_map_out_must_stay_under_its_write_roots(tmp_path):
    fields = {
        "raster": "r.zarr",
        "climate": "c.zarr",
        "model": {"bundle": "b"},
        "climate_end": "2018-06",
        "resolution_m": 240,
    }
    ok = MapConfig(**fields, out=str(tmp_path / "maps" / "eu"), write_roots=[str(tmp_path / "maps")])
    assert ok.out.endswith("eu")
    with pytest.raises(ValueError, match=r"out: .* outside the configured roots"):
        MapConfig(**fields, out=str(tmp_path / "maps" / ".." / "etc"), write_roots=[str(tmp_path / "maps")])
    with pytest.raises(ValueError, match=r"out: .* outside the configured roots"):
        MapConfig(**fields, out="s3://maps-bucket/../other/eu", write_roots=["s3://maps-bucket/eu"])
