"""Credentials come from a key file or the environment; missing or bad keys give clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import ee
import pytest

from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.earth_engine.credentials import CredentialsError, initialize_earth_engine, load_key

SECRET = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-material\n-----END PRIVATE KEY-----\n"


def _cfg(**kw) -> AcquireConfig:
    base = {
        "region": "r.geojson",
        "year": 2018,
        "sampling_end_date": "2018-06-15",
        "bucket": "soil-bucket",
        "manifest_url": "m.json",
    }
    return AcquireConfig.model_validate({**base, **kw})


def _key(**kw) -> dict:
    return {
        "type": "service_account",
        "client_email": "sa@p.iam.gserviceaccount.com",
        "private_key": SECRET,
        "project_id": "key-project",
        **kw,
    }


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)


def test_missing_credentials_is_a_clear_error() -> None:
    with pytest.raises(CredentialsError, match="SOILNET_EE_SERVICE_ACCOUNT_KEY or GOOGLE_APPLICATION_CREDENTIALS"):
        initialize_earth_engine(_cfg())


def test_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "secret" / "key.json"
    secret_file.parent.mkdir()
    secret_file.write_text(json.dumps(_key(client_email="mounted@p.iam.gserviceaccount.com")))
    google_file = tmp_path / "google.json"
    google_file.write_text(json.dumps(_key(client_email="google@p.iam.gserviceaccount.com")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(google_file))
    assert load_key(_cfg()).email == "google@p.iam.gserviceaccount.com"
    monkeypatch.setenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", json.dumps(_key(client_email="env@p.iam.gserviceaccount.com")))
    key = load_key(_cfg())
    assert (
        key.email == "env@p.iam.gserviceaccount.com"
        and key.source == "environment variable SOILNET_EE_SERVICE_ACCOUNT_KEY"
    )
    assert load_key(_cfg(credentials_path=str(secret_file))).email == "mounted@p.iam.gserviceaccount.com"
    assert SECRET not in repr(key)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all", "not JSON"),
        (json.dumps({"type": "service_account"}), "missing fields \\['client_email', 'private_key'\\]"),
        (json.dumps(_key(type="authorized_user")), "not 'service_account'"),
    ],
)
def test_bad_key_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    with pytest.raises(CredentialsError, match=message) as err:
        load_key(_cfg(credentials_path=str(path)))
    assert str(path) in str(err.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no such file"):
        load_key(_cfg(credentials_path=str(tmp_path / "absent.json")))


def test_initialise_with_service_account(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    calls: dict = {}
    monkeypatch.setattr(
        ee, "ServiceAccountCredentials", lambda email, key_data: calls.update(email=email, key=key_data) or "creds"
    )
    monkeypatch.setattr(ee, "Initialize", lambda credentials, project: calls.update(creds=credentials, project=project))
    monkeypatch.setenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", json.dumps(_key()))
    with caplog.at_level(logging.DEBUG):
        initialize_earth_engine(_cfg())
    assert calls["email"] == "sa@p.iam.gserviceaccount.com" and calls["creds"] == "creds"
    assert calls["project"] == "key-project"
    initialize_earth_engine(_cfg(project="explicit-project"))
    assert calls["project"] == "explicit-project"
    assert "sa@p.iam.gserviceaccount.com" in caplog.text and "PRIVATE KEY" not in caplog.text


def test_initialise_failure_never_quotes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(credentials, project):
        raise ee.EEException(f"bad key {SECRET}")

    monkeypatch.setattr(ee, "Initialize", refuse)
    monkeypatch.setenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", json.dumps(_key()))
    monkeypatch.setattr(ee, "ServiceAccountCredentials", lambda email, key_data: "creds")
    with pytest.raises(CredentialsError, match="withheld") as err:
        initialize_earth_engine(_cfg())
    assert "PRIVATE KEY" not in str(err.value) and err.value.__cause__ is None
