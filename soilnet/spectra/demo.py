"""Generated spectra for the demo points: MIR for every point, a paired NIR subset, as wide CSV tables.

Each sample's absorbance is a sum of Gaussian absorption bands at the positions of organic
matter, clay minerals, carbonates and quartz, with depths driven by its SOC, clay and carbonate
content (saturating, as strong MIR bands do), on a sloped baseline with a random offset and a
multiplicative scatter factor; each of 2-4 scan repeats adds its own offset and white noise.
A paired subset also gets NIR reflectance (overtone bands of the same absorbers, 2 repeats).
Clay and carbonate are not in the demo region: they are drawn per point, clay loosely tied to SOC.
The tables follow OSSL's naming: ``scan_mir.<cm-1>_abs`` (4000 -> 600) and ``scan_nir.<nm>_ref``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from soilnet import storage

log = logging.getLogger(__name__)

#: MIR bands: (centre cm-1, half width cm-1, absorber, depth at saturation).
MIR_BANDS: tuple[tuple[float, float, str, float], ...] = (
    (2920.0, 25.0, "soc", 0.30),
    (2850.0, 20.0, "soc", 0.20),
    (1720.0, 35.0, "soc", 0.25),
    (1620.0, 45.0, "soc", 0.30),
    (3695.0, 12.0, "clay", 0.35),
    (3620.0, 18.0, "clay", 0.45),
    (1030.0, 55.0, "clay", 0.60),
    (915.0, 15.0, "clay", 0.30),
    (2520.0, 35.0, "carbonate", 0.30),
    (1800.0, 15.0, "carbonate", 0.20),
    (1430.0, 70.0, "carbonate", 0.70),
    (875.0, 12.0, "carbonate", 0.40),
    (713.0, 8.0, "carbonate", 0.25),
    (1870.0, 40.0, "quartz", 0.25),
    (1160.0, 50.0, "quartz", 0.40),
)
#: NIR bands: (centre nm, half width nm, absorber, depth at saturation).
NIR_BANDS: tuple[tuple[float, float, str, float], ...] = (
    (1730.0, 25.0, "soc", 0.06),
    (2310.0, 30.0, "soc", 0.08),
    (1415.0, 20.0, "clay", 0.10),
    (1910.0, 35.0, "clay", 0.15),
    (2205.0, 18.0, "clay", 0.12),
    (2340.0, 22.0, "carbonate", 0.10),
    (2160.0, 30.0, "quartz", 0.03),
)
#: Content at which a band reaches 1 - 1/e of its saturated depth.
SATURATION: dict[str, float] = {"soc": 40.0, "clay": 35.0, "carbonate": 15.0, "quartz": 60.0}
MIR_AXIS = np.arange(4000.0, 599.0, -4.0)
NIR_AXIS = np.arange(1350.0, 2551.0, 2.0)


@dataclass(frozen=True)
class DemoSpectraPaths:
    """The generated tables."""

    mir: str
    nir: str


def demo_properties(soc: np.ndarray, seed: int) -> pd.DataFrame:
    """Clay (%) and carbonate (CaCO3, %) per sample; quartz is what the clay leaves."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=soc.size)
    clay = np.clip(22.0 + 9.0 * z + 4.0 * np.log1p(soc / 20.0), 2.0, 70.0)
    calcareous = rng.random(soc.size) < 0.4
    caco3 = np.where(calcareous, rng.gamma(2.0, 6.0, soc.size), 0.0)
    return pd.DataFrame({"clay_pct": clay, "caco3_pct": caco3, "quartz_pct": np.clip(95.0 - clay - caco3, 1.0, None)})


def absorbance(axis: np.ndarray, bands: tuple, contents: dict[str, np.ndarray]) -> np.ndarray:
    """Band absorbance (N, L): sum of Gaussians whose depth saturates with each absorber's content."""
    out = np.zeros((len(next(iter(contents.values()))), axis.size))
    for centre, width, absorber, depth in bands:
        amount = depth * (1.0 - np.exp(-contents[absorber] / SATURATION[absorber]))
        out += amount[:, None] * np.exp(-0.5 * ((axis[None, :] - centre) / width) ** 2)
    return out


def scans(
    ids: np.ndarray, clean: np.ndarray, axis: np.ndarray, repeats: np.ndarray, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scan ids, repeat numbers, absorbance (scans, L)): baseline, scatter, per-repeat offset and noise."""
    span = (axis - axis.mean()) / np.ptp(axis)
    offset = rng.normal(0.35, 0.08, (len(ids), 1))
    slope = rng.normal(0.0, 0.06, (len(ids), 1))
    scatter = rng.uniform(0.85, 1.15, (len(ids), 1))
    base = scatter * clean + offset + slope * span[None, :]
    rows = np.repeat(np.arange(len(ids)), repeats)
    numbers = np.concatenate([np.arange(r) for r in repeats])
    values = base[rows] + rng.normal(0.0, 0.01, (rows.size, 1)) + rng.normal(0.0, noise, (rows.size, axis.size))
    return ids[rows], numbers, values


def wide_table(
    ids: np.ndarray, numbers: np.ndarray, values: np.ndarray, columns: list[str], lab: pd.DataFrame
) -> pd.DataFrame:
    """One row per scan: id, repeat, the lab values of its sample, then the spectral columns."""
    first = pd.DataFrame({"id": ids, "repeat": numbers})
    lab_rows = lab.set_index("id").loc[ids].reset_index(drop=True)
    return pd.concat([first, lab_rows, pd.DataFrame(values.astype(np.float32), columns=columns)], axis=1)


def generate_demo_spectra(
    points: pd.DataFrame, out: str, seed: int = 0, nir_fraction: float = 0.35, overwrite: bool = False
) -> DemoSpectraPaths:
    """Write ``spectra_mir.csv`` (every point, 2-4 repeats) and ``spectra_nir.csv`` (a paired subset) under `out`."""
    rng = np.random.default_rng(seed)
    paths = DemoSpectraPaths(storage.join(out, "spectra_mir.csv"), storage.join(out, "spectra_nir.csv"))
    for url in (paths.mir, paths.nir):
        if storage.exists(url) and not overwrite:
            raise FileExistsError(f"{url} exists (use --overwrite to replace it)")
    ids = points["id"].astype(str).to_numpy()
    soc = points["soc_g_kg"].to_numpy(dtype=np.float64)
    props = demo_properties(soc, seed)
    contents = {"soc": soc, "clay": props["clay_pct"].to_numpy(), "carbonate": props["caco3_pct"].to_numpy()}
    contents["quartz"] = props["quartz_pct"].to_numpy()
    lab = pd.concat([pd.DataFrame({"id": ids, "soc_g_kg": soc}), props[["clay_pct", "caco3_pct"]]], axis=1)
    mir_ids, mir_numbers, mir = scans(
        ids, absorbance(MIR_AXIS, MIR_BANDS, contents), MIR_AXIS, rng.integers(2, 5, ids.size), 0.004, rng
    )
    mir_table = wide_table(mir_ids, mir_numbers, mir, [f"scan_mir.{v:g}_abs" for v in MIR_AXIS], lab)
    paired = np.sort(rng.choice(ids.size, size=max(2, int(nir_fraction * ids.size)), replace=False))
    nir_clean = absorbance(NIR_AXIS, NIR_BANDS, {k: v[paired] for k, v in contents.items()})
    nir_ids, nir_numbers, nir_abs = scans(ids[paired], nir_clean, NIR_AXIS, np.full(paired.size, 2), 0.002, rng)
    nir_table = wide_table(
        nir_ids, nir_numbers, np.power(10.0, -nir_abs), [f"scan_nir.{v:g}_ref" for v in NIR_AXIS], lab
    )
    storage.makedirs(out)
    for url, table in ((paths.mir, mir_table), (paths.nir, nir_table)):
        with storage.open_file(url, "w") as handle:
            table.to_csv(handle, index=False, float_format="%.6g")
        log.info("demo spectra: %d scans of %d samples written to %s", len(table), table["id"].nunique(), url)
    return paths
