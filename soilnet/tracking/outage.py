"""An unreachable MLflow tracking server: recognising it, bounding MLflow's HTTP waits, retrying with backoff."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses that mean "the server (or what is behind it) is not serving now", not "the request is wrong".
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: Longest pause between two attempts.
MAX_PAUSE_S = 15.0

_ENV_LOCK = threading.RLock()  # nested blocks (a retry around calls) in one thread


class TrackingUnavailableError(ConnectionError):
    """The MLflow tracking server could not be reached within the configured bound."""


def is_unavailable(exc: BaseException) -> bool:
    """True if `exc` (or an exception it was raised from) says the tracking server cannot be reached now.

    Connection failures, timeouts and transient HTTP statuses (5xx, 429, 408) count; a server that
    answers and refuses the request (4xx) does not.
    """
    import requests
    from mlflow.exceptions import RestException

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.ConnectionError | requests.Timeout | requests.exceptions.RetryError):
            return True
        if isinstance(current, RestException) and current.get_http_status_code() in TRANSIENT_STATUS:
            return True
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def bounded_requests(timeout_s: int) -> Iterator[None]:
    """MLflow HTTP requests without MLflow's own retries (up to minutes by default) and with `timeout_s` each.

    MLflow reads ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` at every request and
    has no per-client setting for them, so they are set for the duration of the block and restored after.
    """
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout_s)))}
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def retry_while_unavailable(fn: Callable[[], T], timeout_s: float, first_pause_s: float, what: str) -> T:
    """Call `fn` until it succeeds or `timeout_s` has passed, pausing (doubling up to 15 s) while unreachable.

    Errors other than unavailability are raised at once; after the deadline the last unavailability error is.
    """
    deadline = time.monotonic() + timeout_s
    pause = first_pause_s
    while True:
        try:
            return fn()
        except Exception as exc:
            left = deadline - time.monotonic()
            if not is_unavailable(exc) or left <= 0:
                raise
            log.warning("%s: tracking server unreachable, retrying in %.1f s (%.0f s left): %s", what, pause, left, exc)
            time.sleep(min(pause, left))
            pause = min(pause * 2, MAX_PAUSE_S)
