"""Earth Engine credentials: a service-account key from the environment or a mounted Secret file.

Where the key comes from, first match wins:

1. ``credentials_path`` of the config (e.g. a Kubernetes Secret mounted as a file);
2. the environment variable named by ``credentials_env`` (default
   ``SOILNET_EE_SERVICE_ACCOUNT_KEY``): a key file path, or the key JSON itself (a Secret
   exposed with ``secretKeyRef``);
3. ``GOOGLE_APPLICATION_CREDENTIALS`` (a key file path).

The key's content is never logged or put into an error message; only where it came from is.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import ee

from soilnet.data.earth_engine.config import AcquireConfig

log = logging.getLogger(__name__)

GOOGLE_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
REQUIRED_KEYS: tuple[str, ...] = ("type", "client_email", "private_key")


class CredentialsError(RuntimeError):
    """No usable Earth Engine credentials; the message says where they were looked for."""


@dataclass(frozen=True)
class ServiceAccountKey:
    """A parsed service-account key and where it came from (the key itself is never shown)."""

    source: str
    email: str
    project_id: str | None
    key_json: str = field(repr=False)


def _key_source(cfg: AcquireConfig) -> tuple[str, str]:
    """(description of the source, key file path or key JSON text)."""
    if cfg.credentials_path:
        return f"file {cfg.credentials_path} (credentials_path)", cfg.credentials_path
    for env in (cfg.credentials_env, GOOGLE_ENV):
        value = os.environ.get(env, "").strip()
        if value:
            return (f"environment variable {env}", value) if value.startswith("{") else (f"file {value} ({env})", value)
    raise CredentialsError(
        "no Earth Engine credentials: set credentials_path in the acquire config (a mounted "
        f"Kubernetes Secret), or the environment variable {cfg.credentials_env} or {GOOGLE_ENV} "
        "to a service-account key file"
    )


def load_key(cfg: AcquireConfig) -> ServiceAccountKey:
    """Find, read and check the service-account key named by the config or the environment."""
    source, value = _key_source(cfg)
    if value.startswith("{"):
        text = value
    else:
        path = Path(value)
        if not path.is_file():
            raise CredentialsError(f"Earth Engine key {source}: no such file")
        text = path.read_text(encoding="utf-8", errors="replace")
    try:
        key = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(f"Earth Engine key {source}: not JSON (line {exc.lineno})") from None
    if not isinstance(key, dict):
        raise CredentialsError(f"Earth Engine key {source}: not a JSON object")
    missing = [k for k in REQUIRED_KEYS if not key.get(k)]
    if missing:
        raise CredentialsError(f"Earth Engine key {source}: missing fields {missing}")
    if key["type"] != "service_account":
        raise CredentialsError(f"Earth Engine key {source}: type is {key['type']!r}, not 'service_account'")
    return ServiceAccountKey(source, str(key["client_email"]), key.get("project_id"), text)


def _redact(message: str, key: ServiceAccountKey) -> str:
    """An error message safe to show: nothing of the key's private material."""
    private = json.loads(key.key_json)["private_key"]
    if private in message or "PRIVATE KEY" in message:
        return "(message withheld: it quotes the key)"
    return message[:500]


def initialize_earth_engine(cfg: AcquireConfig) -> ServiceAccountKey:
    """Initialise ``ee`` with the service account; the project is the config's or the key's."""
    key = load_key(cfg)
    project = cfg.project or key.project_id
    if not project:
        raise CredentialsError(f"Earth Engine key {key.source} has no project_id: set project in the acquire config")
    try:
        credentials = ee.ServiceAccountCredentials(key.email, key_data=key.key_json)
        ee.Initialize(credentials, project=project)
    except (ee.EEException, ValueError) as exc:
        raise CredentialsError(
            f"Earth Engine initialisation as {key.email} (project {project}, key from {key.source}) failed: "
            f"{_redact(str(exc), key)}"
        ) from None
    log.info("Earth Engine initialised as %s (project %s, key from %s)", key.email, project, key.source)
    return key
