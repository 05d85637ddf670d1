"""The config each Ray job entry point loads (``python -m jobs.<name> --config FILE``), and the checks a
deployment's configs must pass together.

The chart mounts ``jobs.<name>.config`` as ``/etc/soilnet/jobs/<name>.yaml``; `load_job_config` reads such a
file exactly as the job's command does, so the chart's shipped configs can be validated before a pod starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from soilnet.config import SoilnetConfig, load_config, load_section
from soilnet.configbase import StrictModel
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.mapping.config import MapConfig
from soilnet.nightly.config import NightlyConfig

Loader = Callable[[str | os.PathLike[str]], StrictModel]

#: How each job entry point loads its --config file (the same call its CLI command makes).
JOB_LOADERS: dict[str, Loader] = {
    "acquire": lambda path: load_section(path, "acquire", AcquireConfig),
    "map": lambda path: load_section(path, "map", MapConfig),
    "nightly": lambda path: load_section(path, "nightly", NightlyConfig),
    **{job: load_config for job in ("pretrain", "finetune", "evaluate", "promote", "demo")},
}

_MLFLOW_SOURCE = re.compile(r"^models:/(?P<name>[^@/]+)@(?P<alias>[A-Za-z0-9_-]+)$")


def load_job_config(job: str, path: str | os.PathLike[str]) -> StrictModel:
    """The config of ``job`` read from ``path`` as ``python -m jobs.<job>`` reads it (ConfigError if invalid)."""
    if job not in JOB_LOADERS:
        raise KeyError(f"no job entry point jobs.{job} (known: {sorted(JOB_LOADERS)})")
    return JOB_LOADERS[job](path)


def mapped_model(cfg: StrictModel) -> MapConfig | None:
    """The map a job config regenerates (map or nightly jobs), or None."""
    if isinstance(cfg, NightlyConfig):
        return cfg.map
    return cfg if isinstance(cfg, MapConfig) else None


def check_model_names(configs: Mapping[str, StrictModel]) -> None:
    """Every map of one deployment loads the model its training registers, under the champion alias.

    ``configs`` are a deployment's job configs by job name; ValueError names the jobs that disagree.
    """
    registered = {
        (c.tracking.model_name([spec.name for spec in c.finetune.target_specs]), c.tracking.champion_alias): job
        for job, c in configs.items()
        if isinstance(c, SoilnetConfig) and job != "demo"
    }
    for job, cfg in configs.items():
        map_cfg = mapped_model(cfg)
        bundle = map_cfg.model.bundle if map_cfg is not None else None
        match = _MLFLOW_SOURCE.match(bundle or "")
        if match is None or not registered:
            continue
        wanted = (match["name"], match["alias"])
        if wanted not in registered:
            names = ", ".join(f"jobs.{j}: models:/{n}@{a}" for (n, a), j in registered.items())
            raise ValueError(f"jobs.{job} maps {bundle}, but training registers {names}")
