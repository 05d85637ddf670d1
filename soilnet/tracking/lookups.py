"""Finding runs, registered models and aliases: a miss is one line naming what was asked and what exists.

``NotFoundError`` is a ValueError, so the CLI reports it as a user error (one red line, exit 2),
e.g. ``no registered model 'soilnet' in sqlite:///.../demo/mlruns.db; registered: soilnet-soc_g_kg``.
"""

from __future__ import annotations

from typing import Any

from soilnet.redaction import redact_userinfo

#: How many existing names an error lists.
SHOWN = 8


class NotFoundError(ValueError):
    """A run id, registered model or alias that the tracking server does not have."""


def _is_missing(exc: BaseException) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _listing(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:SHOWN])
    return shown + (f" (and {len(names) - SHOWN} more)" if len(names) > SHOWN else "")


def _where(client: Any) -> str:
    return redact_userinfo(str(client.tracking_uri))


def registered_names(client: Any) -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(m.name for m in client.search_registered_models())


def find_run(client: Any, run_id: str) -> Any:
    """The MLflow run `run_id`; NotFoundError lists the latest runs."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        recent = [r.info.run_id for r in client.search_runs(_experiment_ids(client), max_results=SHOWN)]
        raise NotFoundError(f"no MLflow run {run_id!r} in {_where(client)}; latest runs: {_listing(recent)}") from exc


def _experiment_ids(client: Any) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def find_registered_model(client: Any, name: str) -> Any:
    """The registered model `name`; NotFoundError lists the registered ones."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        raise NotFoundError(
            f"no registered model {name!r} in {_where(client)}; registered: {_listing(registered_names(client))}"
        ) from exc


def find_alias(client: Any, name: str, alias: str) -> Any:
    """The model version of `name` holding `alias`; NotFoundError names the model's aliases (or the models)."""
    from mlflow.exceptions import MlflowException

    model = find_registered_model(client, name)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        aliases = sorted(getattr(model, "aliases", {}) or {})
        raise NotFoundError(
            f"registered model {name!r} in {_where(client)} has no alias {alias!r}; aliases: {_listing(aliases)}"
        ) from exc


def parse_models_uri(uri: str) -> tuple[str, str]:
    """(name, alias) of ``models:/<name>@<alias>``."""
    body = uri.removeprefix("models:/")
    name, sep, alias = body.partition("@")
    if not uri.startswith("models:/") or not sep or not name or not alias or "/" in name:
        raise ValueError(f"{uri!r} is not a registered model alias: write models:/<name>@<alias>")
    return name, alias
