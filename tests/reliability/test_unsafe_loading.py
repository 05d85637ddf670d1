"""No code path deserialises with pickle: checkpoints load with ``weights_only=True`` or safetensors, YAML safely."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "soilnet").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")])

#: Calls that run pickled code from whatever file they are given.
PICKLE_LOADERS = {
    "pickle.load", "pickle.loads", "cPickle.load", "cPickle.loads", "dill.load", "dill.loads",
    "joblib.load", "cloudpickle.load", "cloudpickle.loads", "pandas.read_pickle", "pd.read_pickle",
    "yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all",
    "mlflow.pytorch.load_model", "mlflow.sklearn.load_model", "mlflow.pyfunc.load_model", "torch.jit.load",
}  # fmt: skip
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(source: str, filename: str) -> list[str]:
    """``file:line: call`` for every call in ``source`` that can execute pickled or tagged YAML code."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        where = f"{filename}:{node.lineno}: {name}"
        weights_only = _keyword(node, "weights_only")
        if name in PICKLE_LOADERS:
            found.append(where)
        elif name == "torch.load" and not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
            found.append(f"{where} without weights_only=True")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _dotted(loader).rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
                found.append(f"{where} without a safe Loader")
        elif name.endswith(("np.load", "numpy.load")):
            pickle = _keyword(node, "allow_pickle")
            if pickle is not None and not (isinstance(pickle, ast.Constant) and pickle.value is False):
                found.append(f"{where} with allow_pickle")
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = (
        "import torch, yaml, pickle\n"
        "torch.load(f)\ntorch.load(f, weights_only=False)\nyaml.load(t)\nyaml.load(t, Loader=yaml.Loader)\n"
        "pickle.loads(b)\nyaml.unsafe_load(t)\nnp.load(p, allow_pickle=True)\njoblib.load(p)\n"
    )
    assert len(unsafe_calls(bad, "bad.py")) == 8
    good = "torch.load(f, map_location='cpu', weights_only=True)\nyaml.load(t, Loader=yaml.CSafeLoader)\n"
    assert unsafe_calls(good, "good.py") == []


def test_no_source_file_deserialises_unsafely():
    assert len(SOURCES) > 50
    found = [hit for path in SOURCES for hit in unsafe_calls(path.read_text("utf-8"), str(path.relative_to(ROOT)))]
    assert found == []
