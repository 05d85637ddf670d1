"""``soilnet experiment NAME``: a design's arms on the same points, cubes and folds, its table and tests."""

from __future__ import annotations

from typing import Annotated

import typer

from soilnet.cli.common import ConfigOpt, SetOpt, configure, results, run_guarded

NameArg = Annotated[
    str,
    typer.Argument(help="A built-in design (soilnet-table, ssl-soilnet-table, dino-table) or a design YAML file."),
]
QuickOpt = Annotated[
    bool,
    typer.Option(
        "--quick", help="Apply experiment.quick (one seed, fewer epochs and trees) under the --set overrides."
    ),
]


def experiment(name: NameArg, config: ConfigOpt = None, set_: SetOpt = None, quick: QuickOpt = False) -> None:
    """Run every arm of an experiment design over experiment.seeds seeds; print the table and the tests.

    Arms already finished (in <data.runs>/<experiment.run_name>/<design>/) are skipped on a rerun. The last
    line compares the best arm with the design's reference (the fair random forest).
    """
    from soilnet.evaluation.design import load_design
    from soilnet.experiments.run import run_experiment

    def body() -> None:
        cfg = configure(config, set_)
        if quick:  # the quick overrides first, so that --set still wins
            cfg = configure(config, [*cfg.experiment.quick, *(set_ or [])])
        report = run_experiment(cfg, load_design(name))
        if report.skipped:
            results.print(f"skipped (finished earlier): {', '.join(report.skipped)}", markup=False)
        results.print(report.table, markup=False, highlight=False)
        results.print(report.significance, markup=False, highlight=False)
        results.print(f"MLflow parent run {report.run_id}", markup=False)
        results.print(report.headline, markup=False, highlight=False)

    run_guarded(body)
