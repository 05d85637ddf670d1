"""The release store: finished releases only, the pointer replaced whole, rollback, pruning, pending tiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soilnet.nightly.releases import POINTER, ReleaseError, ReleaseStore


def finished(store: ReleaseStore, *versions: str) -> None:
    for version in versions:
        Path(store.folder(version), "cog").mkdir(parents=True)
        store.write_record(version, {"version": version, "climate_end": "2020-01", "model": {"source": "m"}})


def test_only_releases_with_a_record_count_and_the_pointer_is_replaced_whole(tmp_path: Path) -> None:
    store = ReleaseStore(str(tmp_path / "releases"))
    assert store.latest() is None and store.versions() == []
    finished(store, "20240101T000000Z", "20240102T000000Z")
    Path(store.folder("20240103T000000Z"), "cog").mkdir(parents=True)  # a night that died while publishing
    assert store.versions() == ["20240101T000000Z", "20240102T000000Z"]
    with pytest.raises(ReleaseError, match="no finished release '20240103T000000Z'"):
        store.point_to("20240103T000000Z")
    pointer = store.point_to("20240102T000000Z")
    assert json.loads((tmp_path / "releases" / POINTER).read_text()) == pointer
    assert pointer["url"] == store.folder("20240102T000000Z") and pointer["stac"].endswith("20240102T000000Z/stac")
    assert [p.name for p in (tmp_path / "releases").iterdir() if p.suffix == ".tmp"] == []


def test_rollback_goes_to_the_release_before_or_the_one_named(tmp_path: Path) -> None:
    store = ReleaseStore(str(tmp_path))
    finished(store, "20240101T000000Z", "20240102T000000Z", "20240103T000000Z")
    store.point_to("20240103T000000Z")
    assert store.rollback()["version"] == "20240102T000000Z"
    assert store.latest()["rolled_back_from"] == "20240103T000000Z"
    assert store.pending() is None, "after a rollback the next night compares every tile"
    assert store.rollback("20240103T000000Z")["version"] == "20240103T000000Z"
    store.point_to("20240101T000000Z")
    with pytest.raises(ReleaseError, match="no release older than 20240101T000000Z"):
        store.rollback()


def test_prune_keeps_the_newest_and_the_pointed_release(tmp_path: Path) -> None:
    store = ReleaseStore(str(tmp_path))
    versions = [f"2024010{d}T000000Z" for d in range(1, 6)]
    finished(store, *versions)
    Path(store.folder("20240101T120000Z")).mkdir()  # an unfinished night older than the newest release
    store.point_to(versions[0])  # rolled back to the oldest
    removed = store.prune(2)
    assert sorted(removed) == ["20240101T120000Z", *versions[1:3]]
    assert store.versions() == [versions[0], *versions[3:]]


def test_pending_tiles(tmp_path: Path) -> None:
    store = ReleaseStore(str(tmp_path))
    assert store.pending() == set()
    store.set_pending({"r0000_c0001", "r0000_c0000"})
    assert store.pending() == {"r0000_c0000", "r0000_c0001"}
    store.set_pending(None)
    assert store.pending() is None
