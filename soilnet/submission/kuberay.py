"""KubeRay RayJob resources: created from the chart's templates, read back, followed.

The chart renders every job as a RayJob manifest into the ConfigMap
``<fullname>-rayjob-templates``; ``soilnet k8s run`` and the nightly CronJob create RayJobs
from those manifests, so the chart stays the single description of how a job runs.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from soilnet.submission.launch import CONFIG_ENV_VAR, launcher_entrypoint

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
#: Label that names the soilnet job of a RayJob (set by the chart and kept by `k8s run`).
JOB_LABEL = "soilnet.io/job"
#: Label KubeRay's submitter Kubernetes Job puts on its pods (the Job is named like the RayJob).
SUBMITTER_POD_LABEL = "job-name"
#: Room for the suffix in generated names: KubeRay derives cluster and pod names from them.
MAX_NAME = 47
FINISHED_DEPLOYMENT = ("Complete", "Failed")


class RayJobError(RuntimeError):
    """A RayJob could not be created, found or read."""


@dataclass(frozen=True)
class RayJobState:
    """What KubeRay reports about one RayJob."""

    name: str
    job: str
    deployment_status: str
    job_status: str
    message: str
    start_time: str
    end_time: str

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> RayJobState:
        """Read the state from a RayJob object (a fresh one has no status yet)."""
        meta, status = obj.get("metadata", {}), obj.get("status") or {}
        return cls(
            name=meta.get("name", ""),
            job=(meta.get("labels") or {}).get(JOB_LABEL, ""),
            deployment_status=status.get("jobDeploymentStatus", "") or "New",
            job_status=status.get("jobStatus", "") or "PENDING",
            message=status.get("message", ""),
            start_time=status.get("startTime", ""),
            end_time=status.get("endTime", ""),
        )

    @property
    def finished(self) -> bool:
        """True once KubeRay has settled the job (complete or failed)."""
        return self.deployment_status in FINISHED_DEPLOYMENT

    @property
    def exit_code(self) -> int:
        """0 if the job succeeded, 3 if it was stopped, 1 for any other end."""
        if self.deployment_status == "Complete" and self.job_status == "SUCCEEDED":
            return 0
        return 3 if self.job_status == "STOPPED" else 1


def api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """A client for the given kubeconfig, else the pod's service account, else ~/.kube/config."""
    if kubeconfig is None and context is None:
        try:
            k8s_config.load_incluster_config()
            return k8s.ApiClient()
        except k8s_config.ConfigException:
            log.debug("not in a pod: using the default kubeconfig")
    try:
        path = kubeconfig or os.environ.get("KUBECONFIG")  # read now, not when kubernetes was imported
        return k8s_config.new_client_from_config(config_file=path, context=context)
    except (k8s_config.ConfigException, OSError) as exc:
        raise RayJobError(
            f"no usable Kubernetes configuration: {_kubeconfig_problem(kubeconfig, context, exc)}"
        ) from exc


def _kubeconfig_problem(kubeconfig: str | None, context: str | None, exc: Exception) -> str:
    """What was asked for (file, context) and what exists, for a kubeconfig that cannot be loaded."""
    path = Path(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config").expanduser()
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        return f"kubeconfig {path}: {what}, and this is not a pod (pass --kubeconfig FILE or set KUBECONFIG)"
    if context is not None:
        names = [c.get("name") for c in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("contexts") or []]
        if context not in names:
            return f"kubeconfig {path} has no context {context!r}; contexts: {', '.join(map(str, names)) or 'none'}"
    return f"kubeconfig {path}: {str(exc).splitlines()[0]}"


def check_template(obj: Any, source: str) -> dict[str, Any]:
    """Check that a loaded manifest is a ray.io/v1 RayJob with an entrypoint."""
    if not isinstance(obj, dict) or obj.get("kind") != "RayJob" or obj.get("apiVersion") != f"{GROUP}/{VERSION}":
        raise RayJobError(f"{source} is not a {GROUP}/{VERSION} RayJob manifest")
    if not obj.get("spec", {}).get("entrypoint"):
        raise RayJobError(f"{source} has no spec.entrypoint")
    return obj


def load_template_file(path: str | Path) -> dict[str, Any]:
    """Load a RayJob template from a file (the CronJob mounts the templates ConfigMap)."""
    path = Path(path)
    if not path.is_file():
        raise RayJobError(f"RayJob template {path} does not exist")
    return check_template(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def load_template(core: k8s.CoreV1Api, namespace: str, configmap: str, job: str) -> dict[str, Any]:
    """Load the RayJob template of ``job`` from the chart's templates ConfigMap."""
    try:
        cm = core.read_namespaced_config_map(configmap, namespace)
    except ApiException as exc:
        raise RayJobError(f"cannot read ConfigMap {namespace}/{configmap}: {exc.status} {exc.reason}") from exc
    data = cm.data or {}
    key = f"{job}.yaml"
    if key not in data:
        known = ", ".join(sorted(k.removesuffix(".yaml") for k in data)) or "none"
        raise RayJobError(f"ConfigMap {namespace}/{configmap} has no template for job {job!r} (jobs: {known})")
    return check_template(yaml.safe_load(data[key]), f"{namespace}/{configmap}[{key}]")


def unique_name(base: str, now: dt.datetime | None = None) -> str:
    """``<base>-<UTC yyyymmdd-hhmm>-<4 hex>``, short enough for KubeRay's derived names."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M")
    suffix = f"-{stamp}-{secrets.token_hex(2)}"
    return base[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def new_rayjob(
    template: dict[str, Any],
    namespace: str,
    config_text: str | None = None,
    args: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """A RayJob to create from a template: a unique name, and the config or arguments given.

    With ``config_text`` the job runs through the launcher with that config in its runtime env
    instead of the config mounted from the chart's ConfigMap.
    """
    body = copy.deepcopy(template)
    meta = body.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    job = labels.get(JOB_LABEL)
    if not job:
        raise RayJobError(f"RayJob template {meta.get('name')!r} has no {JOB_LABEL} label")
    body["metadata"] = {
        "name": unique_name(meta.get("name") or f"soilnet-{job}", now),
        "namespace": namespace,
        "labels": {**labels, "app.kubernetes.io/managed-by": "soilnet-cli"},
    }
    spec = body["spec"]
    if config_text is not None:
        spec["entrypoint"] = launcher_entrypoint(job, args)
        spec["runtimeEnvYAML"] = yaml.safe_dump({"env_vars": {CONFIG_ENV_VAR: config_text}})
    elif args:
        spec["entrypoint"] = " ".join([spec["entrypoint"], *args])
    return body


def create_rayjob(api: k8s.CustomObjectsApi, body: dict[str, Any]) -> str:
    """Create the RayJob; returns its name."""
    meta = body["metadata"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, body)
    except ApiException as exc:
        raise RayJobError(
            f"cannot create RayJob {meta['namespace']}/{meta['name']}: {exc.status} {exc.reason}"
        ) from exc
    log.info("created RayJob %s/%s", meta["namespace"], meta["name"])
    return meta["name"]


def get_rayjob(api: k8s.CustomObjectsApi, namespace: str, name: str) -> RayJobState:
    """The current state of one RayJob."""
    try:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        raise RayJobError(f"cannot read RayJob {namespace}/{name}: {exc.status} {exc.reason}") from exc
    return RayJobState.from_object(obj)


def list_rayjobs(api: k8s.CustomObjectsApi, namespace: str, job: str | None = None) -> list[RayJobState]:
    """soilnet's RayJobs in the namespace (of one job if given), oldest first."""
    selector = f"{JOB_LABEL}={job}" if job else JOB_LABEL
    try:
        listing = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, label_selector=selector)
    except ApiException as exc:
        raise RayJobError(f"cannot list RayJobs in {namespace}: {exc.status} {exc.reason}") from exc
    items = sorted(listing.get("items", []), key=lambda o: o.get("metadata", {}).get("creationTimestamp", ""))
    return [RayJobState.from_object(obj) for obj in items]


def wait_rayjob(
    api: k8s.CustomObjectsApi,
    namespace: str,
    name: str,
    poll_seconds: float,
    on_change: Callable[[RayJobState], None] | None = None,
) -> RayJobState:
    """Poll the RayJob until KubeRay reports it finished; ``on_change`` sees each new state."""
    seen: tuple[str, str] | None = None
    while True:
        state = get_rayjob(api, namespace, name)
        if on_change is not None and (state.deployment_status, state.job_status) != seen:
            on_change(state)
        if state.finished:
            return state
        seen = (state.deployment_status, state.job_status)
        time.sleep(poll_seconds)


def rayjob_logs(core: k8s.CoreV1Api, namespace: str, name: str, tail_lines: int | None = None) -> str:
    """Logs of the RayJob's submitter pod (it follows the Ray job's own output)."""
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=f"{SUBMITTER_POD_LABEL}={name}").items
        pods = [p for p in pods if (p.metadata.labels or {}).get(SUBMITTER_POD_LABEL) == name]
        if not pods:
            raise RayJobError(f"RayJob {namespace}/{name} has no submitter pod (yet)")
        newest = max(
            pods,
            key=lambda p: p.metadata.creation_timestamp or dt.datetime.min.replace(tzinfo=dt.UTC),
        )
        return core.read_namespaced_pod_log(newest.metadata.name, namespace, tail_lines=tail_lines)
    except ApiException as exc:
        raise RayJobError(f"cannot read logs of RayJob {namespace}/{name}: {exc.status} {exc.reason}") from exc
