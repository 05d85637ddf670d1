"""The map writer lease: a live run is waited for or refused, a dead one taken over, its orphans stopped."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from soilnet.mapping.job import run_map
from soilnet.mapping.lease import Lease, LeaseError, MapLease, check_lease, lease_url, read_lease


def write_lease(out: str, lease: Lease) -> None:
    """Plant a lease as another run's driver would have written it."""
    with open(lease_url(out), "w") as f:
        json.dump(dataclasses.asdict(lease), f)


def test_live_run_is_refused_with_its_holder_named(tmp_path) -> None:
    out = str(tmp_path)
    with MapLease(out, ttl_s=30, wait_s=0) as first:
        with pytest.raises(LeaseError, match=f"being written by run {first.run_id}"):
            MapLease(out, ttl_s=30, wait_s=0).acquire()
        check_lease(out, first.run_id, 30)  # the holder may write
    assert read_lease(out) is None  # released at the end


def test_second_run_waits_for_the_first_to_finish(tmp_path) -> None:
    out = str(tmp_path)
    first = MapLease(out, ttl_s=30, wait_s=0).__enter__()
    threading.Timer(1.0, first.__exit__, (None, None, None)).start()
    started = time.monotonic()
    with MapLease(out, ttl_s=30, wait_s=20) as second:
        assert time.monotonic() - started >= 1.0
        assert read_lease(out).run_id == second.run_id


def test_dead_run_is_taken_over_and_its_orphaned_writers_stop(tmp_path) -> None:
    out = str(tmp_path)
    dead = Lease("deadrun", "elsewhere", 1, time.time() - 3, ttl_s=2)
    write_lease(out, dead)
    with pytest.raises(LeaseError, match=r"heartbeat is .* old"):
        check_lease(out, "deadrun", 2)  # an actor of the dead run refuses to write before the takeover
    with MapLease(out, ttl_s=8, wait_s=0) as rerun:  # beats every 2 s: a 2 s stall of a loaded machine is tolerated
        assert read_lease(out).run_id == rerun.run_id
        with pytest.raises(LeaseError, match=f"lost the map's lease .*run {rerun.run_id}"):
            check_lease(out, "deadrun", 2)
        time.sleep(4.5)  # the heartbeat keeps the rerun's lease fresh beyond ttl / 2
        check_lease(out, rerun.run_id, 8)


def test_map_run_refuses_while_another_run_writes(map_config) -> None:
    cfg = map_config(lease_wait_s=0)
    Path(cfg.out).mkdir(parents=True)
    write_lease(cfg.out, Lease("other", "host-a", 7, time.time(), ttl_s=60))
    with pytest.raises(LeaseError, match="run other \\(host host-a, pid 7"):
        run_map(cfg)


def test_lease_left_by_an_ended_run_of_this_process_is_taken_over(tmp_path) -> None:
    out = str(tmp_path)
    write_lease(out, Lease("failedrun", socket.gethostname(), os.getpid(), time.time(), ttl_s=60))  # store was down
    with MapLease(out, ttl_s=60, wait_s=0) as rerun:
        assert read_lease(out).run_id == rerun.run_id
