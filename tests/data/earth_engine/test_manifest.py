"""The export manifest round-trips on local disk and on S3, and lists landed tiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from soilnet import storage
from soilnet.data.earth_engine.manifest import Manifest, ManifestError


def _fill(manifest: Manifest) -> None:
    a = manifest.record("landsat/2018/r0000_c0000", "landsat", 0, 0, "gs://b/landsat/2018/r0000_c0000.tif")
    b = manifest.record("climate/2018-06/r0000_c0000", "climate", 0, 0, "gs://b/climate/2018-06/r0000_c0000.tif")
    manifest.record("landsat/2018/r0000_c0001", "landsat", 0, 1, "gs://b/landsat/2018/r0000_c0001.tif")
    a.state = b.state = "completed"


def test_round_trip_and_landed(tmp_path: Path) -> None:
    url = str(tmp_path / "m" / "manifest.json")
    assert Manifest.load(url).records == {}
    manifest = Manifest.load(url)
    _fill(manifest)
    manifest.save()
    again = Manifest.load(url)
    assert again.records == manifest.records
    assert [r.url for r in again.landed("landsat")] == ["gs://b/landsat/2018/r0000_c0000.tif"]
    assert len(again.landed()) == 2
    assert again.counts() == {"pending": 1, "running": 0, "completed": 2, "failed": 0}
    assert not (tmp_path / "m" / "manifest.json.tmp").exists()


def test_round_trip_on_s3(s3_bucket: str) -> None:
    url = storage.join(s3_bucket, "acquire", "manifest.json")
    manifest = Manifest(url)
    _fill(manifest)
    manifest.save()
    manifest.records["landsat/2018/r0000_c0001"].state = "running"
    manifest.save()
    assert Manifest.load(url).records["landsat/2018/r0000_c0001"].state == "running"
    assert not storage.exists(url + ".tmp")


def test_corrupt_manifest_names_the_url(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"version": 1, "tiles": [{"key": "x"}]}')
    with pytest.raises(ManifestError, match=r"manifest\.json: not a soilnet export manifest"):
        Manifest.load(str(path))
