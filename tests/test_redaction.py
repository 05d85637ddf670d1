"""Credentials in URLs are masked in everything soilnet records."""

from __future__ import annotations

from soilnet.redaction import redact_userinfo, usable_uri


def test_userinfo_is_masked_wherever_it_appears():
    text = "tracking https://alice:s3cret@mlflow.example:5000/ and s3://key:secret@bucket/x, plain http://host/a@b"
    assert redact_userinfo(text) == (
        "tracking https://***@mlflow.example:5000/ and s3://***@bucket/x, plain http://host/a@b"
    )
    assert redact_userinfo("sqlite:////tmp/mlruns.db") == "sqlite:////tmp/mlruns.db"
    assert redact_userinfo("uri: 'http://token@h'") == "uri: 'http://***@h'"


def test_a_redacted_uri_is_not_used_again():
    assert usable_uri("http://***@mlflow:5000") is None
    assert usable_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert usable_uri(None) is None
