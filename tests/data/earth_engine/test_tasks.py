"""The task runner against a fake task service: concurrency cap, retry with backoff, failure, resume."""

from __future__ import annotations

import json
from pathlib import Path

import ee
import pytest

from soilnet.data.earth_engine.exports import ExportRequest
from soilnet.data.earth_engine.manifest import Manifest
from soilnet.data.earth_engine.tasks import (
    AcquisitionError,
    EarthEngineTaskService,
    RetryPolicy,
    TaskRunner,
    TaskServiceError,
    TaskStatus,
    is_retryable,
)
from soilnet.data.region import Tile


def make_requests(n: int) -> list[ExportRequest]:
    tiles = [Tile(0, c, 0, c * 256, 256, 256) for c in range(n)]
    return [
        ExportRequest(f"landsat/2018/{t.name}", "landsat", t, f"gs://b/landsat/2018/{t.name}.tif", None) for t in tiles
    ]


def make_runner(service, manifest: Manifest, clock, **kw) -> TaskRunner:
    options = {"max_concurrent": 2, "retry": RetryPolicy(3, 10.0, 40.0), "poll_interval_s": 5.0}
    options.update(kw)
    return TaskRunner(service, manifest, sleep=clock.sleep, clock=clock, **options)


@pytest.fixture
def manifest_url(tmp_path: Path) -> str:
    return str(tmp_path / "acq" / "manifest.json")


def test_all_tiles_land_within_the_cap(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock)
    seen: list[tuple[int, int]] = []
    runner = make_runner(service, Manifest.load(manifest_url), clock, progress=lambda d, t: seen.append((d, t)))
    summary = runner.run(make_requests(5))
    assert summary.completed == 5 and summary.started == 5 and summary.retries == 0
    assert service.max_active == 2
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    saved = json.loads(Path(manifest_url).read_text())
    assert {t["state"] for t in saved["tiles"]} == {"completed"}
    assert saved["tiles"][0]["destination_uris"] == ["gs://b/landsat/2018/r0000_c0000"]
    assert set(clock.sleeps) == {5.0}


def test_too_many_tasks_is_retried_with_exponential_backoff(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock, polls=1)
    key = "landsat/2018/r0000_c0000"
    service.start_errors[key] = ["Too many tasks already in the queue (3000).", "HTTP 429: Quota exceeded"]
    runner = make_runner(service, Manifest.load(manifest_url), clock, max_concurrent=1)
    summary = runner.run(make_requests(1))
    assert summary.retries == 2 and summary.completed == 1
    assert clock.sleeps[:2] == [10.0, 20.0]  # initial, then doubled
    assert service.started == [(key, 30.0)]
    record = Manifest.load(manifest_url).records[key]
    assert record.state == "completed" and record.attempts == 2 and record.error is None


def test_backoff_is_bounded() -> None:
    policy = RetryPolicy(10, 30.0, 100.0)
    assert [policy.delay(a) for a in (1, 2, 3, 4, 5)] == [30.0, 60.0, 100.0, 100.0, 100.0]
    assert is_retryable("RESOURCE_EXHAUSTED: rate limit") and not is_retryable("Image.select: no band 'SR_B9'")


def test_failed_task_on_quota_is_restarted(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock)
    key = "landsat/2018/r0001_c0001"
    requests = [ExportRequest(key, "landsat", Tile(1, 1, 256, 256, 256, 256), "gs://b/x.tif", None)]
    service.outcomes[key] = [TaskStatus("FAILED", error="Earth Engine memory quota exceeded")]
    summary = make_runner(service, Manifest.load(manifest_url), clock).run(requests)
    assert summary.retries == 1 and summary.completed == 1
    assert [k for k, _ in service.started] == [key, key]


def test_non_retryable_failure_names_the_tile(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock)
    key = "landsat/2018/r0000_c0001"
    service.outcomes[key] = [TaskStatus("FAILED", error="Image.select: Pattern 'SR_B9' did not match any bands.")]
    with pytest.raises(AcquisitionError, match=r"tile landsat/2018/r0000_c0001: .*SR_B9") as err:
        make_runner(service, Manifest.load(manifest_url), clock).run(make_requests(3))
    assert manifest_url in str(err.value)
    record = Manifest.load(manifest_url).records[key]
    assert record.state == "failed" and "SR_B9" in record.error


def test_gives_up_after_max_retries(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock)
    key = "landsat/2018/r0000_c0000"
    service.start_errors[key] = ["429 Too Many Requests"] * 10
    runner = make_runner(service, Manifest.load(manifest_url), clock, retry=RetryPolicy(2, 1.0, 8.0))
    with pytest.raises(AcquisitionError, match=r"tile landsat/2018/r0000_c0000: gave up after 2 retries; .*429"):
        runner.run(make_requests(1))
    assert clock.sleeps == [1.0, 2.0]
    assert Manifest.load(manifest_url).records[key].state == "failed"


def test_rerun_skips_landed_tiles_and_keeps_polling_running_ones(clock, manifest_url, fake_service) -> None:
    requests = make_requests(3)
    bad, slow, quick = (r.key for r in requests)
    first = fake_service(clock, polls=1)
    first.polls_for = {bad: 2, slow: 100}
    first.outcomes[bad] = [TaskStatus("FAILED", error="Computation timed out.")]
    with pytest.raises(AcquisitionError, match=bad):
        make_runner(first, Manifest.load(manifest_url), clock, max_concurrent=3).run(requests)
    state = Manifest.load(manifest_url)
    assert [state.records[k].state for k in (bad, slow, quick)] == ["failed", "running", "completed"]
    running_id = state.records[slow].task_id

    second = fake_service(clock, polls=1)
    second.tasks[running_id] = {"key": slow, "polls": 0, "done": False}
    summary = make_runner(second, Manifest.load(manifest_url), clock, max_concurrent=3).run(requests)
    assert [k for k, _ in second.started] == [bad]  # the landed tile is skipped, the running one polled
    assert summary.skipped == 1 and summary.completed == 2
    assert {r.state for r in Manifest.load(manifest_url).records.values()} == {"completed"}


def test_lost_task_is_started_again(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock, polls=1)
    key = make_requests(1)[0].key
    service.outcomes[key] = [TaskStatus("UNKNOWN", error="operation not found")]
    summary = make_runner(service, Manifest.load(manifest_url), clock).run(make_requests(1))
    assert summary.retries == 1 and len(service.started) == 2


def test_status_errors_are_polled_again_then_bounded(clock, manifest_url, fake_service) -> None:
    service = fake_service(clock, polls=1)
    key = make_requests(1)[0].key
    service.poll_errors[key] = ["HTTP 429 rate limit"]
    assert make_runner(service, Manifest.load(manifest_url), clock).run(make_requests(1)).completed == 1
    other = fake_service(clock, polls=1)
    other.poll_errors[key] = ["permission denied on project p"]
    with pytest.raises(AcquisitionError, match=r"status of task .* unavailable: permission denied"):
        make_runner(other, Manifest(manifest_url + ".2"), clock).run(make_requests(1))


def test_earth_engine_service_adapter(ee_api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real service wraps ee.batch.Task: start -> operation name; operations -> task states."""
    sent: list = []
    monkeypatch.setattr(
        ee.data, "exportImage", lambda rid, cfg: sent.append(cfg) or {"name": "projects/p/operations/OP1"}
    )
    task = ee.batch.Export.image.toCloudStorage(ee.Image(1), description="t", bucket="b", fileNamePrefix="x/y")
    request = ExportRequest("x/y", "landsat", Tile(0, 0, 0, 0, 1, 1), "gs://b/x/y.tif", task)
    service = EarthEngineTaskService()
    assert service.start(request) == "projects/p/operations/OP1" and len(sent) == 1

    operations = {
        "projects/p/operations/OK": {
            "metadata": {"state": "SUCCEEDED", "destinationUris": ["https://gcs/b/x"]},
            "done": True,
        },
        "projects/p/operations/BAD": {"metadata": {"state": "FAILED"}, "done": True, "error": {"message": "boom"}},
        "projects/p/operations/RUN": {"metadata": {"state": "RUNNING"}},
    }

    def get_operation(name: str) -> dict:
        if name.endswith("GONE"):
            raise ee.EEException("Operation not found.")
        if name.endswith("DENIED"):
            raise ee.EEException("Permission denied.")
        return {"name": name, **operations[name]}

    monkeypatch.setattr(ee.data, "getOperation", get_operation)
    assert service.status("projects/p/operations/OK") == TaskStatus("COMPLETED", None, ("https://gcs/b/x",))
    assert service.status("projects/p/operations/BAD") == TaskStatus("FAILED", "boom")
    assert service.status("projects/p/operations/RUN").state == "RUNNING"
    assert service.status("projects/p/operations/GONE").state == "UNKNOWN"
    with pytest.raises(TaskServiceError, match="Permission denied"):
        service.status("projects/p/operations/DENIED")

    def refuse(rid, cfg):
        raise ee.EEException("Too many tasks already in the queue (3000).")

    monkeypatch.setattr(ee.data, "exportImage", refuse)
    fresh = ee.batch.Export.image.toCloudStorage(ee.Image(1), description="t", bucket="b", fileNamePrefix="x/z")
    with pytest.raises(TaskServiceError, match="Too many tasks"):
        service.start(ExportRequest("x/z", "landsat", Tile(0, 0, 0, 0, 1, 1), "gs://b/x/z.tif", fresh))
