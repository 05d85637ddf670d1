"""The toolkit every ``soilnet`` command uses: consoles, user errors, shared options, config loading, tables.

Importing it is cheap (typer and rich only): the commands import the heavy libraries they need
inside their bodies, so ``soilnet --help`` answers at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from soilnet.logs import setup_logging

if TYPE_CHECKING:
    from soilnet.config import SoilnetConfig
    from soilnet.configbase import StrictModel

T = TypeVar("T")
M = TypeVar("M", bound="StrictModel")

#: Messages and errors (stderr).
console = Console(stderr=True, soft_wrap=True)
#: What a command produces (stdout).
results = Console(soft_wrap=True)

#: Errors that are the user's input (or an unreachable service), reported as one red line without a
#: traceback. ValueError covers soilnet's named input errors (ConfigError, CubeValidationError,
#: PathEscapeError, PointsTableError, RegionError, ManifestError, StacValidationError, ...); OSError
#: covers a missing file, a full disk, a refused permission, CubeExistsError and refused connections.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)

#: A config file that replaces jobs/configs/demo.yaml as the default of every command.
CONFIG_ENV = "SOILNET_CONFIG"
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config (default: $SOILNET_CONFIG, else jobs/configs/demo.yaml)."),
]
SectionConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="YAML config with the command's section (or a file of only it).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a field: section.field=value (field=value for a section)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing cubes and tables (else resume).")]


def configure(config: Path | None, overrides: list[str] | None, extra: list[str] | None = None) -> SoilnetConfig:
    """Load the root config (file, then overrides) and set up logging from it."""
    from soilnet.config import DEFAULT_CONFIG, load_config

    default = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else DEFAULT_CONFIG
    path = config if config is not None else (default if default.exists() or default != DEFAULT_CONFIG else None)
    cfg = load_config(path, [*(overrides or []), *(extra or [])])
    setup_logging(cfg.log_level)
    return cfg


def configure_section(
    config: Path, key: str, model: type[M], overrides: list[str] | None = None, log_level: str = "INFO"
) -> M:
    """Load the ``key`` section of a YAML file (or the whole file) with ``field=value`` overrides; set up logging."""
    from soilnet.config import load_section

    setup_logging(log_level)
    return load_section(config, key, model, overrides or [])


#: Library errors that mean a failed lookup or an unreachable service, not a bug (matched by class name:
#: importing the libraries here would slow every command down).
LOOKUP_ERRORS = ("kubernetes.config.config_exception.ConfigException", "mlflow.exceptions.MlflowException")
#: Set to 1 (or pass ``soilnet --debug``) to see the traceback of a user error too.
DEBUG_ENV = "SOILNET_DEBUG"


def is_user_error(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """True for errors in the user's input or environment: shown as one line, not a traceback."""
    from soilnet.storage import StorageError

    if isinstance(exc, (*USER_ERRORS, StorageError, *also)):
        return True
    return any(f"{c.__module__}.{c.__qualname__}" in LOOKUP_ERRORS for c in type(exc).__mro__)


def user_message(exc: BaseException) -> str:
    """One line naming what was asked and, for a path, what exists there instead."""
    if isinstance(exc, IsADirectoryError) and exc.filename:
        return f"{exc.filename} is a folder, not a file (a cube is a folder, a points table or config is a file)"
    if isinstance(exc, NotADirectoryError) and exc.filename:
        return f"{exc.filename} is a file, not a folder"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        parent = Path(str(exc.filename)).parent
        here = sorted(p.name for p in parent.iterdir())[:8] if parent.is_dir() else []
        return f"no such file or folder: {exc.filename}" + (
            f" ({parent} holds: {', '.join(here)})" if here else f" ({parent} does not exist either)"
        )
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ValueError) else text.splitlines()[0]


def run_guarded(fn: Callable[[], T], also: tuple[type[BaseException], ...] = ()) -> T:
    """Run a command body; user errors (and `also`) become one red line and exit status 2.

    With ``$SOILNET_DEBUG=1`` (``soilnet --debug``) the traceback follows the line.
    """
    try:
        return fn()
    except Exception as exc:
        if not is_user_error(exc, also):
            raise
        console.print(f"[bold red]error:[/] {escape(user_message(exc))}", highlight=False)
        if os.environ.get(DEBUG_ENV) == "1":
            console.print_exception()
        raise typer.Exit(2) from exc


def facts_table(
    title: str, facts: Mapping[str, object], timings: Mapping[str, float] | None = None, files: Sequence[str] = ()
) -> Table:
    """A two-column table: one row per fact, then one per timed stage, then one per file written."""
    table = Table(title=title, show_header=False)
    for key, value in facts.items():
        table.add_row(key, str(value))
    for stage, seconds in (timings or {}).items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    for path in files:
        table.add_row("file", path)
    return table
