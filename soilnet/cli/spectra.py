"""``soilnet spectra ...``: spectral library ingest, VAE pretraining, NIR->MIR conversion, property models, labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from soilnet.cli.common import ConfigOpt, SetOpt, configure, facts_table, results, run_guarded

if TYPE_CHECKING:
    from soilnet.config import SoilnetConfig
    from soilnet.spectra.flow import SpectraJob

app = typer.Typer(
    name="spectra",
    help="Soil spectra: library ingest, VAE pretraining, NIR->MIR conversion, property models and labels.",
    no_args_is_help=True,
)

LibraryOpt = Annotated[
    str | None, typer.Option("--library", help="Spectral library URL (default: spectra.library or <root>/spectra).")
]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="Model folder (default: <runs>/<run>/model).")]
PrefixOpt = Annotated[str | None, typer.Option("--prefix", help="Spectral column prefix (default: detected).")]
IdOpt = Annotated[str, typer.Option("--id-column", help="Sample id column.")]
TableArg = Annotated[str, typer.Argument(help="Wide table of MIR spectra with the target column (CSV/Parquet).")]
TargetOpt = Annotated[str, typer.Option("--target", help="Target column, e.g. soc_g_kg.")]


def _job(cfg: SoilnetConfig) -> SpectraJob:
    """The sections a spectral job reads."""
    from soilnet.spectra.flow import SpectraJob

    return SpectraJob(cfg.data, cfg.train, cfg.tracking, cfg.spectra)


def _library(cfg: SoilnetConfig, given: str | None) -> str:
    """The library URL, confined to the workspace roots."""
    from soilnet.spectra.flow import library_url

    return cfg.data.writable(given or library_url(_job(cfg)), "spectra.library")


@app.command("ingest")
def ingest(
    file: Annotated[str, typer.Argument(help="Wide CSV or Parquet table (local or s3://).")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    library: LibraryOpt = None,
    prefix: PrefixOpt = None,
    id_column: IdOpt = "id",
    repeat_column: Annotated[str | None, typer.Option(help="Scan repeat column (default: order per id).")] = None,
    unit: Annotated[str | None, typer.Option(help="cm-1 or nm (default: inferred).")] = None,
    fidelity: Annotated[str | None, typer.Option(help="MIR, NIR or visNIR (default: inferred).")] = None,
    quantity: Annotated[str | None, typer.Option(help="absorbance or reflectance (default: inferred).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace this fidelity's spectra.")] = False,
    append: Annotated[bool, typer.Option("--append", help="Add to this fidelity's spectra (same axis).")] = False,
) -> None:
    """Read a wide spectral table into the library; lists the rows left out for gaps or non-finite values."""
    from soilnet.spectra.ingest import ingest_table

    def body() -> None:
        cfg = configure(config, set_)
        report = ingest_table(
            file,
            _library(cfg, library),
            overwrite=overwrite,
            append=append,
            prefix=prefix,
            id_column=id_column,
            repeat_column=repeat_column,
            unit=unit,
            fidelity=fidelity,
            quantity=quantity,
        )
        facts = {
            "fidelity": report.fidelity,
            "axis": f"{report.axis_range[0]:g}-{report.axis_range[1]:g} {report.unit}, {report.n_points} points",
            "quantity": report.quantity,
            "scans written": report.n_scans,
            "samples": report.n_samples,
            "rows left out (gaps, non-finite)": report.n_gap_rows,
            "other columns": ", ".join(report.other_columns) or "-",
            **{f"inferred {i + 1}": line for i, line in enumerate(report.inferred)},
        }
        results.print(facts_table(f"spectra ingest {report.source}", facts, files=[report.written]))
        for gap in report.gaps:
            results.print(f"left out: row {gap.row} (id {gap.id}): {gap.n_bad} bad value(s), e.g. {gap.columns}")

    run_guarded(body)


@app.command("pretrain")
def pretrain(
    config: ConfigOpt = None, set_: SetOpt = None, library: LibraryOpt = None, output: OutputOpt = None
) -> None:
    """Pretrain the spectral VAE on the library's MIR spectra (Ray Train, MLflow); prints held-out errors."""
    from soilnet.spectra.pretrain import run_vae_pretraining

    def body() -> None:
        cfg = configure(config, set_)
        out = cfg.data.writable(output, "--output") if output else None
        result = run_vae_pretraining(
            _library(cfg, library), cfg.spectra, cfg.train, cfg.tracking, cfg.data.root, cfg.data.url("runs"), out
        )
        results.print(result.table)
        results.print(f"VAE: [bold]{result.url}[/] (MLflow run {result.run_id})")

    run_guarded(body)


@app.command("convert")
def convert(
    vae: Annotated[str, typer.Option("--vae", help="Pretrained VAE folder (output of spectra pretrain).")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    library: LibraryOpt = None,
    output: OutputOpt = None,
) -> None:
    """Train the NIR encoder into the frozen MIR decoder on paired spectra; prints held-out conversion errors."""
    from soilnet.spectra.conversion import run_conversion

    def body() -> None:
        cfg = configure(config, set_)
        out = cfg.data.writable(output, "--output") if output else None
        result = run_conversion(
            _library(cfg, library), vae, cfg.spectra, cfg.train, cfg.tracking, cfg.data.root, cfg.data.url("runs"), out
        )
        results.print(result.table)
        results.print(f"converter: [bold]{result.url}[/] (MLflow run {result.run_id})")

    run_guarded(body)


@app.command("evaluate")
def evaluate(
    table: TableArg,
    target: TargetOpt,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    prefix: PrefixOpt = None,
    id_column: IdOpt = "id",
    group: Annotated[str | None, typer.Option(help="Group column for grouped folds (no coordinates).")] = None,
    vae: Annotated[str | None, typer.Option(help="Pretrained VAE (default: pretrained on the table).")] = None,
    nir: Annotated[str | None, typer.Option(help="Wide table of paired NIR spectra (same ids).")] = None,
    nir_prefix: Annotated[str | None, typer.Option(help="NIR column prefix (default: detected).")] = None,
    converter: Annotated[str | None, typer.Option(help="NIR->MIR converter (default: trained on the tables).")] = None,
) -> None:
    """Cross-validate PLSR, OSSL's Cubist, latent RF / MLP (and converted-spectra models) on the same folds."""
    from soilnet.spectra.flow import EvaluateInputs, read_table_samples, run_evaluate

    def body() -> None:
        cfg = configure(config, set_)
        inputs = EvaluateInputs(
            mir=read_table_samples(table, prefix, id_column),
            target=target,
            nir=read_table_samples(nir, nir_prefix, id_column) if nir else None,
            vae=vae,
            converter=converter,
            group=group,
        )
        result = run_evaluate(inputs, _job(cfg))
        results.print(f"VAE {result.vae}; converter {result.converter or '-'}; MLflow run {result.run_id}")
        results.print(result.comparison.table, highlight=False, markup=False)

    run_guarded(body)


@app.command("label")
def label(
    table: TableArg,
    target: TargetOpt,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    prefix: PrefixOpt = None,
    id_column: IdOpt = "id",
    model: Annotated[str, typer.Option(help="plsr or ossl_cubist (fitted on every lab value).")] = "plsr",
    points: Annotated[str | None, typer.Option(help="Points table to label (default: data.points).")] = None,
) -> None:
    """Predict the target for points with spectra but no lab value; write them as labels with their error."""
    from soilnet.spectra.flow import read_table_samples
    from soilnet.spectra.labels import label_points

    def body() -> None:
        cfg = configure(config, set_)
        url = cfg.data.writable(points or cfg.data.url("points"), "--points")
        samples = read_table_samples(table, prefix, id_column)
        report = label_points(url, samples, target, model, cfg.spectra)
        results.print(facts_table(f"spectral labels of {target} in {url}", report))

    run_guarded(body)
