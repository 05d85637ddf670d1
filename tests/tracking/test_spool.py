"""Spool files: round trip, delivery in order and by batch, re-delivery after a failed batch, torn lines, races."""

from __future__ import annotations

import os
import threading

import pytest

from soilnet.tracking.spool import Spool


def calls(n: int, start: int = 0) -> list[dict]:
    """`n` metric calls with distinct steps."""
    return [
        {"op": "log_metrics", "run_id": "r1", "metrics": [["loss", 1.0 / (i + 1), 1000 + i, i]]}
        for i in range(start, start + n)
    ]


def test_records_round_trip_in_order_in_a_file_per_run_and_process(tmp_path):
    spool = Spool.for_process(tmp_path, "r1")
    assert spool.path.name == f"r1.{os.getpid()}.jsonl"
    assert not spool.exists() and spool.records() == []
    records = [
        *calls(3),
        {"op": "log_text", "run_id": "r1", "text": "sol: 12 g/kg — ümlaut\nline", "artifact_file": "a.txt"},
    ]
    for record in records:
        spool.append(record)
    assert spool.records() == records
    assert len(spool.path.read_text().splitlines()) == 4  # JSON lines, one per call
    other = Spool(tmp_path / "r1.999999.jsonl")
    other.append(calls(1)[0])
    assert [s.path for s in Spool.of_run(tmp_path, "r1")] == sorted([spool.path, other.path])
    assert Spool.of_run(tmp_path, "r2") == [] and len(Spool.in_folder(tmp_path)) == 2


def test_replay_delivers_everything_in_order_by_batch_then_removes_the_files(tmp_path):
    spool = Spool.for_process(tmp_path, "r1")
    records = calls(250)
    for record in records:
        spool.append(record)
    batches: list[list[dict]] = []
    assert spool.replay(batches.append, batch_size=100) == 250
    assert [len(batch) for batch in batches] == [100, 100, 50]
    assert [r for batch in batches for r in batch] == records
    assert list(tmp_path.iterdir()) == []
    assert spool.replay(batches.append) == 0  # nothing left: no call


def test_a_failed_batch_stays_and_is_delivered_again_whole_while_accepted_batches_are_not(tmp_path):
    spool = Spool.for_process(tmp_path, "r1")
    records = calls(30)
    for record in records:
        spool.append(record)
    server: list[dict] = []  # what the "server" accepted, duplicates included

    def flaky(batch: list[dict]) -> None:
        if batch[0] == records[10]:
            server.extend(batch[:5])  # half of the batch got in, then the connection dropped
            raise ConnectionError("server went away")
        server.extend(batch)

    with pytest.raises(ConnectionError):
        spool.replay(flaky, batch_size=10)
    assert spool.records() == records[10:]  # the first batch is not sent again
    assert spool.done_path.exists()
    spool.append(calls(1, start=30)[0])  # calls made meanwhile go after the kept ones
    assert spool.replay(server.extend, batch_size=10) == 21
    assert server == records[:15] + records[10:] + calls(1, start=30)  # batch 2 twice: idempotent calls
    assert not spool.exists() and not spool.done_path.exists()


def test_a_line_torn_by_a_crash_is_reported_and_the_next_records_survive(tmp_path, caplog):
    spool = Spool.for_process(tmp_path, "r1")
    first, second = calls(2)
    spool.append(first)
    with open(spool.path, "ab") as f:
        f.write(b'{"op": "log_metrics", "run_id": "r1", "metr')  # killed mid-write
    spool.append(second)
    delivered: list[dict] = []
    assert spool.replay(delivered.extend) == 2
    assert delivered == [first, second]
    assert "unreadable line" in caplog.text and str(spool.path) in caplog.text


def test_appends_racing_deliveries_are_never_lost(tmp_path):
    spool = Spool.for_process(tmp_path, "r1")
    writers = [
        threading.Thread(target=lambda k=k: [spool.append(r) for r in calls(40, start=100 * k)]) for k in range(3)
    ]
    delivered: list[dict] = []
    for writer in writers:
        writer.start()
    while any(writer.is_alive() for writer in writers):
        spool.replay(delivered.extend, batch_size=7)
    spool.replay(delivered.extend)
    expected = [r for k in range(3) for r in calls(40, start=100 * k)]
    assert sorted(r["metrics"][0][3] for r in delivered) == sorted(r["metrics"][0][3] for r in expected)
    assert not spool.exists()
