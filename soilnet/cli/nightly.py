"""``soilnet nightly ...``: tonight's regeneration (``soilnet nightly -c FILE``), rollback and the releases.

Every command reads the ``nightly`` section of a YAML config (`soilnet.nightly.config.NightlyConfig`).
A night that fails or is refused exits with status 1 and one line saying why; the webhook URL in
``$<webhook_env>`` (e.g. from a Kubernetes Secret) is called with the same reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from soilnet.cli.common import SectionConfigOpt, SetOpt, configure_section, console, results, run_guarded

app = typer.Typer(
    help="The nightly regeneration: new inputs, incremental map, gated atomic release under a `latest` pointer.",
    pretty_exceptions_enable=False,
)
log = logging.getLogger("soilnet.cli.nightly")

AcceptOpt = Annotated[
    bool,
    typer.Option("--accept-change", help="Publish even if more pixels changed than the gate allows (a new model)."),
]


def _config(config: Path, overrides: list[str] | None):
    from soilnet.nightly.config import NightlyConfig

    return run_guarded(lambda: configure_section(config, "nightly", NightlyConfig, overrides))


def run(config: SectionConfigOpt, set_: SetOpt = None, accept_change: AcceptOpt = False) -> None:
    """Run tonight: new inputs, the changed tiles, compare with the last release, gate, publish, move `latest`."""
    from soilnet.nightly.report import NightRun, call_webhook
    from soilnet.nightly.run import NightRefusedError, run_night

    cfg = _config(config, set_)
    night = run_guarded(lambda: NightRun(cfg))
    report, reason = None, ""
    try:
        report = run_night(cfg, run_id=night.run_id, accept_change=accept_change)
        reason = report.line()
    except NightRefusedError as exc:
        report, reason = exc.report, str(exc)
    except Exception as exc:  # every failure of a night is reported the same way, then exits non-zero
        log.exception("night failed")
        reason = f"night failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    night.finish(report, reason)
    if report is None or report.status == "refused":
        payload = {"status": "failed", "reason": reason, "releases": cfg.releases, "mlflow_run_id": night.run_id}
        call_webhook(cfg.webhook_env, payload)
        console.print(f"[bold red]error:[/] {reason}", markup=True, highlight=False)
        raise typer.Exit(1)
    results.print(reason)


@app.callback(invoke_without_command=True)
def nightly(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config with a `nightly` section.")] = None,
    set_: SetOpt = None,
    accept_change: AcceptOpt = False,
) -> None:
    """Run tonight's regeneration (``soilnet nightly -c FILE``); the subcommands manage the releases."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        console.print("[bold red]error:[/] give the nightly config: soilnet nightly -c FILE", markup=True)
        raise typer.Exit(2)
    run(config, set_, accept_change)


@app.command("rollback")
def rollback(
    config: SectionConfigOpt,
    set_: SetOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Version to point at (default: the one before).")] = None,
) -> None:
    """Move the `latest` pointer back to the release before it (or to ``--to VERSION``)."""
    from soilnet.nightly.releases import ReleaseStore

    cfg = _config(config, set_)
    pointer = run_guarded(lambda: ReleaseStore(cfg.releases).rollback(to))
    results.print(f"latest -> {pointer['version']} (was {pointer['rolled_back_from']})")


@app.command("releases")
def releases(config: SectionConfigOpt, set_: SetOpt = None) -> None:
    """List the kept releases; the one `latest` points at is marked."""
    from soilnet.nightly.releases import ReleaseStore

    cfg = _config(config, set_)
    store = ReleaseStore(cfg.releases)
    pointed = (run_guarded(store.latest) or {}).get("version")
    for version in run_guarded(store.versions):
        record = store.record(version) or {}
        mark = "latest" if version == pointed else ""
        results.print(f"{version}  {record.get('climate_end', '?')}  {len(record.get('recomputed', []))} tiles  {mark}")
