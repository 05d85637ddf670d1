"""One place that turns a URL (local path or ``s3://bucket/prefix``) into file systems and stores.

Every reader and writer in soilnet goes through this module, so a laptop folder and an
S3-compatible object store behave the same. S3 endpoints and credentials come from the
standard environment variables (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``) — never from files in the repo.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


class StorageError(RuntimeError):
    """A URL could not be resolved or reached; the message names the URL."""


def s3_endpoint() -> str | None:
    """The S3 endpoint URL from the environment, or None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_storage_options() -> dict[str, Any]:
    """fsspec/s3fs options for the configured endpoint (credentials stay in the environment)."""
    options: dict[str, Any] = {}
    endpoint = s3_endpoint()
    client_kwargs: dict[str, Any] = {}
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    config: dict[str, Any] = {
        # bounded retries with exponential backoff when the endpoint is briefly unavailable
        "retries": {"max_attempts": int(os.environ.get("SOILNET_S3_MAX_ATTEMPTS", "5")), "mode": "standard"},
        "connect_timeout": float(os.environ.get("SOILNET_S3_CONNECT_TIMEOUT", "10")),
    }
    if endpoint:
        config["s3"] = {"addressing_style": "path"}
    options["config_kwargs"] = config
    return options


@dataclass(frozen=True)
class Location:
    """A resolved URL: the fsspec file system and the path inside it."""

    url: str
    fs: fsspec.AbstractFileSystem = field(repr=False, compare=False)
    path: str
    is_s3: bool
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a store cannot be reached (endpoint down, bad credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, ValueError, BotoCoreError, ClientError)


def is_remote(url: str) -> bool:
    """True if the URL points at an object store rather than the local disk."""
    return url.startswith("s3://")


def resolve(url: str | os.PathLike[str], asynchronous: bool = False) -> Location:
    """Resolve a local path or ``s3://bucket/prefix`` into a `Location`."""
    url = os.fspath(url)
    if not url:
        raise StorageError("empty storage URL")
    if url.startswith("s3://"):
        bucket_and_key = url[len("s3://") :].strip("/")
        if not bucket_and_key:
            raise StorageError(f"{url!r}: an S3 URL needs a bucket (s3://bucket/prefix)")
        options = s3_storage_options()
        fs = fsspec.filesystem("s3", asynchronous=asynchronous, skip_instance_cache=asynchronous, **options)
        return Location(url=url.rstrip("/"), fs=fs, path=bucket_and_key, is_s3=True, storage_options=options)
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise StorageError(f"{url!r}: unsupported URL scheme {scheme!r} (use a local path or s3://)")
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
        if not loc.is_s3:
            Path(loc.path).parent.mkdir(parents=True, exist_ok=True)
    elif not loc.fs.exists(loc.path):
        raise FileNotFoundError(f"{loc.url}: no such file")
    return loc.fs.open(loc.path, mode)


def makedirs(url: str | os.PathLike[str]) -> None:
    """Create a folder (no-op on object stores, which have no folders)."""
    loc = resolve(url)
    if not loc.is_s3:
        Path(loc.path).mkdir(parents=True, exist_ok=True)


def remove(url: str | os.PathLike[str]) -> None:
    """Delete a file or a whole prefix if it exists."""
    loc = resolve(url)
    if loc.fs.exists(loc.path):
        loc.fs.rm(loc.path, recursive=True)


def zarr_store(url: str | os.PathLike[str], read_only: bool = True) -> Any:
    """A zarr v3 store for the URL: a LocalStore on disk or an FsspecStore on S3."""
    import zarr.storage

    loc = resolve(url, asynchronous=True)
    if not loc.is_s3:
        if not read_only:
            Path(loc.path).mkdir(parents=True, exist_ok=True)
        return zarr.storage.LocalStore(loc.path, read_only=read_only)
    return zarr.storage.FsspecStore(fs=loc.fs, path=loc.path, read_only=read_only)


def gdal_path(url: str | os.PathLike[str]) -> str:
    """The path rasterio/GDAL understands: ``/vsis3/bucket/key`` for S3, else the local path."""
    loc = resolve(url)
    return f"/vsis3/{loc.path}" if loc.is_s3 else loc.path


@contextlib.contextmanager
def rasterio_env(url: str | os.PathLike[str]) -> Iterator[None]:
    """A rasterio environment configured for the URL's store (endpoint, path-style, http)."""
    import rasterio

    options: dict[str, Any] = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    if is_remote(os.fspath(url)):
        endpoint = s3_endpoint()
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options.update(
                AWS_S3_ENDPOINT=host.rstrip("/"),
                AWS_HTTPS="YES" if scheme == "https" else "NO",
                AWS_VIRTUAL_HOSTING="FALSE",
            )
    with rasterio.Env(**options):
        yield
