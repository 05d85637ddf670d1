"""The whole demo: region -> SSL pretraining -> fine-tuning with spatial CV -> baselines -> registry -> map -> spectra.

`run_full_demo` is what ``soilnet demo`` / ``make demo`` run. It needs the root config's
``train``, ``pretrain``, ``finetune``, ``evaluate`` and ``tracking`` sections.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from soilnet import storage
from soilnet.config import SoilnetConfig, dump_config
from soilnet.demo.data_stage import DemoReport, run_demo
from soilnet.demo.map_stage import MapDemoReport, map_demo
from soilnet.mapping.viewer_command import serve_command
from soilnet.spectra.flow import SpectraDemoReport, SpectraJob, run_spectra_demo
from soilnet.tracking.registry import Promotion, promote
from soilnet.tracking.runs import RunTracker, ui_command
from soilnet.training.evaluate import compare_with_baselines
from soilnet.training.finetune import run_cross_validation
from soilnet.training.pretrain import run_pretrain
from soilnet.training.step_progress import step_bar

log = logging.getLogger(__name__)


@dataclass
class FullDemoReport:
    """What the full demo produced: the data report, the comparison table, the promotion, where to look."""

    data: DemoReport
    comparison: str
    promotion: Promotion
    pretrain_run_id: str
    finetune_run_id: str
    bundle: str
    ui_command: str
    map: MapDemoReport
    serve_command: str
    timings_s: dict[str, float] = field(default_factory=dict)
    spectra: SpectraDemoReport | None = None


def run_full_demo(cfg: SoilnetConfig) -> FullDemoReport:
    """Run every stage on the configured workspace; prints nothing (the CLI renders the report)."""
    timings: dict[str, float] = {}
    data_report = run_demo(cfg, overwrite=True)
    runs = cfg.data.url("runs")
    if storage.exists(runs):
        log.info("removing the previous demo's runs at %s (the region was regenerated)", runs)
        storage.remove(runs)
    timings.update({f"data.{k}": v for k, v in data_report.timings_s.items()})
    t0 = time.perf_counter()
    with step_bar("pretrain") as on_step:
        pre = run_pretrain(cfg.data, cfg.train, cfg.pretrain, cfg.tracking, target=cfg.finetune.target, on_step=on_step)
    timings["pretrain"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    finetune = cfg.finetune.model_copy(update={"pretrained": pre.encoders})
    with step_bar("fine-tune (all folds)") as on_step:
        cv = run_cross_validation(
            cfg.data, cfg.train, finetune, cfg.tracking, config_text=dump_config(cfg), on_step=on_step
        )
    timings["finetune"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tracker = RunTracker.for_run(cfg.tracking, cfg.data.root, cv.run_id)
    comparison = compare_with_baselines(cv, cv.source, cfg.evaluate, pre.encoders, tracker, finetune.target)
    timings["evaluate"] = time.perf_counter() - t0
    promotion = promote(cfg.tracking, cfg.data.root, cv.run_id)
    t0 = time.perf_counter()
    data = cfg.data
    map_out = storage.join(data.url("runs"), "map")
    demo_map = map_demo(
        data.url("raster"),
        data.url("climate"),
        data.url("region"),
        data.url("truth"),
        map_out,
        cv.bundle,
        resolution_m=cfg.demo.map_resolution_m,
        run_id=cv.run_id,
        tracking_uri=tracker.uri,
    )
    timings["map"] = time.perf_counter() - t0
    spectra = run_spectra_demo(SpectraJob(cfg.data, cfg.train, cfg.tracking, cfg.spectra), cfg.demo.seed)
    timings.update(spectra.timings_s)
    return FullDemoReport(
        data=data_report,
        comparison=comparison.table,
        promotion=promotion,
        pretrain_run_id=pre.run_id,
        finetune_run_id=cv.run_id,
        bundle=cv.bundle,
        ui_command=ui_command(tracker.uri),
        map=demo_map,
        serve_command=serve_command(map_out, data.url("points")),
        timings_s=timings,
        spectra=spectra,
    )
