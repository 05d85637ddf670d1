"""Run an experiment design: every arm and seed on the same points, cubes and folds, then the table and tests.

One MLflow parent run per design (kept in ``experiment.json``, so a rerun logs into it). A deep arm-seed
is a fine-tuning cross-validation (after a pretraining when the arm asks for one, shared by arms with
the same recipe and seed) whose run, with its fold runs, is nested under the parent; a baseline
arm-seed gets a run with one nested run per fold. Each finished arm-seed is saved
(`soilnet.experiments.store`); a rerun loads it instead of running it again. Every arm is checked
to have scored the experiment's points with the experiment's fold ids.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from soilnet import storage
from soilnet.config import SoilnetConfig, dump_config
from soilnet.data.normalisation import load_stats
from soilnet.evaluation.design import ArmConfig, DesignConfig
from soilnet.evaluation.experiment_table import fold_scores, format_experiment, seed_fold_summary
from soilnet.evaluation.significance import pairwise_tests
from soilnet.experiments.arms import (
    arm_config,
    arm_digest,
    arm_recipe,
    baseline_inputs,
    deep_inputs,
    pretrain_key,
    write_recipe,
)
from soilnet.experiments.store import ArmRecord, ExperimentStore
from soilnet.experiments.tabular import WindowFeatures, run_baseline
from soilnet.recipes.recipe import RecipeConfig
from soilnet.tracking.runs import RunTracker
from soilnet.training.evaluate import encoder_features
from soilnet.training.finetune import run_cross_validation
from soilnet.training.job import fit_recipe, labelled_table
from soilnet.training.pretrain import run_pretrain
from soilnet.training.samples import CubeInputs, CubeSource

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"


@dataclass
class ExperimentReport:
    """What an experiment produced: the table, the tests, the headline, which arm-seeds ran or were skipped."""

    design: str
    run_id: str
    per_fold: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    table: str
    significance: str
    headline: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Experiment:
    """A design being run: the root config, the folder, the shared points and folds, the parent run."""

    cfg: SoilnetConfig
    design: DesignConfig
    store: ExperimentStore
    table: pd.DataFrame
    parent: RunTracker
    recipes: dict[str, RecipeConfig] = field(default_factory=dict)
    features: WindowFeatures | None = None

    @property
    def runs(self) -> str:
        """``data.runs`` of every arm: the training runs stay inside the experiment's folder."""
        return storage.join(self.store.root, "runs")

    def nest(self, run_id: str, arm: str, seed: int) -> None:
        """Nest a run made by a training job under the experiment's parent run."""
        tracker = RunTracker.for_run(self.cfg.tracking, self.cfg.data.root, run_id, self.parent.uri)
        tracker.set_tags({PARENT_TAG: self.parent.run_id, "soilnet.arm": arm, "soilnet.seed": seed})


def experiment_root(cfg: SoilnetConfig, design: DesignConfig) -> str:
    """The design's folder: ``<data.runs>/<experiment.run_name>/<design>``."""
    return storage.join(cfg.data.url("runs"), cfg.experiment.run_name, design.name)


def start(cfg: SoilnetConfig, design: DesignConfig) -> Experiment:
    """Open the design's folder, its points and folds and its parent run (the stored one on a rerun)."""
    store = ExperimentStore(experiment_root(cfg, design))
    table = labelled_table(cfg.data, cfg.finetune.target, cfg.finetune.folds)
    state = store.state()
    if state.get("run_id"):
        parent = RunTracker.for_run(cfg.tracking, cfg.data.root, state["run_id"])
        log.info("experiment %s: logging into its earlier parent run %s", design.name, parent.run_id)
    else:
        parent = RunTracker.start(
            cfg.tracking, cfg.data.root, f"experiment-{design.name}", tags={"soilnet.job": "experiment"}
        )
        parent.log_params(
            {"design": design.model_dump(mode="json"), "experiment": cfg.experiment.model_dump(mode="json")}
        )
        parent.log_text(dump_config(cfg), "config.yaml")
        store.save_state({"run_id": parent.run_id, "design": design.name})
    return Experiment(cfg, design, store, table, parent)


def check_shared(exp: Experiment, arm: str, scored: pd.DataFrame) -> None:
    """Refuse an arm that scored other points or other fold ids than the experiment's."""
    expected = exp.table[["id", "fold"]].reset_index(drop=True).astype({"id": str})
    got = scored[["id", "fold"]].reset_index(drop=True).astype({"id": str, "fold": np.int64})
    if not expected.equals(got):
        raise ValueError(
            f"arm {arm!r} was scored on other points or folds than the experiment ({len(got)} rows, expected "
            f"{len(expected)}): its overrides must not change finetune.target, finetune.folds or the points table"
        )


def predictions_frame(table: pd.DataFrame, predictions: np.ndarray) -> pd.DataFrame:
    """``id``, ``fold``, ``target`` and out-of-fold ``prediction`` of every point."""
    return pd.DataFrame(
        {
            "id": table["id"].astype(str).to_numpy(),
            "fold": table["fold"].to_numpy(np.int64),
            "target": table["target"].to_numpy(np.float64),
            "prediction": np.asarray(predictions, dtype=np.float64),
        }
    )


def pretrained_encoders(exp: Experiment, cfg: SoilnetConfig, arm: ArmConfig, url: str, seed: int) -> str:
    """The encoders of the arm's pretraining: a finished one with the same recipe and settings, else a new one."""
    key = pretrain_key(exp.recipes[arm.name], cfg)
    done = exp.store.pretraining(key)
    if done is not None:
        log.info("arm %s, seed %d: reusing pretraining %s (%s)", arm.name, seed, key, done["encoders"])
        return str(done["encoders"])
    run_name = f"pretrain-{key}"
    storage.remove(storage.join(exp.runs, run_name))  # an unfinished attempt's folder
    pre_cfg = cfg.pretrain.model_copy(update={"recipe": url, "run_name": run_name, "output": None})
    result = run_pretrain(cfg.data, cfg.train, pre_cfg, cfg.tracking, target=cfg.finetune.target)
    exp.nest(result.run_id, arm.name, seed)
    exp.store.save_pretraining(key, {"encoders": result.encoders, "run_id": result.run_id, "arm": arm.name})
    return result.encoders


def recipe_url(exp: Experiment, arm: str) -> str:
    """Where a deep arm's recipe is written (what its training jobs read)."""
    return storage.join(exp.store.root, "recipes", f"{arm}.yaml")


def run_deep(exp: Experiment, arm: ArmConfig, seed: int) -> ArmRecord:
    """Fine-tune an arm's recipe on every fold (pretraining first if asked); nest its runs under the parent."""
    cfg = arm_config(exp.cfg, exp.design, arm, seed, exp.runs)
    url = write_recipe(exp.recipes[arm.name], recipe_url(exp, arm.name))
    encoders = cfg.finetune.pretrained
    if arm.pretrain:
        encoders = pretrained_encoders(exp, cfg, arm, url, seed)
    elif arm.pretrain_from:
        encoders = exp.store.load(arm.pretrain_from, seed).info["encoders"]
    run_name = f"{arm.name}-s{seed}"
    storage.remove(storage.join(exp.runs, run_name))  # an unfinished attempt's folder
    finetune = cfg.finetune.model_copy(update={"recipe": url, "run_name": run_name, "pretrained": encoders})
    cv = run_cross_validation(cfg.data, cfg.train, finetune, cfg.tracking, config_text=dump_config(cfg))
    exp.nest(cv.run_id, arm.name, seed)
    check_shared(exp, arm.name, cv.table)
    per_fold = cv.per_fold.assign(model=arm.name)
    info = {"run_id": cv.run_id, "encoders": encoders, "inputs": deep_inputs(cv.recipe)}
    return ArmRecord(arm.name, seed, per_fold, predictions_frame(cv.table, cv.predictions), info)


def first_deep(exp: Experiment) -> ArmConfig:
    """The design's first deep arm: the baselines read its windows."""
    return next(a for a in exp.design.arms if a.is_deep)


def window_features(exp: Experiment) -> WindowFeatures:
    """The baselines' features of the windows the first deep arm reads (read once per experiment)."""
    if exp.features is None:
        first = first_deep(exp)
        source = arm_source(exp, exp.recipes[first.name])
        exp.features = WindowFeatures.read(source, exp.table, exp.cfg.experiment.context_windows)
    return exp.features


def arm_source(exp: Experiment, recipe: RecipeConfig) -> CubeSource:
    """A sample source of the cubes with a recipe's window and months."""
    stream = exp.cfg.finetune.stream.model_copy(
        update={"patch_px": recipe.data.patch_px, "months": recipe.data.n_months}
    )
    return CubeSource(CubeInputs.open(exp.cfg.data), stream)


def ssl_features(exp: Experiment, arm: ArmConfig, seed: int) -> np.ndarray:
    """Frozen image features of the pretrained encoders of arm `encoders_from` at `seed`."""
    source_arm = arm.baseline.encoders_from
    encoders = exp.store.load(source_arm, seed).info["encoders"]
    cubes = CubeInputs.open(exp.cfg.data)
    # the recipe as its training job fitted it to the cubes (band and variable counts, mask channel)
    recipe, stream = fit_recipe(recipe_url(exp, source_arm), cubes, exp.cfg.finetune.stream)
    stats = load_stats(storage.join(encoders, "normalisation.json"))
    return encoder_features(recipe, stats, exp.table, CubeSource(cubes, stream), encoders)


def run_tabular(exp: Experiment, arm: ArmConfig, seed: int) -> ArmRecord:
    """Cross-validate a baseline arm; one MLflow run nested under the parent, one nested run per fold."""
    cfg = arm_config(exp.cfg, exp.design, arm, seed, exp.runs)
    features = window_features(exp)
    ssl = ssl_features(exp, arm, seed) if arm.baseline.inputs == "ssl_features" else None
    result = run_baseline(
        arm.name, arm.baseline, features.matrix(arm.baseline, ssl), exp.table, cfg.evaluate.baselines, seed
    )
    tracking, root = cfg.tracking, cfg.data.root
    tags = {"soilnet.arm": arm.name, "soilnet.seed": str(seed)}
    run = RunTracker.start(tracking, root, f"{arm.name}-s{seed}", parent=exp.parent, tags=tags)
    inputs = baseline_inputs(arm.baseline, features.windows, features.centre.shape[1], features.climate.shape[2])
    run.log_params({"baseline": arm.baseline.model_dump(mode="json"), "inputs": inputs, "seed": seed})
    per_fold = result.per_fold.assign(target=cfg.finetune.target)
    for row in per_fold.itertuples(index=False):
        fold_run = RunTracker.start(tracking, root, f"{arm.name}-s{seed}-fold{row.fold}", parent=run, tags=tags)
        fold_run.log_metrics({f"test_{m}": getattr(row, m) for m in ("rmse", "mae", "me", "r2", "ccc", "rpiq")})
        fold_run.finish()
    run.log_text(per_fold.to_csv(index=False), "per_fold_metrics.csv")
    run.finish()
    return ArmRecord(
        arm.name,
        seed,
        per_fold,
        predictions_frame(exp.table, result.predictions),
        {"run_id": run.run_id, "inputs": inputs},
    )


def digest(exp: Experiment, arm: ArmConfig, seed: int) -> str:
    """The digest of an arm-seed's settings (what a finished result must match to be reused)."""
    source = arm.name if arm.is_deep else (arm.baseline.encoders_from or first_deep(exp).name)
    return arm_digest(arm_config(exp.cfg, exp.design, arm, seed, exp.runs), arm, exp.recipes[source])


def run_arm(exp: Experiment, arm: ArmConfig, seed: int) -> ArmRecord:
    """Run one arm-seed and save it (timings and the digest of its settings in its record)."""
    t0, c0 = time.perf_counter(), time.process_time()
    record = run_deep(exp, arm, seed) if arm.is_deep else run_tabular(exp, arm, seed)
    record.per_fold = record.per_fold.assign(seed=seed, target=exp.cfg.finetune.target)
    record.info.update(wall_s=time.perf_counter() - t0, driver_cpu_s=time.process_time() - c0)
    record.info["digest"] = digest(exp, arm, seed)
    exp.store.save(record)
    log.info("arm %s, seed %d: done in %.0f s", arm.name, seed, record.info["wall_s"])
    return record


def significance_lines(tests: pd.DataFrame, method: str, alpha: float) -> str:
    """One line per pair: mean RMSE of each, p, Holm-adjusted p, and whether they differ at `alpha`."""
    lines = [f"paired {method} on per-fold RMSE (Holm-adjusted over {len(tests)} pairs, alpha {alpha}):"]
    for row in tests.itertuples(index=False):
        mark = "differ" if row.significant else "n.s."
        lines.append(
            f"  {row.a} ({row.mean_a:.3f}) vs {row.b} ({row.mean_b:.3f}): p={row.p:.3g} p_holm={row.p_holm:.3g} {mark}"
        )
    return "\n".join(lines)


def headline(summary: pd.DataFrame, tests: pd.DataFrame, reference: str, alpha: float) -> str:
    """``EXPERIMENT: best=ARM rmse=R <reference>_rmse=F p=P (target: ...)``: the best other arm vs the reference."""
    rmse = summary[summary["metric"] == "rmse"].set_index("model")["mean"]
    best = rmse.drop(reference).idxmin()
    pair = tests[
        ((tests["a"] == best) & (tests["b"] == reference)) | ((tests["a"] == reference) & (tests["b"] == best))
    ]
    p = float(pair["p"].iloc[0])
    return (
        f"EXPERIMENT: best={best} rmse={rmse[best]:.3f} {reference}_rmse={rmse[reference]:.3f} p={p:.3g} "
        f"(target: best beats {reference} with p < {alpha:g})"
    )


def run_experiment(cfg: SoilnetConfig, design: DesignConfig) -> ExperimentReport:
    """Run (or resume) every arm and seed of `design`, then tabulate, test and log to the parent run."""
    t0 = time.perf_counter()
    exp = start(cfg, design)
    exp.recipes = {a.name: arm_recipe(cfg, a) for a in design.arms if a.is_deep}
    ordered = [a for a in design.arms if a.is_deep] + [a for a in design.arms if not a.is_deep]
    records, ran, skipped = [], [], []
    for seed in range(cfg.experiment.seeds):
        for arm in ordered:
            label = f"{arm.name}/seed{seed}"
            if exp.store.finished(arm.name, seed, digest(exp, arm, seed)):
                log.info("arm %s: finished earlier with the same settings, skipped", label)
                skipped.append(label)
                records.append(exp.store.load(arm.name, seed))
            else:
                ran.append(label)
                records.append(run_arm(exp, arm, seed))
    for record in records:
        check_shared(exp, record.arm, record.predictions)
    report = tabulate(exp, records)
    report.ran, report.skipped = ran, skipped
    report.timings_s = {r.arm + f"/seed{r.seed}": float(r.info.get("wall_s", 0.0)) for r in records}
    report.timings_s["total"] = time.perf_counter() - t0
    return report


def metric_name(arm: str) -> str:
    """An arm name as MLflow accepts it in a metric key (``resnet+glam`` -> ``resnet_glam``)."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", arm)


def tabulate(exp: Experiment, records: list[ArmRecord]) -> ExperimentReport:
    """The table, the pairwise tests and the headline of the records; logged to the parent run."""
    cfg, design = exp.cfg.experiment, exp.design
    order = [a.name for a in design.arms]
    records = sorted(records, key=lambda r: (order.index(r.arm), r.seed))
    per_fold = pd.concat([r.per_fold for r in records], ignore_index=True)
    summary = seed_fold_summary(per_fold)
    inputs = {r.arm: str(r.info.get("inputs", "")) for r in records}
    table = format_experiment(summary, inputs)
    scores = fold_scores(per_fold, "rmse")
    points = {
        arm: np.mean([r.predictions["prediction"].to_numpy() for r in records if r.arm == arm], axis=0) for arm in order
    }
    observed = exp.table["target"].to_numpy(np.float64)
    tests = pairwise_tests(scores, cfg.test, cfg.alpha, points, observed, cfg.bootstrap_samples)
    significance = significance_lines(tests, cfg.test, cfg.alpha)
    line = headline(summary, tests, design.reference, cfg.alpha)
    parent = exp.parent
    parent.log_text(f"{table}\n\n{significance}\n{line}\n", "experiment.txt")
    parent.log_text(per_fold.to_csv(index=False), "experiment_per_fold.csv")
    parent.log_text(tests.to_csv(index=False), "experiment_tests.csv")
    metrics = {}
    for row in summary.itertuples(index=False):
        for stat in ("mean", "fold_std", "seed_std"):
            metrics[f"{metric_name(row.model)}.{row.metric}_{stat}"] = getattr(row, stat)
    parent.log_metrics(metrics)
    parent.finish()
    return ExperimentReport(design.name, parent.run_id, per_fold, summary, tests, table, significance, line)
