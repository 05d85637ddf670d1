"""Spool files: tracking calls kept on local disk while the MLflow server is unreachable, delivered later.

One append-only JSON-lines file per run and process, ``<folder>/<run_id>.<pid>.jsonl``; each line is one
call (``op``, ``run_id``, ``uri``, ``time`` in ms and the call's arguments, metric steps and timestamps
included), so a later delivery reproduces the original calls. Delivery goes in order, a batch at a time:
after each batch the server accepted, the byte offset delivered so far is written atomically to
``<file>.done``; both files are deleted once everything is delivered. A batch that failed half-way is sent
again whole, which is harmless: every call is idempotent (a metric with the same key, step, timestamp and
value is stored once; parameters, tags, text artifacts and the status are rewritten with equal values).
Appends and deliveries of one file are serialised with ``flock``, across threads and processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
DONE_SUFFIX = ".done"


class Spool:
    """The spool file of one run in one process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r})"

    @classmethod
    def for_process(cls, folder: str | os.PathLike[str], run_id: str) -> Spool:
        """The spool of `run_id` written by this process."""
        return cls(Path(folder) / f"{run_id}.{os.getpid()}{SUFFIX}")

    @classmethod
    def of_run(cls, folder: str | os.PathLike[str], run_id: str) -> list[Spool]:
        """Every spool of `run_id` in `folder` (all processes)."""
        return [cls(path) for path in sorted(Path(folder).glob(f"{run_id}.*{SUFFIX}"))]

    @classmethod
    def in_folder(cls, folder: str | os.PathLike[str]) -> list[Spool]:
        """Every spool in `folder`."""
        return [cls(path) for path in sorted(Path(folder).glob(f"*{SUFFIX}"))]

    @property
    def done_path(self) -> Path:
        """The file holding how many bytes of the spool were delivered."""
        return self.path.with_name(self.path.name + DONE_SUFFIX)

    def exists(self) -> bool:
        """True while the spool holds records not yet delivered."""
        return self.path.exists()

    def append(self, record: dict[str, Any]) -> None:
        """Append one record (a JSON object) durably."""
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(create=True) as f:
            assert f is not None
            end = f.seek(0, os.SEEK_END)
            if end:  # a line torn by a crash must not swallow this one
                f.seek(end - 1)
                if f.read(1) != b"\n":
                    line = b"\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict[str, Any]]:
        """The records not yet delivered, in order."""
        with self._locked(create=False) as f:
            return [] if f is None else [record for _, record in self._pending(f)]

    def replay(self, deliver: Callable[[list[dict[str, Any]]], None], batch_size: int = 100) -> int:
        """Deliver the pending records in order, `batch_size` at a time; returns how many were delivered.

        Progress is saved after each batch `deliver` returned from; if it raises, the spool keeps that batch
        and everything after it, and the error propagates. The files are deleted once all is delivered.
        """
        with self._locked(create=False) as f:
            if f is None:
                return 0
            pending = self._pending(f)
            for start in range(0, len(pending), batch_size):
                batch = pending[start : start + batch_size]
                deliver([record for _, record in batch])
                self._write_done(batch[-1][0])
            self.done_path.unlink(missing_ok=True)  # first: a crash in between re-delivers, it never skips
            self.path.unlink()
            return len(pending)

    @contextlib.contextmanager
    def _locked(self, create: bool) -> Iterator[IO[bytes] | None]:
        """The spool file opened and locked (None if it does not exist and `create` is false).

        A file deleted by a delivery while this process waited for the lock is not the spool any more:
        open the path again.
        """
        while True:
            try:
                f = open(self.path, "ab+" if create else "rb")  # noqa: SIM115 (closed below, after the lock)
            except FileNotFoundError:
                yield None
                return
            try:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    current = os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
                except FileNotFoundError:
                    current = False
                if current:
                    yield f
                    return
            finally:
                f.close()

    def _pending(self, f: IO[bytes]) -> list[tuple[int, dict[str, Any]]]:
        """(end offset, record) of each record after the delivered offset; unreadable lines are reported."""
        offset = int(self.done_path.read_text()) if self.done_path.exists() else 0
        f.seek(offset)
        pending = []
        for line in f.read().splitlines(keepends=True):
            offset += len(line)
            try:
                pending.append((offset, json.loads(line)))
            except ValueError:
                log.error(
                    "%s: unreadable line ending at byte %d (torn by a crash?) skipped: %r", self.path, offset, line
                )
        return pending

    def _write_done(self, offset: int) -> None:
        """Record atomically that the first `offset` bytes were delivered."""
        tmp = self.done_path.with_name(self.done_path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(str(offset))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.done_path)
