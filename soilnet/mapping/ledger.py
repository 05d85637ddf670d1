"""The tile ledger of a map run on Ray: which tiles were predicted more than once, and which writes were repeats.

When a node is lost mid-map (a preempted GPU VM), Ray restarts the map's actors elsewhere and re-runs
the stages whose inputs or outputs were held on that node (Ray Data's actor pools restart actors and
retry their tasks; lost blocks are rebuilt from lineage). The ledger records each tile's prediction
starts, its completed writes and each write a stage skipped because the tile's marker says this run already wrote it
(`soilnet.mapping.stages.WriteStage`), so the run summary counts the tiles that were redone.

The ledger is one small Ray actor pinned to the driver's node: it lives as long as the run (losing
the driver's node ends the run anyway). Stages call it synchronously (`RemoteLedger`), once per tile
and stage, before the work, so a prediction cut short by a lost node is counted too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

#: Ledger events: a tile's prediction started; a tile was written (layers and marker); a tile's write was
#: skipped (this run had written it).
PREDICTING = "predicting"
WRITTEN = "written"
REWRITE_SKIPPED = "rewrite_skipped"


@dataclass(frozen=True)
class LedgerSummary:
    """What a run's stages did: tiles predicted more than once, completed writes, repeated writes skipped."""

    redone: list[str]
    writes: int
    rewrites_skipped: int


class TileLedger:
    """Counts events per tile (the body of the ledger actor)."""

    def __init__(self) -> None:
        self.events: dict[str, Counter[str]] = {PREDICTING: Counter(), WRITTEN: Counter(), REWRITE_SKIPPED: Counter()}

    def note(self, event: str, tile: str) -> None:
        """Record ``event`` for ``tile``."""
        if event not in self.events:
            raise ValueError(f"unknown ledger event {event!r}; expected one of {sorted(self.events)}")
        self.events[event][tile] += 1

    def summary(self) -> LedgerSummary:
        """Tiles predicted more than once (sorted), completed writes and repeated writes skipped."""
        redone = sorted(tile for tile, n in self.events[PREDICTING].items() if n > 1)
        return LedgerSummary(redone, self.events[WRITTEN].total(), self.events[REWRITE_SKIPPED].total())


class RemoteLedger:
    """A stage's handle on the ledger actor (picklable; each `note` waits for the actor's answer)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    @classmethod
    def start(cls) -> RemoteLedger:
        """Start the ledger actor on the driver's node (call in the driver, after ``ray.init``)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        actor = ray.remote(TileLedger).options(num_cpus=0, scheduling_strategy=here, max_restarts=0).remote()
        return cls(actor)

    def note(self, event: str, tile: str) -> None:
        """Record ``event`` for ``tile`` and wait until the ledger has it."""
        import ray

        ray.get(self.actor.note.remote(event, tile))

    def summary(self) -> LedgerSummary:
        """The ledger's summary; the actor ends with it."""
        import ray

        summary = ray.get(self.actor.summary.remote())
        ray.kill(self.actor)
        return summary
