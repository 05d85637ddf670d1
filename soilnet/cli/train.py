"""Training commands: ``pretrain``, ``finetune``, ``evaluate`` and ``promote`` (Ray Train + MLflow)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from soilnet.cli.common import ConfigOpt, SetOpt, configure, results, run_guarded

app = typer.Typer(no_args_is_help=True, help="Pretrain, fine-tune, evaluate and promote models (Ray Train, MLflow).")

ResumeOpt = Annotated[
    str | None,
    typer.Option("--resume-from", help="Checkpoint folder (local or s3://) to resume, with its MLflow run."),
]


@app.command("pretrain")
def pretrain(config: ConfigOpt = None, set_: SetOpt = None, resume_from: ResumeOpt = None) -> None:
    """Self-supervised pretraining of the recipe's encoders on unlabelled locations (section `pretrain`)."""
    from soilnet.training.pretrain import run_pretrain
    from soilnet.training.step_progress import step_bar

    def body() -> None:
        cfg = configure(config, set_)
        with step_bar("pretrain") as on_step:
            result = run_pretrain(
                cfg.data, cfg.train, cfg.pretrain, cfg.tracking, cfg.finetune.target, resume_from, on_step
            )
        results.print(f"pretrained encoders: [bold]{result.encoders}[/] (MLflow run {result.run_id})")

    run_guarded(body)


@app.command("finetune")
def finetune(config: ConfigOpt = None, set_: SetOpt = None, resume_from: ResumeOpt = None) -> None:
    """Fine-tune one model per spatial fold (section `finetune`); writes the bundle, prints CV metrics."""
    from soilnet.config import dump_config
    from soilnet.evaluation.metrics import format_comparison
    from soilnet.training.finetune import run_cross_validation
    from soilnet.training.step_progress import step_bar

    def body() -> None:
        cfg = configure(config, set_)
        with step_bar("fine-tune (all folds)") as on_step:
            cv = run_cross_validation(
                cfg.data, cfg.train, cfg.finetune, cfg.tracking, resume_from, on_step, dump_config(cfg)
            )
        results.print(format_comparison(cv.summary), markup=False, highlight=False)
        results.print(f"bundle: [bold]{cv.bundle}[/] (MLflow run {cv.run_id}; promote with --run-id {cv.run_id})")

    run_guarded(body)


RegionsOpt = Annotated[
    str | None,
    typer.Option(
        "--regions", help="GeoJSON (lon/lat) of regions: every metric per region and by distance to training points."
    ),
]
RegionFieldOpt = Annotated[str, typer.Option("--region-field", help="Feature property that names a region.")]


@app.command("evaluate")
def evaluate(
    config: ConfigOpt = None, set_: SetOpt = None, regions: RegionsOpt = None, region_field: RegionFieldOpt = "name"
) -> None:
    """Cross-validate the recipe and the tree baselines on the same spatial folds; print the comparison.

    The last line gives the 90 % intervals' held-out coverage and width and the AOA fraction:
    ``INTERVALS: coverage_90=C width_90=W aoa_fraction=A (target: 0.88 <= coverage_90 <= 0.92)``.
    """
    from soilnet.config import dump_config
    from soilnet.tracking.runs import RunTracker
    from soilnet.training.evaluate import compare_with_baselines
    from soilnet.training.finetune import MODEL_NAME, run_cross_validation
    from soilnet.training.step_progress import step_bar

    def body() -> None:
        cfg = configure(config, set_)
        with step_bar("fine-tune (all folds)") as on_step:
            cv = run_cross_validation(
                cfg.data, cfg.train, cfg.finetune, cfg.tracking, on_step=on_step, config_text=dump_config(cfg)
            )
        tracker = RunTracker.for_run(cfg.tracking, cfg.data.root, cv.run_id)
        comparison = compare_with_baselines(
            cv, cv.source, cfg.evaluate, cfg.finetune.pretrained, tracker, cfg.finetune.target
        )
        results.print(comparison.table, markup=False, highlight=False)  # CLASSIFY[<target>] is not markup
        if regions:
            from soilnet.training.regional import regional_report

            primary = comparison.per_fold["target"].iloc[0]
            predictions = {MODEL_NAME: cv.predictions} | {
                r.model: r.predictions
                for r in comparison.baselines
                if r.predictions.shape == cv.predictions.shape and r.per_fold["target"].iloc[0] == primary
            }
            report = regional_report(
                cfg.data, cv.table, predictions, regions, region_field, cfg.finetune.target, tracker
            )
            results.print(report.text, markup=False, highlight=False)
        results.print(f"MLflow run {cv.run_id}")
        if cv.calibration is not None and cv.calibration.summary:
            results.print(cv.calibration.interval_line(), markup=False, highlight=False)

    run_guarded(body)


@app.command("promote")
def promote(
    run_id: Annotated[str, typer.Option("--run-id", help="MLflow id of a finished fine-tuning (CV) run.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Register a run's bundle; move the `champion` alias only if it beats the champion's CV metric."""
    from soilnet.tracking.registry import promote as promote_run

    def body() -> None:
        cfg = configure(config, set_)
        outcome = promote_run(cfg.tracking, cfg.data.root, run_id)
        table = Table(title=f"{outcome.model} version {outcome.version}", show_header=False)
        table.add_row(f"cv {outcome.metric}", f"{outcome.candidate:.4g}")
        previous = "none" if outcome.previous is None else f"v{outcome.previous_version}: {outcome.previous:.4g}"
        table.add_row("previous champion", previous)
        table.add_row("promoted", "yes" if outcome.promoted else "no")
        results.print(table)

    run_guarded(body)
