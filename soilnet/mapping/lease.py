"""The map job's writer lease: one live run writes a map at a time, a dead run's leftovers never race a rerun.

``<out>/lease.json`` holds the writing run's id, host, pid and a heartbeat (Unix time) that the run's
driver refreshes every ``ttl / 4`` seconds (`MapLease`). A run that finds a fresh lease waits for it
to be released or to go stale (``wait_s``), then refuses with the holder named; a lease whose heartbeat
is older than ``ttl`` belongs to a dead run and is taken over, as is one left by an ended run of the same
process (a run that failed with its store unreachable could not delete it).

A killed driver's Ray actors may outlive it. Each tile write first checks the lease (`check_lease`)
and refuses unless the lease is still its run's and its heartbeat is younger than ``ttl / 2``; a
takeover happens only after ``ttl``, so an orphaned writer stops at least ``ttl / 2`` before a new
run starts writing (tile writes take far less). Heartbeats compare clocks across hosts: they must be
synchronised (NTP) to well within ``ttl / 2``. Taking a lease is read-check-write, then a re-read
after a short pause; two runs starting within that pause on an object store without conditional
writes could both proceed (a scheduler starts one nightly run at a time).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from soilnet import storage

log = logging.getLogger(__name__)

#: Seconds between re-reads of a lease held by another run while waiting.
POLL_S = 0.5
#: Seconds to wait before re-reading a lease just written (another run may have written at the same time).
SETTLE_S = 0.2


class LeaseError(RuntimeError):
    """Another run holds the map's lease (or took it over); the message names it."""


@dataclass(frozen=True)
class Lease:
    """Who is writing a map and when it last said so."""

    run_id: str
    host: str
    pid: int
    heartbeat: float
    ttl_s: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat."""
        return (time.time() if now is None else now) - self.heartbeat

    def describe(self) -> str:
        """The holder in words."""
        return f"run {self.run_id} (host {self.host}, pid {self.pid}, heartbeat {self.age():.1f} s ago)"


def lease_url(out: str) -> str:
    """The lease object of a map job's output folder."""
    return storage.join(out, "lease.json")


def read_lease(out: str) -> Lease | None:
    """The current lease, or None when there is none (an unreadable one counts as none)."""
    loc = storage.resolve(lease_url(out))
    try:
        data = loc.fs.cat_file(loc.path)
        return Lease(**json.loads(data))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        log.warning("ignoring unreadable map lease %s: %s", loc.url, exc)
        return None


def _write(out: str, lease: Lease) -> None:
    url = lease_url(out)
    with storage.writing(f"{url}: cannot write the map lease"):
        storage.replace_text(url, json.dumps(asdict(lease)))


def check_lease(out: str, run_id: str, ttl_s: float) -> None:
    """Refuse (`LeaseError`) unless ``run_id`` still holds the lease with a heartbeat younger than ``ttl / 2``."""
    lease = read_lease(out)
    if lease is None or lease.run_id != run_id:
        holder = "nobody" if lease is None else lease.describe()
        raise LeaseError(f"{lease_url(out)}: run {run_id} lost the map's lease (now held by {holder}); not writing")
    if lease.age() >= ttl_s / 2:
        raise LeaseError(
            f"{lease_url(out)}: run {run_id}'s heartbeat is {lease.age():.1f} s old (its driver is gone); not writing"
        )


#: Run ids of the leases this process holds now (a lease of this process not in it belongs to a run that ended).
_ACTIVE: set[str] = set()


def _ended_here(lease: Lease) -> bool:
    """True for a lease left by a run of this very process that has ended (e.g. failed with its store down)."""
    return lease.host == socket.gethostname() and lease.pid == os.getpid() and lease.run_id not in _ACTIVE


class MapLease:
    """A run's lease on a map folder, kept alive by a heartbeat thread while the run lasts (a context manager)."""

    def __init__(self, out: str, ttl_s: float, wait_s: float) -> None:
        self.out, self.ttl_s, self.wait_s = out, ttl_s, wait_s
        self.run_id = uuid.uuid4().hex[:16]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mine(self) -> Lease:
        return Lease(self.run_id, socket.gethostname(), os.getpid(), time.time(), self.ttl_s)

    def acquire(self) -> None:
        """Take the lease: at once if free or stale, after waiting if a live run holds it; else `LeaseError`."""
        deadline = time.monotonic() + self.wait_s
        while True:
            held = read_lease(self.out)
            if held is None or held.run_id == self.run_id or held.age() >= held.ttl_s or _ended_here(held):
                if held is not None and held.run_id != self.run_id:
                    log.warning("%s: taking over the lease of a dead %s", self.out, held.describe())
                _write(self.out, self._mine())
                time.sleep(SETTLE_S)
                held = read_lease(self.out)
                if held is not None and held.run_id == self.run_id:
                    return
            if time.monotonic() >= deadline:
                raise LeaseError(
                    f"{lease_url(self.out)}: the map is being written by {held.describe() if held else 'another run'}; "
                    f"waited {self.wait_s:g} s (rerun when it has finished, or after {held.ttl_s if held else 0:g} s "
                    "without a heartbeat it counts as dead)"
                )
            time.sleep(POLL_S)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                held = read_lease(self.out)
                if held is None or held.run_id != self.run_id:
                    holder = held.describe() if held else "nobody"
                    log.error("%s: run %s lost its lease to %s", self.out, self.run_id, holder)
                    return
                _write(self.out, self._mine())
            except (*storage.unreachable_errors(), storage.StorageError) as exc:  # the store is down: try again
                log.warning("%s: cannot renew the map lease: %s", self.out, exc)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = read_lease(self.out)
        if held is not None and held.run_id == self.run_id:
            storage.remove(lease_url(self.out))

    def __enter__(self) -> MapLease:
        self.acquire()
        _ACTIVE.add(self.run_id)
        self._thread = threading.Thread(target=self._beat, name="map-lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        _ACTIVE.discard(self.run_id)
        try:
            self.release()
        except (*storage.unreachable_errors(), storage.StorageError) as error:
            if kind is None:
                raise
            log.warning("%s: cannot release the map lease (it expires after %g s): %s", self.out, self.ttl_s, error)
