"""One place that turns a URL (local path, ``s3://bucket/prefix`` or ``gs://bucket/prefix``) into file systems.

Every reader and writer in soilnet goes through this module, so a laptop folder and an
S3-compatible object store behave the same. S3 endpoints and credentials come from the
standard environment variables (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``) — never from files in the repo.
Google Cloud Storage (where Earth Engine lands its exports) is read with the service-account key of
``GOOGLE_APPLICATION_CREDENTIALS`` or ``SOILNET_EE_SERVICE_ACCOUNT_KEY`` (a key file path, or the
key JSON itself); ``SOILNET_GCS_TOKEN=anon`` reads public buckets without signing.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


class StorageError(RuntimeError):
    """A URL could not be resolved or reached; the message names the URL."""


def s3_endpoint() -> str | None:
    """The S3 endpoint URL from the environment, or None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_max_attempts() -> int:
    """Attempts per S3 request (first try included), from ``SOILNET_S3_MAX_ATTEMPTS`` (default 8)."""
    return int(os.environ.get("SOILNET_S3_MAX_ATTEMPTS", "8"))


def s3_connect_timeout() -> float:
    """Seconds to wait for a connection to the S3 endpoint, from ``SOILNET_S3_CONNECT_TIMEOUT`` (default 10)."""
    return float(os.environ.get("SOILNET_S3_CONNECT_TIMEOUT", "10"))


def _s3_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def s3_storage_options() -> dict[str, Any]:
    """fsspec/s3fs options for the configured endpoint (credentials stay in the environment)."""
    options: dict[str, Any] = {}
    endpoint = s3_endpoint()
    client_kwargs: dict[str, Any] = {}
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    region = _s3_region()
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    config: dict[str, Any] = {
        # bounded retries with exponential backoff when the endpoint is briefly unavailable: botocore's full
        # jitter sleeps up to 1, 2, 4, 8, 16, 20, 20 s between 8 attempts, so a restart of ~30 s is ridden out
        # on average and a store that stays down fails the job within ~70 s of waiting
        "retries": {"max_attempts": s3_max_attempts(), "mode": "standard"},
        "connect_timeout": s3_connect_timeout(),
    }
    if endpoint:
        config["s3"] = {"addressing_style": "path"}
    options["config_kwargs"] = config
    return options


def obstore_options() -> dict[str, Any]:
    """Keyword options of an obstore ``S3Store`` for the configured endpoint, with the same retry budget as
    `s3_storage_options` (``SOILNET_S3_MAX_ATTEMPTS`` attempts, backoff from 1 s doubling up to 20 s)."""
    endpoint = s3_endpoint()
    config: dict[str, Any] = {"virtual_hosted_style_request": False}
    if endpoint:
        config["endpoint"] = endpoint
    region = _s3_region()
    if region:
        config["region"] = region
    return {
        "config": config,
        "client_options": {
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "connect_timeout": timedelta(seconds=s3_connect_timeout()),
        },
        "retry_config": {
            "max_retries": max(0, s3_max_attempts() - 1),
            "backoff": {"init_backoff": timedelta(seconds=1), "max_backoff": timedelta(seconds=20), "base": 2},
            "retry_timeout": timedelta(seconds=120),
        },
    }


#: Environment variables holding a Google service-account key (file path or JSON), first match wins.
GCS_KEY_ENVS: tuple[str, ...] = ("GOOGLE_APPLICATION_CREDENTIALS", "SOILNET_EE_SERVICE_ACCOUNT_KEY")
#: Environment variable naming a gcsfs token method instead of a key (``anon``, ``google_default``, ``cloud``).
GCS_TOKEN_ENV = "SOILNET_GCS_TOKEN"


def _service_account_key(value: str, env: str) -> dict[str, Any]:
    """A service-account key given as JSON text; errors name the variable, never the key."""
    try:
        key = json.loads(value)
    except json.JSONDecodeError as exc:
        raise StorageError(f"environment variable {env}: service-account key is not JSON (line {exc.lineno})") from None
    if not isinstance(key, dict) or not key.get("private_key") or not key.get("client_email"):
        raise StorageError(f"environment variable {env}: key JSON lacks private_key / client_email")
    return key


def gcs_token() -> str | dict[str, Any] | None:
    """The gcsfs token: a method name, a key file path, a parsed key, or None (gcsfs's own search)."""
    method = os.environ.get(GCS_TOKEN_ENV, "").strip()
    if method:
        return method
    for env in GCS_KEY_ENVS:
        value = os.environ.get(env, "").strip()
        if value.startswith("{"):
            return _service_account_key(value, env)
        if value and not os.path.isfile(value):
            raise StorageError(f"environment variable {env}: no such service-account key file {value!r}")
        if value:
            return value
    return None


@dataclass(frozen=True)
class Location:
    """A resolved URL: the fsspec file system and the path inside it."""

    url: str
    fs: fsspec.AbstractFileSystem = field(repr=False, compare=False)
    path: str
    is_s3: bool
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    scheme: str = "file"

    @property
    def is_local(self) -> bool:
        """True for the local disk, False for an object store (S3 or Google Cloud Storage)."""
        return self.scheme == "file"


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a store cannot be reached (endpoint down, bad credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, ValueError, BotoCoreError, ClientError)


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
    """Turn a failed write (full disk, store unreachable) into a `StorageError` that starts with ``what``.

    ``what`` names the store and the object, e.g. ``"s3://b/cube.zarr: cannot write the shard at rows 0:512"``.
    """
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except FileExistsError:  # a refusal to replace something (CubeExistsError), not a failed write
        raise
    except (OSError, BotoCoreError) as exc:
        raise StorageError(f"{what}: {exc}") from exc


def is_remote(url: str) -> bool:
    """True if the URL points at an object store rather than the local disk."""
    return url.startswith("s3://")


def _resolve_gcs(url: str, asynchronous: bool) -> Location:
    bucket_and_key = url[len("gs://") :].strip("/")
    if not bucket_and_key:
        raise StorageError(f"{url!r}: a Cloud Storage URL needs a bucket (gs://bucket/prefix)")
    token = gcs_token()
    options: dict[str, Any] = {} if token is None else {"token": token}
    try:
        fs = fsspec.filesystem("gcs", asynchronous=asynchronous, skip_instance_cache=asynchronous, **options)
    except ImportError as exc:
        raise StorageError(f"{url!r}: reading gs:// needs the gcsfs package ({exc})") from exc
    except (ValueError, KeyError, OSError) as exc:  # an unusable key: say so, never quote it
        raise StorageError(f"{url!r}: Cloud Storage credentials rejected ({type(exc).__name__})") from None
    return Location(url.rstrip("/"), fs, bucket_and_key, is_s3=False, storage_options=options, scheme="gs")


def resolve(url: str | os.PathLike[str], asynchronous: bool = False) -> Location:
    """Resolve a local path, ``s3://bucket/prefix`` or ``gs://bucket/prefix`` into a `Location`."""
    url = os.fspath(url)
    if not url:
        raise StorageError("empty storage URL")
    if url.startswith("s3://"):
        bucket_and_key = url[len("s3://") :].strip("/")
        if not bucket_and_key:
            raise StorageError(f"{url!r}: an S3 URL needs a bucket (s3://bucket/prefix)")
        options = s3_storage_options()
        fs = fsspec.filesystem("s3", asynchronous=asynchronous, skip_instance_cache=asynchronous, **options)
        return Location(
            url=url.rstrip("/"), fs=fs, path=bucket_and_key, is_s3=True, storage_options=options, scheme="s3"
        )
    if url.startswith("gs://"):
        return _resolve_gcs(url, asynchronous)
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise StorageError(f"{url!r}: unsupported URL scheme {scheme!r} (use a local path, s3:// or gs://)")
    path = str(Path(url.removeprefix("file://")).expanduser().absolute())
    return Location(url=path, fs=LocalFileSystem(), path=path, is_s3=False)


def join(url: str | os.PathLike[str], *parts: str) -> str:
    """Join path parts onto a URL with ``/`` (works for local paths and s3 URLs)."""
    base = os.fspath(url).rstrip("/")
    return "/".join([base, *(p.strip("/") for p in parts if p)])


def exists(url: str | os.PathLike[str]) -> bool:
    """True if a file or prefix exists at the URL."""
    loc = resolve(url)
    try:
        return bool(loc.fs.exists(loc.path))
    except unreachable_errors() as exc:
        raise StorageError(f"cannot reach {loc.url}: {exc}") from exc


def open_file(url: str | os.PathLike[str], mode: str = "rb") -> IO[Any]:
    """Open a file at a URL (local or S3); parent folders are created when writing locally."""
    loc = resolve(url)
    if "w" in mode or "a" in mode:
        if loc.is_local:
            Path(loc.path).parent.mkdir(parents=True, exist_ok=True)
    elif not loc.fs.exists(loc.path):
        raise FileNotFoundError(f"{loc.url}: no such file")
    return loc.fs.open(loc.path, mode)


def replace_text(url: str | os.PathLike[str], text: str) -> None:
    """Replace a small text object in one step: readers see the old content or the new, never a part.

    On an object store one PUT is atomic; on disk the text goes to a temporary file that is renamed over it.
    """
    loc = resolve(url)
    if not loc.is_local:
        with loc.fs.open(loc.path, "w") as f:
            f.write(text)
        return
    Path(loc.path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{loc.path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, loc.path)


def makedirs(url: str | os.PathLike[str]) -> None:
    """Create a folder (no-op on object stores, which have no folders)."""
    loc = resolve(url)
    if loc.is_local:
        Path(loc.path).mkdir(parents=True, exist_ok=True)


def remove(url: str | os.PathLike[str]) -> None:
    """Delete a file or a whole prefix if it exists."""
    loc = resolve(url)
    if loc.fs.exists(loc.path):
        loc.fs.rm(loc.path, recursive=True)


def zarr_store(url: str | os.PathLike[str], read_only: bool = True) -> Any:
    """A zarr v3 store for the URL: a LocalStore on disk or an FsspecStore on an object store."""
    import zarr.storage

    loc = resolve(url, asynchronous=True)
    if loc.is_local:
        if not read_only:
            Path(loc.path).mkdir(parents=True, exist_ok=True)
        return zarr.storage.LocalStore(loc.path, read_only=read_only)
    return zarr.storage.FsspecStore(fs=loc.fs, path=loc.path, read_only=read_only)


def gdal_path(url: str | os.PathLike[str]) -> str:
    """The path rasterio/GDAL understands: ``/vsis3/bucket/key`` (S3), ``/vsigs/bucket/key`` (GCS), or local."""
    loc = resolve(url)
    return {"s3": f"/vsis3/{loc.path}", "gs": f"/vsigs/{loc.path}"}.get(loc.scheme, loc.path)


def gdal_gcs_options() -> dict[str, str]:
    """GDAL ``/vsigs/`` options for the credentials of `gcs_token` (none: GDAL's own search)."""
    token = gcs_token()
    if token == "anon":
        return {"GS_NO_SIGN_REQUEST": "YES"}
    if isinstance(token, dict):
        return {"GS_OAUTH2_PRIVATE_KEY": token["private_key"], "GS_OAUTH2_CLIENT_EMAIL": token["client_email"]}
    if token is not None and os.path.isfile(token):  # else a gcsfs method name such as google_default
        return {"GOOGLE_APPLICATION_CREDENTIALS": token}
    return {}


@contextlib.contextmanager
def rasterio_env(url: str | os.PathLike[str], session: Any = None) -> Iterator[None]:
    """A rasterio environment configured for the URL's store (endpoint, path-style, http; GCS credentials).

    ``session``: a rasterio session to reuse (building one per call makes a boto3 session when AWS keys
    are in the environment: tens of milliseconds); None lets rasterio make one.
    """
    import rasterio

    options: dict[str, Any] = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    if os.fspath(url).startswith("gs://"):
        options.update(gdal_gcs_options())
    elif is_remote(os.fspath(url)):
        endpoint = s3_endpoint()
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options.update(
                AWS_S3_ENDPOINT=host.rstrip("/"),
                AWS_HTTPS="YES" if scheme == "https" else "NO",
                AWS_VIRTUAL_HOSTING="FALSE",
            )
    with rasterio.Env(session=session, **options):
        yield
