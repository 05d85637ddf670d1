"""A model bundle as an MLflow Model: a pyfunc with a tensor signature, an input example and the bundle as artifacts.

``mlflow.pyfunc.load_model("models:/soilnet-soc_g_kg@champion").predict({"image": ..., "climate": ...})``
returns one array per target of the bundle (the ensemble mean in target units), the same numbers as
`soilnet.recipes.bundle.ModelBundle.predict`; a categorical target (C1) gives its fold-mean class
probabilities (B, n_classes), in the order of ``meta.classes``. Inputs are decoded, physical values: ``image``
(B, bands, P, P) float32 with NaN for nodata, ``climate`` (B, months, variables) float32.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

#: Key of the bundle folder among the pyfunc's artifacts.
BUNDLE_KEY = "bundle"
#: Packages the pyfunc needs besides soilnet itself (installed where it is served).
REQUIREMENTS = ("torch", "timm", "numpy", "safetensors", "pydantic", "pyyaml", "mlflow")


class BundleModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: loads the bundle from its artifacts once, predicts one output per target."""

    def load_context(self, context: Any) -> None:
        """Load the fold models of the bundle artifact."""
        from soilnet.recipes.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts[BUNDLE_KEY])

    def predict(self, context, model_input, params=None):  # no hints: the tensor signature is the schema
        """Ensemble mean per target, ``{target: (B,) float32}`` (class probabilities (B, C) for a categorical one).

        `model_input` is a dict of arrays: ``image`` (B, bands, P, P) and ``climate`` (B, months, variables).
        """
        image, climate = model_input["image"], model_input.get("climate")
        if any(o.categorical for o in self.bundle.meta.outputs()):
            predicted = self.bundle.predict_outputs(image, climate)
            return {name: parts.get("mean", parts.get("probabilities")) for name, parts in predicted.items()}
        mean, _ = self.bundle.predict(image, climate)
        return {target: mean[:, i] for i, target in enumerate(self.bundle.meta.targets)}


def signature(bundle: Any) -> Any:
    """Tensor specs of the bundle's inputs (image windows, climate series) and of its outputs (one per target)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    meta = bundle.meta
    f32 = np.dtype("float32")
    inputs = Schema(
        [
            TensorSpec(f32, (-1, len(meta.bands), meta.patch_px, meta.patch_px), "image"),
            TensorSpec(f32, (-1, meta.months, len(meta.climate_variables)), "climate"),
        ]
    )
    outputs = [TensorSpec(f32, (-1, o.width) if o.categorical else (-1,), o.name) for o in meta.outputs()]
    return ModelSignature(inputs=inputs, outputs=Schema(outputs))


def input_example(bundle: Any, rows: int = 2) -> dict[str, np.ndarray]:
    """A small batch of plausible inputs: every band and variable at points across its normalisation range."""
    stats, meta = bundle.stats, bundle.meta
    level = np.linspace(0.25, 0.75, rows, dtype=np.float32)[:, None]
    image = np.asarray(stats.image_center, np.float32) + level * np.asarray(stats.image_scale, np.float32)
    climate = np.asarray(stats.climate_mean, np.float32) + (level - 0.5) * np.asarray(stats.climate_std, np.float32)
    return {
        "image": np.broadcast_to(image[:, :, None, None], (rows, len(meta.bands), meta.patch_px, meta.patch_px)).copy(),
        "climate": np.broadcast_to(climate[:, None, :], (rows, meta.months, len(meta.climate_variables))).copy(),
    }


def requirements() -> list[str]:
    """Pinned requirements of the pyfunc (the versions installed here)."""
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def save_bundle_model(bundle_folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Write the MLflow Model of a local bundle folder at `path` (a new folder); returns `path`."""
    from soilnet.recipes.bundle import load_bundle

    bundle = load_bundle(str(bundle_folder))
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=BundleModel(),
        artifacts={BUNDLE_KEY: str(bundle_folder)},
        signature=signature(bundle),
        input_example=input_example(bundle),
        pip_requirements=requirements(),
        metadata={"soilnet.targets": list(bundle.meta.targets), "soilnet.units": list(bundle.meta.units)},
    )
    return Path(path)


def bundle_in_model(folder: str | os.PathLike[str]) -> Path:
    """The bundle folder inside a downloaded MLflow Model (``artifacts/<name>``), or `folder` if it is a bundle."""
    folder = Path(folder)
    if (folder / "meta.json").exists():
        return folder
    inside = sorted((folder / "artifacts").glob("*/meta.json"))
    if inside:
        return inside[0].parent
    raise FileNotFoundError(f"{folder} holds neither a model bundle nor an MLflow Model with one under artifacts/")
