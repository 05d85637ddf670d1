"""URL resolution and round trips on local disk and a real S3 endpoint."""

from pathlib import Path

import pytest

from soilnet import storage


def test_local_and_s3_resolution(s3_endpoint: str) -> None:
    loc = storage.resolve("some/dir")
    assert not loc.is_s3 and Path(loc.path).is_absolute()
    s3 = storage.resolve("s3://bucket/prefix/")
    assert s3.is_s3 and s3.path == "bucket/prefix" and s3.url == "s3://bucket/prefix"
    assert s3.storage_options["client_kwargs"]["endpoint_url"] == s3_endpoint
    assert storage.join("s3://b/p/", "/x/", "y") == "s3://b/p/x/y"
    assert storage.gdal_path("s3://b/k.tif") == "/vsis3/b/k.tif"


@pytest.mark.parametrize("url", ["", "gs://bucket/x", "s3://"])
def test_bad_urls_are_named(url: str) -> None:
    with pytest.raises(storage.StorageError) as err:
        storage.resolve(url)
    assert url in str(err.value) or "empty" in str(err.value)


def test_round_trip_local_and_s3(tmp_path: Path, s3_bucket: str) -> None:
    for root in (str(tmp_path), s3_bucket):
        url = storage.join(root, "a", "b.txt")
        assert not storage.exists(url)
        with storage.open_file(url, "wb") as f:
            f.write(b"hello")
        assert storage.exists(url)
        with storage.open_file(url) as f:
            assert f.read() == b"hello"
        storage.remove(storage.join(root, "a"))
        assert not storage.exists(url)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.bin"):
        storage.open_file(tmp_path / "nope.bin")


def test_unreachable_endpoint_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("SOILNET_S3_MAX_ATTEMPTS", "1")
    with pytest.raises(storage.StorageError, match="s3://unreachable/cube"):
        storage.exists("s3://unreachable/cube")
