"""Fixtures for the Earth Engine tests: ``ee`` initialised offline, and a computation-graph reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ee
import pytest
from ee import apitestcase

from soilnet.data.earth_engine.exports import ExportRequest
from soilnet.data.earth_engine.tasks import TaskServiceError, TaskStatus


@pytest.fixture
def ee_api() -> Iterator[None]:
    """``ee`` initialised with the algorithm list shipped in earthengine-api: no network, no credentials."""
    case = apitestcase.ApiTestCase()
    case.setUp()
    yield
    case.tearDown()


class Graph:
    """The fully expanded Cloud API expression of an ``ee`` object, searchable by function name."""

    def __init__(self, obj: Any) -> None:
        self.tree = ee.serializer.encode(obj, is_compound=False, for_cloud_api=True)
        self.text = json.dumps(self.tree)

    def _walk(self, node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from self._walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from self._walk(value)

    def calls(self, name: str) -> list[dict[str, Any]]:
        """The arguments of each distinct invocation of the function ``name``, outermost first."""
        seen: dict[str, dict[str, Any]] = {}
        for n in self._walk(self.tree):
            if "functionInvocationValue" in n and n["functionInvocationValue"]["functionName"] == name:
                args = n["functionInvocationValue"]["arguments"]
                seen.setdefault(json.dumps(args, sort_keys=True), args)
        return list(seen.values())

    def functions(self) -> set[str]:
        """Names of every function invoked."""
        return {
            n["functionInvocationValue"]["functionName"]
            for n in self._walk(self.tree)
            if "functionInvocationValue" in n
        }

    def constants(self) -> list[Any]:
        """Every constant value in the expression."""
        return [n["constantValue"] for n in self._walk(self.tree) if "constantValue" in n]


@pytest.fixture
def graph() -> type[Graph]:
    """The `Graph` class, to read an ``ee`` object's computation."""
    return Graph


def const(argument: dict[str, Any]) -> Any:
    """The value of a constant argument."""
    return argument["constantValue"]


@pytest.fixture
def constant() -> Any:
    """`const`, as a fixture (test modules are imported by path)."""
    return const


class FakeClock:
    """A clock that only moves when the runner sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeService:
    """Tasks finish after ``polls`` status calls; scripted start errors and final states per tile key."""

    def __init__(self, clock: FakeClock, polls: int = 2) -> None:
        self.clock = clock
        self.polls = polls
        self.polls_for: dict[str, int] = {}
        self.start_errors: dict[str, list[str]] = {}
        self.outcomes: dict[str, list[TaskStatus]] = {}
        self.poll_errors: dict[str, list[str]] = {}
        self.started: list[tuple[str, float]] = []
        self.tasks: dict[str, dict] = {}
        self.max_active = 0

    def start(self, request: ExportRequest) -> str:
        errors = self.start_errors.get(request.key, [])
        if errors:
            raise TaskServiceError(errors.pop(0))
        task_id = f"projects/p/operations/{request.key.replace('/', '-')}-{len(self.started)}"
        self.started.append((request.key, self.clock.now))
        self.tasks[task_id] = {"key": request.key, "polls": 0, "done": False}
        self.max_active = max(self.max_active, sum(not t["done"] for t in self.tasks.values()))
        return task_id

    def status(self, task_id: str) -> TaskStatus:
        task = self.tasks[task_id]
        errors = self.poll_errors.get(task["key"], [])
        if errors:
            raise TaskServiceError(errors.pop(0))
        task["polls"] += 1
        if task["polls"] < self.polls_for.get(task["key"], self.polls):
            return TaskStatus("RUNNING")
        task["done"] = True
        outcomes = self.outcomes.get(task["key"], [])
        return outcomes.pop(0) if outcomes else TaskStatus("COMPLETED", destination_uris=(f"gs://b/{task['key']}",))


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock whose ``sleep`` advances it (no test ever sleeps)."""
    return FakeClock()


@pytest.fixture
def fake_service() -> type[FakeService]:
    """The fake task service class (the client boundary of Earth Engine's task API)."""
    return FakeService
