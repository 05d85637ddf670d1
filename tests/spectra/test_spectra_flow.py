"""End to end through the CLI on generated spectra: ingest -> VAE on Ray Train -> NIR->MIR -> evaluate -> labels.

One flow with every table, library, run and model on S3 (moto), local Ray and a local MLflow SQLite
store; what it must show: the VAE reconstructs
held-out spectra far better than their training mean spectrum, the converter beats a
mean-spectrum predictor of the measured MIR, every model is scored on the same folds and the
report ends with the SPECTRA line; spectral labels fill only points without a lab value.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from soilnet.cli.app import app
from soilnet.data.points import read_points, write_points
from soilnet.spectra.demo import generate_demo_spectra
from soilnet.spectra.export import read_card

runner = CliRunner()

CONFIG = {
    "train": {"num_workers": 2, "cpus_per_worker": 0.5, "keep_checkpoints": 1},
    "spectra": {
        "mir": {
            "steps": [
                {"kind": "absorbance"},
                {"kind": "resample", "start": 600, "stop": 4000, "step": 16},
                {"kind": "snv"},
            ]
        },
        "nir": {
            "steps": [
                {"kind": "absorbance"},
                {"kind": "resample", "start": 1350, "stop": 2550, "step": 8},
                {"kind": "snv"},
            ]
        },
        "vae": {"latent_dim": 8, "channels": [16, 32, 32], "epochs": 2, "steps_per_epoch": 60, "batch_size": 32},
        "conversion": {"epochs": 2, "steps_per_epoch": 60, "batch_size": 16},
        "downstream": {
            "k": 3,
            "rf_trees": 20,
            "pca_components": 20,
            "plsr_max_components": 6,
            "cubist_committees": [1],
            "mlp_hidden": [16],
        },
    },
}


def points_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"p{i:03d}" for i in range(n)],
            "lon": rng.uniform(10, 11, n),
            "lat": rng.uniform(50, 51, n),
            "x": rng.uniform(0, 5e4, n),
            "y": rng.uniform(0, 5e4, n),
            "date": pd.Timestamp("2020-06-01"),
            "depth_top_cm": 0.0,
            "depth_bottom_cm": 20.0,
            "source": "survey",
            "soc_g_kg": np.exp(rng.normal(3.0, 0.6, n)),
        }
    )


def invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_spectra_flow_through_the_cli_on_s3(tmp_path, s3_bucket, ray_local) -> None:
    root = f"{s3_bucket}/ws"
    config = tmp_path / "spectra.yaml"
    tracking = {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}
    config.write_text(yaml.safe_dump({"data": {"root": root}, "tracking": tracking, **CONFIG}))
    points = points_table(150)
    tables = generate_demo_spectra(points, root, seed=1, nir_fraction=0.5)
    common = ["--config", str(config)]

    out = invoke(["spectra", "ingest", tables.mir, *common])
    assert "MIR" in out and "600-4000 cm-1" in out
    invoke(["spectra", "ingest", tables.nir, *common])

    out = invoke(["spectra", "pretrain", *common])
    vae_url = re.search(r"VAE: (\S+)", out).group(1)
    card = read_card(vae_url)
    assert card.source.preprocessing.steps[1].step == 16  # the chain is recorded with the model
    recon, mean = card.metrics["holdout_recon_rmse_all"], card.metrics["holdout_mean_spectrum_rmse_all"]
    assert recon < 0.5 * mean, (recon, mean)  # held-out spectra: far below predicting the mean spectrum
    assert recon < 0.3  # SNV units: the spectra vary with unit standard deviation
    assert all(f"holdout_recon_rmse_{k}" in card.metrics for k in ("600_1200", "2800_3000", "3000_4000"))

    out = invoke(["spectra", "convert", "--vae", vae_url, *common])
    converter_url = re.search(r"converter: (\S+)", out).group(1)
    metrics = read_card(converter_url).metrics
    assert metrics["holdout_conversion_rmse_all"] < metrics["holdout_mean_mir_rmse_all"], metrics

    assert vae_url.startswith(s3_bucket) and converter_url.startswith(s3_bucket)
    models = ["--vae", vae_url, "--nir", tables.nir, "--converter", converter_url]
    out = invoke(["spectra", "evaluate", tables.mir, "--target", "soc_g_kg", "--prefix", "scan_mir.", *models, *common])
    lines = out.strip().splitlines()
    assert "random 3-fold CV" in out  # the CSV has no coordinates: random folds
    for model in ("plsr", "ossl_cubist", "rf_latent", "mlp_latent", "plsr_nir", "plsr_converted_nir"):
        assert any(line.startswith(model + " ") for line in lines), model
    last = re.fullmatch(r"SPECTRA: embed_rmse=(\S+) plsr_rmse=(\S+) ratio=(\S+) \(target: ratio <= 1\.0\)", lines[-1])
    assert last is not None, lines[-1]
    embed, plsr, ratio = map(float, last.groups())
    assert ratio == pytest.approx(embed / plsr, abs=2e-3)
    assert plsr < points["soc_g_kg"].std()  # PLSR learns SOC from the generated absorption bands

    lab = points.copy()
    lab.loc[lab.index[:20], "soc_g_kg"] = np.nan
    points_url = f"{root}/points.parquet"
    write_points(lab, points_url, 3035)
    invoke(["spectra", "label", tables.mir, "--target", "soc_g_kg", "--prefix", "scan_mir.", *common])
    labelled, _ = read_points(points_url)
    predicted = labelled["source"].str.endswith("+spectra:plsr")
    assert predicted.sum() == 20 and labelled["soc_g_kg"].notna().all()
    assert labelled.loc[~predicted, "soc_g_kg"].to_numpy() == pytest.approx(lab["soc_g_kg"].to_numpy()[20:])
    assert labelled.loc[predicted, "soc_g_kg_error"].nunique() == 1
    assert labelled.loc[~predicted, "soc_g_kg_error"].isna().all()
