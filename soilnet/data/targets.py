"""What a fine-tuning run predicts (contract C1): targets, their kinds, depths and the head's output layout.

A target is a column of the points table (`soilnet.data.points`): a continuous property
(``TARGET_COLUMNS``, NaN = not measured) or a class column (``CLASS_COLUMNS``: binary such as
``permafrost``, multi-class such as ``taxonomy_order``; class codes are indices in the table's
sorted vocabulary). With several depth intervals, each (target, depth) pair is one output named
``<target>_<top>_<bottom>cm``; with one, the output is named after the target.

The head predicts every output side by side, in output order: one column per continuous output
(standardised with the fold's training rows), ``n_classes`` logits per categorical output.
`head_slices` says which head columns belong to which output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from soilnet.configbase import StrictModel
from soilnet.data.points import CLASS_COLUMNS

TargetKind = Literal["continuous", "binary", "multiclass"]
#: The kinds whose outputs are class logits.
CATEGORICAL: tuple[TargetKind, ...] = ("binary", "multiclass")


class TargetSpec(StrictModel):
    """One target column of the points table, its kind and its weight in the loss."""

    name: str = Field(..., min_length=1, description="Column of the points table, e.g. 'soc_g_kg' or 'permafrost'.")
    kind: TargetKind | None = Field(
        None,
        description="continuous, binary or multiclass; None: the kind of a class column of the points table "
        "(soilnet.data.points.CLASS_COLUMNS), else continuous.",
    )
    weight: float = Field(1.0, gt=0, description="Weight of this target's loss term (each term is a mean).")

    @property
    def resolved_kind(self) -> TargetKind:
        """The configured kind, or the kind known for the column."""
        return self.kind or CLASS_COLUMNS.get(self.name, "continuous")  # type: ignore[return-value]


def as_spec(entry: str | TargetSpec) -> TargetSpec:
    """A `TargetSpec` of a config entry (a plain column name has the column's known kind and weight 1)."""
    return entry if isinstance(entry, TargetSpec) else TargetSpec(name=entry)


def output_name(column: str, depth: tuple[float, float] | None) -> str:
    """``<column>`` without a depth, ``<column>_<top>_<bottom>cm`` with one (``soc_g_kg_0_20cm``)."""
    if depth is None:
        return column
    return f"{column}_{depth[0]:g}_{depth[1]:g}cm"


@dataclass(frozen=True)
class TargetOutput:
    """One output of the head: a target column at one depth interval (or at every depth)."""

    name: str
    column: str
    kind: TargetKind
    weight: float = 1.0
    depth: tuple[float, float] | None = None
    classes: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        """Class logits (binary or multiclass), not one continuous value."""
        return self.kind in CATEGORICAL

    @property
    def width(self) -> int:
        """Head columns of this output: 1, or one logit per class."""
        return len(self.classes) if self.categorical else 1


def plan_outputs(
    targets: Sequence[str | TargetSpec],
    depths: Sequence[tuple[float, float]] | None = None,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> list[TargetOutput]:
    """The outputs of a run, target by target then depth by depth; the first is the primary output.

    `vocabularies` are the points table's class vocabularies (`soilnet.data.points.class_vocabulary`);
    a categorical target needs one with at least two classes (a binary one exactly two).
    """
    specs = [as_spec(t) for t in targets]
    if not specs:
        raise ValueError("no target to train: finetune.targets is empty")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"finetune.targets lists a column twice: {names}")
    vocabularies = vocabularies or {}
    several = depths is not None and len(depths) > 1
    outputs = []
    for spec in specs:
        kind = spec.resolved_kind
        classes: tuple[str, ...] = ()
        if kind in CATEGORICAL:
            if spec.name not in vocabularies:
                raise ValueError(
                    f"target {spec.name!r} is {kind} but the points table records no class vocabulary for it "
                    f"(metadata key 'soilnet:classes' has {sorted(vocabularies)})"
                )
            classes = tuple(vocabularies[spec.name])
            wanted = "exactly 2" if kind == "binary" else "at least 2"
            if len(classes) < 2 or (kind == "binary" and len(classes) != 2):
                raise ValueError(f"{kind} target {spec.name!r} needs {wanted} classes, its vocabulary is {classes}")
        for depth in depths or [None]:
            name = output_name(spec.name, tuple(depth) if several else None)
            outputs.append(
                TargetOutput(name, spec.name, kind, spec.weight, tuple(depth) if depth is not None else None, classes)
            )
    return outputs


def head_slices(outputs: Sequence[TargetOutput]) -> list[slice]:
    """The head columns of each output (continuous: one column; categorical: its logits)."""
    slices, start = [], 0
    for out in outputs:
        slices.append(slice(start, start + out.width))
        start += out.width
    return slices


def head_width(outputs: Sequence[TargetOutput]) -> int:
    """Head columns of all outputs together (``model.head.n_targets`` of the fine-tuned model)."""
    return sum(out.width for out in outputs)
