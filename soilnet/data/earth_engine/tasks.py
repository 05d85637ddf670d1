"""Running export tasks: a concurrency cap, status polling, bounded retries, and a resumable manifest.

The task service is the client boundary: `EarthEngineTaskService` talks to Earth Engine, tests
use a fake with the same two methods. Quota, HTTP 429 and "too many tasks" errors are retried
with exponential backoff (and starting more tasks pauses meanwhile); any other failure, or a
tile that exhausts its retries, stops the run with an error naming the tile. Tasks still
running stay recorded in the manifest, so a rerun keeps polling them instead of starting them
again, and skips tiles already completed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import ee

from soilnet.data.earth_engine.exports import ExportRequest
from soilnet.data.earth_engine.manifest import Manifest

log = logging.getLogger(__name__)

#: Lower-case fragments of error messages that mean "try again later".
RETRYABLE_PATTERNS: tuple[str, ...] = (
    "quota",
    "429",
    "too many",
    "rate limit",
    "resource exhausted",
    "resource_exhausted",
)
FINISHED_OK = "COMPLETED"
FINISHED_BAD = ("FAILED", "CANCELLED")
LOST = "UNKNOWN"


class TaskServiceError(RuntimeError):
    """The task service refused or failed a call; the message is the service's."""


class AcquisitionError(RuntimeError):
    """An export tile failed for good; the message names the tile and the last error."""


@dataclass(frozen=True)
class TaskStatus:
    """The state of one task (READY, RUNNING, COMPLETED, FAILED, CANCELLED or UNKNOWN)."""

    state: str
    error: str | None = None
    destination_uris: tuple[str, ...] = ()


class TaskService(Protocol):
    """Starts export tasks and reports their status."""

    def start(self, request: ExportRequest) -> str:
        """Start the request's task and return its id; raise `TaskServiceError` if refused."""
        ...

    def status(self, task_id: str) -> TaskStatus:
        """The current status of a started task; raise `TaskServiceError` if unreachable."""
        ...


class EarthEngineTaskService:
    """The task service of Earth Engine (``ee`` must be initialised)."""

    def start(self, request: ExportRequest) -> str:
        """Start the unstarted ``ee.batch.Task`` of the request; the id is its operation name."""
        try:
            request.task.start()
        except ee.EEException as exc:
            raise TaskServiceError(str(exc)) from exc
        return str(request.task.name or request.task.id)

    def status(self, task_id: str) -> TaskStatus:
        """The status of the operation ``task_id`` (``projects/.../operations/...``)."""
        task = ee.batch.Task(None, ee.batch.Task.Type.EXPORT_IMAGE, ee.batch.Task.State.UNSUBMITTED, name=task_id)
        try:
            raw = task.status()
        except ee.EEException as exc:
            if "not found" in str(exc).lower():
                return TaskStatus(LOST, error=str(exc))
            raise TaskServiceError(str(exc)) from exc
        state = getattr(raw["state"], "value", raw["state"])
        return TaskStatus(
            state=LOST if state == "UNSUBMITTED" else str(state),
            error=raw.get("error_message"),
            destination_uris=tuple(raw.get("destination_uris", ())),
        )


def is_retryable(message: str) -> bool:
    """True if an error message says the service is over quota or rate-limited."""
    text = message.lower()
    return any(pattern in text for pattern in RETRYABLE_PATTERNS)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``initial_s * 2**(attempt - 1)``, at most ``max_s``."""

    max_retries: int
    initial_s: float
    max_s: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return min(self.initial_s * 2 ** max(attempt - 1, 0), self.max_s)


@dataclass
class RunSummary:
    """What one run did."""

    total: int
    skipped: int = 0
    started: int = 0
    completed: int = 0
    retries: int = 0


@dataclass
class _Queued:
    request: ExportRequest
    not_before: float


class TaskRunner:
    """Runs export requests through a task service, recording each tile in the manifest."""

    def __init__(
        self,
        service: TaskService,
        manifest: Manifest,
        *,
        max_concurrent: int,
        retry: RetryPolicy,
        poll_interval_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.service = service
        self.manifest = manifest
        self.max_concurrent = max_concurrent
        self.retry = retry
        self.poll_interval_s = poll_interval_s
        self.sleep = sleep
        self.clock = clock
        self.progress = progress
        self._queue: list[_Queued] = []
        self._active: dict[str, ExportRequest] = {}
        self._poll_errors: dict[str, int] = {}
        self._hold_until = 0.0
        self._summary = RunSummary(total=0)

    def run(self, requests: Sequence[ExportRequest]) -> RunSummary:
        """Export every request not yet completed; return when all are completed."""
        self._summary = RunSummary(total=len(requests))
        self._queue, self._active, self._poll_errors = [], {}, {}
        for request in requests:
            rec = self.manifest.record(request.key, request.product, request.tile.row, request.tile.col, request.url)
            if rec.state == "completed":
                self._summary.skipped += 1
            elif rec.state == "running" and rec.task_id:
                log.info("resuming task %s of tile %s", rec.task_id, request.key)
                self._active[request.key] = request
            else:
                rec.state, rec.attempts, rec.error, rec.task_id = "pending", 0, None, None
                self._queue.append(_Queued(request, 0.0))
        self.manifest.save()
        self._report()
        while self._queue or self._active:
            self._start_ready()
            self._poll()
            self.manifest.save()
            wait = self._wait()
            if wait > 0:
                self.sleep(wait)
        return self._summary

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self._summary.skipped + self._summary.completed, self._summary.total)

    def _start_ready(self) -> None:
        while len(self._active) < self.max_concurrent and self.clock() >= self._hold_until:
            now = self.clock()
            ready = next((q for q in self._queue if q.not_before <= now), None)
            if ready is None:
                return
            self._queue.remove(ready)
            request = ready.request
            rec = self.manifest.records[request.key]
            try:
                task_id = self.service.start(request)
            except TaskServiceError as exc:
                delay = self._retry_or_fail(request, f"start refused: {exc}", retryable=is_retryable(str(exc)))
                self._hold_until = self.clock() + delay
                return
            rec.state, rec.task_id = "running", task_id
            self._active[request.key] = request
            self._summary.started += 1
            log.info("started tile %s as task %s", request.key, task_id)

    def _poll(self) -> None:
        for key, request in list(self._active.items()):
            rec = self.manifest.records[key]
            try:
                status = self.service.status(str(rec.task_id))
            except TaskServiceError as exc:
                self._poll_failed(request, str(exc))
                continue
            self._poll_errors.pop(key, None)
            if status.state == FINISHED_OK:
                del self._active[key]
                rec.state, rec.error = "completed", None
                rec.destination_uris = list(status.destination_uris)
                self._summary.completed += 1
                log.info("tile %s landed at %s", key, rec.url)
                self._report()
            elif status.state in (*FINISHED_BAD, LOST):
                del self._active[key]
                message = status.error or f"task {rec.task_id} ended in state {status.state}"
                retryable = status.state == LOST or is_retryable(message)
                self._retry_or_fail(request, message, retryable=retryable)

    def _poll_failed(self, request: ExportRequest, message: str) -> None:
        count = self._poll_errors.get(request.key, 0) + 1
        self._poll_errors[request.key] = count
        if not is_retryable(message) or count > self.retry.max_retries:
            self._fail(request, f"status of task {self.manifest.records[request.key].task_id} unavailable: {message}")
        log.warning("status of tile %s unavailable (%s); polling again", request.key, message)

    def _retry_or_fail(self, request: ExportRequest, message: str, *, retryable: bool) -> float:
        """Requeue the tile after a backoff delay (returned), or fail the run naming the tile."""
        rec = self.manifest.records[request.key]
        rec.attempts += 1
        rec.error, rec.task_id = message, None
        if not retryable:
            self._fail(request, f"Earth Engine export failed: {message}")
        if rec.attempts > self.retry.max_retries:
            self._fail(request, f"gave up after {self.retry.max_retries} retries; last error: {message}")
        delay = self.retry.delay(rec.attempts)
        rec.state = "pending"
        self._queue.append(_Queued(request, self.clock() + delay))
        self._summary.retries += 1
        log.warning("tile %s: %s; retry %d in %.0f s", request.key, message, rec.attempts, delay)
        return delay

    def _fail(self, request: ExportRequest, message: str) -> None:
        rec = self.manifest.records[request.key]
        rec.state, rec.error = "failed", message
        self.manifest.save()
        raise AcquisitionError(f"tile {request.key}: {message} (manifest: {self.manifest.url})")

    def _wait(self) -> float:
        """Seconds until the next useful action: a poll, a slot's queued start, or the end of a hold."""
        if not (self._queue or self._active):
            return 0.0
        now = self.clock()
        waits = [self.poll_interval_s] if self._active else []
        if self._queue and len(self._active) < self.max_concurrent:
            earliest = min(q.not_before for q in self._queue)
            waits.append(max(earliest, self._hold_until) - now)
        return max(0.0, min(waits))
