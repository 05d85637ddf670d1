"""Credentials out of what soilnet records: ``scheme://user:password@host`` becomes ``scheme://***@host``.

Tracking URIs (``https://user:token@mlflow.example``) and object-store URLs may carry credentials.
Everything soilnet writes for people or for later (MLflow parameters, tags, text artefacts, the
stored job description of a checkpoint, spool files, log lines, error messages) passes through
`redact_userinfo`; code that needs the real URI back takes it from the configuration.
"""

from __future__ import annotations

import re

USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s\"']+)@")
MASK = "***"


def redact_userinfo(text: str) -> str:
    """`text` with the user information of every URL in it replaced by ``***``."""
    return USERINFO.sub(rf"\g<scheme>{MASK}@", text)


def usable_uri(stored: str | None) -> str | None:
    """A stored URI if it still works (its credentials were not redacted), else None (take the configured one)."""
    if stored is None or f"://{MASK}@" in stored:
        return None
    return stored
