"""The tile ledger's counts, and a repeated tile write that finds its run's marker and writes nothing."""

from __future__ import annotations

import dataclasses

import pytest

from soilnet.mapping.job import prepare_map
from soilnet.mapping.lease import MapLease
from soilnet.mapping.ledger import PREDICTING, REWRITE_SKIPPED, WRITTEN, TileLedger
from soilnet.mapping.manifest import read_markers
from soilnet.mapping.stages import PredictStage, ReadStage, WriteStage, tile_row


def test_ledger_counts_tiles_predicted_more_than_once_and_writes() -> None:
    ledger = TileLedger()
    for tile in ("r0000_c0001", "r0000_c0000", "r0000_c0001", "r0000_c0002", "r0000_c0000"):
        ledger.note(PREDICTING, tile)
    for tile in ("r0000_c0000", "r0000_c0001", "r0000_c0002"):
        ledger.note(WRITTEN, tile)
    ledger.note(REWRITE_SKIPPED, "r0000_c0001")
    summary = ledger.summary()
    assert (summary.redone, summary.writes, summary.rewrites_skipped) == (["r0000_c0000", "r0000_c0001"], 3, 1)
    with pytest.raises(ValueError, match="unknown ledger event 'predicted'"):
        ledger.note("predicted", "r0000_c0000")


def test_a_repeated_write_of_the_same_run_is_skipped(map_config) -> None:
    cfg = map_config()
    prepared = prepare_map(cfg)
    tile = prepared.plan.tiles[0]
    ledger = TileLedger()
    with MapLease(cfg.out, cfg.lease_ttl_s, cfg.lease_wait_s) as lease:
        spec = dataclasses.replace(prepared.spec, run_id=lease.run_id)
        (inputs,) = ReadStage(spec)(tile_row(tile))
        row = PredictStage(spec, ledger)(inputs)
        writer = WriteStage(spec, ledger)
        assert writer(row) == writer(row) == {"name": tile.name}  # as Ray repeats a write whose output was lost
        marker = read_markers(cfg.out)[tile.name]
    assert marker.run_id == lease.run_id
    summary = ledger.summary()
    assert (summary.writes, summary.rewrites_skipped, summary.redone) == (1, 1, [])
