"""The ``soilnet serve`` command line that opens a map's outputs (tagged on the map job's run, printed by the demo)."""

from __future__ import annotations

import shlex

from soilnet.redaction import redact_userinfo


def serve_command(map_url: str, points_url: str | None = None) -> str:
    """``soilnet serve --map URL [--points URL]``, quoted for a shell, credentials in URLs masked."""
    parts = ["soilnet", "serve", "--map", map_url]
    if points_url:
        parts += ["--points", points_url]
    return redact_userinfo(shlex.join(parts))
