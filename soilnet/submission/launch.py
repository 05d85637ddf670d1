"""The entry point of submitted jobs: the job's YAML config travels in the environment.

``python -m soilnet.submission.launch JOB [ARGS...]`` writes the YAML text of
``SOILNET_JOB_CONFIG_YAML`` to a private file and runs ``python -m <module> --config FILE ARGS``
in this process, so the job's exit status is the process's. ``JOB`` is a name under ``jobs``
(``map`` runs ``jobs.map``) or a dotted module path.
"""

from __future__ import annotations

import logging
import os
import re
import runpy
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from soilnet.config import read_yaml

log = logging.getLogger(__name__)

#: Environment variable that carries the job's YAML config text.
CONFIG_ENV_VAR = "SOILNET_JOB_CONFIG_YAML"
#: Largest config accepted in the environment (Linux caps one variable at 128 KiB).
MAX_CONFIG_BYTES = 100_000
_JOB_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


def job_module(job: str) -> str:
    """The module a job name runs: ``map`` -> ``jobs.map``; dotted names are kept."""
    if not _JOB_RE.match(job):
        raise ValueError(f"job {job!r} is not a job name (e.g. 'map') nor a dotted module path")
    return job if "." in job else f"jobs.{job}"


def read_config_text(path: str | os.PathLike[str]) -> str:
    """Read a job config file, checking that it is a YAML mapping small enough to travel."""
    path = Path(path)
    read_yaml(path)
    text = path.read_text(encoding="utf-8")
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ValueError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    return text


def launcher_entrypoint(job: str, args: Sequence[str] = ()) -> str:
    """Shell command that runs ``job`` through this launcher."""
    job_module(job)
    return shlex.join(["python", "-m", __name__, job, *args])


def run(job: str, args: Sequence[str], environ: dict[str, str] | None = None) -> None:
    """Write the config from the environment to a file and run the job module with it."""
    env = os.environ if environ is None else environ
    text = env.get(CONFIG_ENV_VAR)
    if text is None:
        raise SystemExit(f"{CONFIG_ENV_VAR} is not set: submit the job with `soilnet submit`")
    module = job_module(job)
    with tempfile.TemporaryDirectory(prefix="soilnet-job-") as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        log.info("running %s with config %s", module, path)
        sys.argv = [module, "--config", str(path), *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m soilnet.submission.launch JOB [ARGS...]")
    run(sys.argv[1], sys.argv[2:])
