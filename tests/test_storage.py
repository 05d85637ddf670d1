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


@pytest.mark.parametrize("url", ["", "gdrive://folder/x", "s3://", "gs://"])
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


def test_gcs_urls_resolve_to_gcsfs_and_vsigs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOILNET_GCS_TOKEN", "anon")
    loc = storage.resolve("gs://ee-bucket/exports/landsat/2018/r0000_c0000.tif")
    assert loc.scheme == "gs" and not loc.is_local and not loc.is_s3 and loc.fs.protocol[0] in ("gs", "gcs")
    assert loc.path == "ee-bucket/exports/landsat/2018/r0000_c0000.tif"
    assert storage.gdal_path(loc.url) == "/vsigs/ee-bucket/exports/landsat/2018/r0000_c0000.tif"
    assert storage.gdal_gcs_options() == {"GS_NO_SIGN_REQUEST": "YES"}
    assert storage.resolve("some/dir").is_local and not storage.resolve("s3://b/k").is_local


def test_gcs_credentials_come_from_the_key_envs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    import rasterio

    monkeypatch.delenv("SOILNET_GCS_TOKEN", raising=False)
    key_file = tmp_path / "key.json"
    key_file.write_text("{}")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    assert storage.gcs_token() == str(key_file)
    with storage.rasterio_env("gs://b/k.tif"):
        assert rasterio.env.getenv()["GOOGLE_APPLICATION_CREDENTIALS"] == str(key_file)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    key = {"type": "service_account", "client_email": "ee@p.iam.gserviceaccount.com", "private_key": "FAKE-KEY"}
    monkeypatch.setenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", json.dumps(key))
    assert storage.gdal_gcs_options() == {
        "GS_OAUTH2_PRIVATE_KEY": "FAKE-KEY",
        "GS_OAUTH2_CLIENT_EMAIL": "ee@p.iam.gserviceaccount.com",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [("/no/such/key.json", "no such service-account key file '/no/such/key.json'"), ('{"private_key": ', "not JSON")],
)
def test_bad_gcs_key_is_named_without_its_content(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.delenv("SOILNET_GCS_TOKEN", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", value)
    with pytest.raises(storage.StorageError, match="GOOGLE_APPLICATION_CREDENTIALS") as err:
        storage.resolve("gs://b/k.tif")
    assert message in str(err.value) and 'private_key"' not in str(err.value)


def test_replace_text_is_never_seen_half_written(tmp_path) -> None:
    """A reader polling a small object while it is replaced sees a whole old or new content, never a part."""
    import threading

    url = str(tmp_path / "lease.json")
    storage.replace_text(url, "a" * 4096)
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with open(url) as f:
                seen.add(f.read())

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(300):
        storage.replace_text(url, ("b" if i % 2 else "a") * 4096)
    stop.set()
    reader.join()
    assert seen <= {"a" * 4096, "b" * 4096}
