"""``soilnet tracking flush``: deliver MLflow tracking calls spooled while the tracking server was unreachable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soilnet.cli.common import ConfigOpt, SetOpt, configure, console, results, run_guarded

app = typer.Typer(
    name="tracking",
    help="MLflow tracking: deliver calls spooled during a tracking server outage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def tracking() -> None:
    """MLflow tracking: deliver calls spooled during a tracking server outage."""


@app.command("flush")
def flush(
    path: Annotated[
        Path | None, typer.Argument(help="A spool file or folder (default: the configured tracking.spool_dir).")
    ] = None,
    uri: Annotated[
        str | None, typer.Option("--uri", help="Deliver to this tracking URI instead of the one each call recorded.")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Deliver leftover spool files to their MLflow runs, in order; exit status 1 if any stays undelivered."""
    from soilnet.tracking.outage import TrackingUnavailableError
    from soilnet.tracking.runs import flush_spool, spool_folder
    from soilnet.tracking.spool import Spool

    def body() -> int:
        cfg = configure(config, set_)
        where = path if path is not None else Path(spool_folder(cfg.tracking, cfg.data.root))
        if not where.exists():
            raise FileNotFoundError(f"no spool file or folder at {where}")
        spools = [Spool(where)] if where.is_file() else Spool.in_folder(where)
        if not spools:
            results.print(f"nothing to deliver in {where}")
        kept = 0
        for spool in spools:
            try:
                delivered = flush_spool(spool, cfg.tracking, uri)
            except TrackingUnavailableError as exc:
                console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
                kept += 1
            else:
                results.print(f"delivered {delivered} tracking calls from {spool.path}", highlight=False)
        return kept

    if run_guarded(body):
        raise typer.Exit(1)
