"""Confinement of configured output URLs to the roots a job may write under.

A job that writes where its configuration says must not be steered outside its workspace: not with
``..`` segments, not with an absolute path elsewhere, not into another bucket, and (on local disk)
not through a symlink that points outside the root. `confine` resolves a URL against the allowed
roots and returns the normalised URL, or raises `PathEscapeError` naming the config field and the
roots.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence

from soilnet import storage


class PathEscapeError(ValueError):
    """A configured URL points outside the roots the job may write under; the message names the field."""


def _split_s3(url: str) -> tuple[str, str]:
    """(bucket, normalised key) of an ``s3://`` URL; the key is ``""`` for the bucket itself."""
    bucket, _, key = url[len("s3://") :].partition("/")
    key = posixpath.normpath("/" + key).lstrip("/") if key.strip("/") else ""
    return bucket, key


def _raw_escapes(url: str) -> bool:
    """True if a URL has ``..`` segments that climb above its own start (``a/../../b``)."""
    depth = 0
    for part in url.split("://", 1)[-1].split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _under_s3(url: str, root: str) -> str | None:
    bucket, key = _split_s3(url)
    root_bucket, root_key = _split_s3(root)
    if bucket != root_bucket:
        return None
    if root_key and key != root_key and not key.startswith(root_key + "/"):
        return None
    return f"s3://{bucket}/{key}".rstrip("/")


def _under_local(path: str, root: str) -> str | None:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real if os.path.commonpath([real, real_root]) == real_root else None


def confine(url: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]], field: str) -> str:
    """The normalised URL of ``url`` if it lies under one of ``roots``; relative URLs are taken from the first root.

    Local paths are compared after resolving symlinks (so a link out of the root is refused);
    S3 URLs must name the root's bucket and lie under its prefix after ``.`` / ``..`` are folded.
    """
    text = os.fspath(url)
    allowed = [storage.resolve(r).url for r in roots]
    if not allowed:
        raise PathEscapeError(f"{field}: no root configured to write {text!r} under")
    if not text:
        raise PathEscapeError(f"{field}: empty URL")
    relative = not storage.is_remote(text) and "://" not in text and not os.path.isabs(text.removeprefix("file://"))
    if relative and _raw_escapes(text):
        raise PathEscapeError(f"{field}: {text!r} climbs out of its root with '..' (roots: {allowed})")
    candidate = storage.join(allowed[0], text) if relative else text
    loc = storage.resolve(candidate)
    for root in allowed:
        if storage.is_remote(root) != loc.is_s3:
            continue
        inside = _under_s3(loc.url, root) if loc.is_s3 else _under_local(loc.path, root)
        if inside is not None:
            return inside
    raise PathEscapeError(f"{field}: {text!r} resolves outside the configured roots {allowed}")


def confine_as_given(url: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]], field: str) -> str:
    """`confine` for a URL used as written (a relative local path is taken from the working directory)."""
    text = os.fspath(url)
    if not storage.is_remote(text):
        text = storage.resolve(text).url
    return confine(text, roots, field)
