"""Submitting soilnet jobs through the Ray Jobs API and following them to their end."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from soilnet.submission.config import SubmissionConfig
from soilnet.submission.launch import CONFIG_ENV_VAR, launcher_entrypoint

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

log = logging.getLogger(__name__)

#: Exit status of a job the user (or an operator) stopped.
STOPPED_EXIT_CODE = 3


@dataclass(frozen=True)
class JobOutcome:
    """How a submitted job ended."""

    job_id: str
    status: str
    message: str | None
    exit_code: int


def runtime_env(config_text: str, forward_env: list[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Runtime env of a job: its config text and the forwarded variables that are set here."""
    env_vars = {name: environ[name] for name in forward_env if name in environ}
    log.info("forwarding environment variables: %s", ", ".join(sorted(env_vars)) or "(none)")
    env_vars[CONFIG_ENV_VAR] = config_text
    return {"env_vars": env_vars}


def connect(address: str) -> JobSubmissionClient:
    """A Jobs API client for the Ray dashboard at ``address``."""
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)


def submit(
    client: JobSubmissionClient,
    job: str,
    config_text: str,
    settings: SubmissionConfig,
    args: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Submit ``job`` with a config (the text of its YAML file); returns the Ray job id.

    The submission id is chosen here, so a retry after a lost response (dashboard restarting,
    connection reset) finds the job it already created instead of submitting it twice.
    """
    import requests

    env = runtime_env(config_text, settings.forward_env, os.environ if environ is None else environ)
    submission_id = f"soilnet-{job.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:12]}"
    for attempt in range(1, attempts + 1):
        try:
            job_id = client.submit_job(
                entrypoint=launcher_entrypoint(job, args or []),
                runtime_env=env,
                metadata={"soilnet_job": job},
                submission_id=submission_id,
            )
            break
        except (requests.ConnectionError, ConnectionError) as exc:
            if _submitted(client, submission_id):
                job_id = submission_id
                break
            if attempt == attempts:
                raise ConnectionError(f"Ray Jobs API at {client.get_address()} unreachable: {exc}") from exc
            log.warning("Jobs API not answering (%s); retry %d/%d", exc, attempt, attempts - 1)
            sleep(min(2.0**attempt, 30.0))
    log.info("submitted %s as Ray job %s", job, job_id)
    return job_id


def _submitted(client: JobSubmissionClient, submission_id: str) -> bool:
    """True if a job with this submission id exists (its submit call may have lost its response)."""
    try:
        client.get_job_info(submission_id)
    except Exception:  # not found, or the API is still unreachable
        return False
    return True


def follow_logs(client: JobSubmissionClient, job_id: str, sink: Callable[[str], None]) -> None:
    """Pass the job's log output to ``sink`` as it arrives, until the job ends."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            sink(chunk)

    asyncio.run(tail())


def wait(client: JobSubmissionClient, job_id: str, poll_seconds: float) -> JobOutcome:
    """Wait for the job to reach a terminal state and report how it ended."""
    while True:
        info = client.get_job_info(job_id)
        if info.status.is_terminal():
            return JobOutcome(
                job_id,
                info.status.value,
                info.message,
                exit_code(info.status.value, info.driver_exit_code),
            )
        time.sleep(poll_seconds)


def exit_code(status: str, driver_exit_code: int | None) -> int:
    """Process exit status for a terminal job status: 0 succeeded, the driver's code or 1 failed, 3 stopped."""
    if status == "SUCCEEDED":
        return 0
    if status == "STOPPED":
        return STOPPED_EXIT_CODE
    if status == "FAILED":
        return driver_exit_code if driver_exit_code else 1
    raise ValueError(f"job status {status!r} is not terminal")
