"""``soilnet submit`` (Ray Jobs API) and ``soilnet k8s run|status|logs|list`` (KubeRay RayJobs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from soilnet.cli.common import console, run_guarded
from soilnet.submission.config import SubmissionConfig

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    from soilnet.submission.kuberay import RayJobState

DEFAULTS = SubmissionConfig()

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
k8s_app = typer.Typer(
    help="Run soilnet jobs as KubeRay RayJobs (from the chart's templates) and follow them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(k8s_app, name="k8s")

JobArg = Annotated[str, typer.Argument(help="Job name (runs jobs.<name>, e.g. map) or a dotted module path.")]
ArgsOpt = Annotated[list[str] | None, typer.Option("--arg", help="Extra argument for the job (repeatable).")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the soilnet chart.")]
KubeconfigOpt = Annotated[
    str | None, typer.Option("--kubeconfig", help="Kubeconfig file (default: in-cluster or ~/.kube/config).")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")]
NameArg = Annotated[str, typer.Argument(help="RayJob name (see `soilnet k8s list`).")]


def _cluster_errors() -> tuple[type[BaseException], ...]:
    """The cluster's refusals: a RayJob that cannot be made or read, the API server's and the HTTP errors."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from soilnet.submission.kuberay import RayJobError

    return RayJobError, ApiException, HTTPError


@app.command("submit")
def submit(
    job: JobArg,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The job's YAML config (its content travels with the job).")
    ],
    address: Annotated[
        str, typer.Option("--address", "-a", envvar="RAY_ADDRESS", help="Ray dashboard URL.")
    ] = DEFAULTS.address,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Also forward this local environment variable (name only; repeatable)."),
    ] = None,
    args: ArgsOpt = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Follow the logs until the job ends.")] = True,
) -> None:
    """Submit a job to a Ray cluster through the Jobs API, print its id and follow its logs.

    The config file's content and the endpoint variables set here (MLFLOW_TRACKING_URI,
    AWS_ENDPOINT_URL, ...) go with the job; credentials stay on the cluster. The exit status is
    the job's: 0 succeeded, the driver's code (or 1) failed, 3 stopped.
    """
    from soilnet.logs import setup_logging
    from soilnet.submission import jobs_api
    from soilnet.submission.launch import read_config_text

    setup_logging("INFO")
    settings = SubmissionConfig(address=address, forward_env=[*DEFAULTS.forward_env, *(env or [])], follow=follow)

    def body() -> int:
        text = read_config_text(config)
        client = jobs_api.connect(settings.address)
        job_id = jobs_api.submit(client, job, text, settings, args or [])
        typer.echo(job_id)
        if not settings.follow:
            return 0
        jobs_api.follow_logs(client, job_id, lambda chunk: (sys.stdout.write(chunk), sys.stdout.flush()))
        outcome = jobs_api.wait(client, job_id, settings.poll_seconds)
        colour = "green" if outcome.exit_code == 0 else "red"
        console.print(f"job {job_id}: [{colour}]{outcome.status}[/] {outcome.message or ''}", highlight=False)
        return outcome.exit_code

    raise typer.Exit(run_guarded(body, also=_cluster_errors()))


def _apis(kubeconfig: str | None, context: str | None) -> tuple[CustomObjectsApi, CoreV1Api]:
    """Custom-object and core API clients for the kubeconfig (or the pod's service account)."""
    from kubernetes import client as k8s

    from soilnet.submission.kuberay import api_client

    api = api_client(kubeconfig, context)
    return k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)


def _print_state(state: RayJobState) -> None:
    """One status line on stderr."""
    console.print(f"{state.name}: {state.deployment_status} / {state.job_status} {state.message}", highlight=False)


@k8s_app.command("run")
def k8s_run(
    job: JobArg,
    namespace: NamespaceOpt = DEFAULTS.namespace,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Run with this YAML config instead of the one in the chart's ConfigMap."),
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option("--template", help="RayJob template file (default: read from the templates ConfigMap)."),
    ] = None,
    templates_configmap: Annotated[
        str, typer.Option("--templates-configmap", help="ConfigMap with the chart's RayJob templates.")
    ] = DEFAULTS.templates_configmap,
    args: ArgsOpt = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the RayJob to finish.")] = False,
    poll_seconds: Annotated[float, typer.Option(help="Seconds between status checks.")] = DEFAULTS.poll_seconds,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Create a RayJob for JOB from the chart's template; print its name (and wait for it).

    With --wait the exit status is the job's: 0 succeeded, 3 stopped, 1 otherwise.
    """
    from soilnet.logs import setup_logging
    from soilnet.submission import kuberay
    from soilnet.submission.launch import read_config_text

    setup_logging("INFO")
    settings = SubmissionConfig(namespace=namespace, templates_configmap=templates_configmap, poll_seconds=poll_seconds)

    def body() -> int:
        custom, core = _apis(kubeconfig, context)
        if template is not None:
            tmpl = kuberay.load_template_file(template)
        else:
            tmpl = kuberay.load_template(core, settings.namespace, settings.templates_configmap, job)
        text = read_config_text(config) if config is not None else None
        name = kuberay.create_rayjob(custom, kuberay.new_rayjob(tmpl, settings.namespace, text, args or []))
        typer.echo(name)
        if not wait:
            return 0
        state = kuberay.wait_rayjob(custom, settings.namespace, name, settings.poll_seconds, _print_state)
        return state.exit_code

    raise typer.Exit(run_guarded(body, also=_cluster_errors()))


@k8s_app.command("status")
def k8s_status(
    name: NameArg,
    namespace: NamespaceOpt = DEFAULTS.namespace,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Show a RayJob's deployment and job status; exit 0 if it succeeded, 1 failed, 3 stopped, 4 not finished."""
    from soilnet.submission import kuberay

    def body() -> int:
        custom, _ = _apis(kubeconfig, context)
        state = kuberay.get_rayjob(custom, namespace, name)
        for key, value in vars(state).items():
            typer.echo(f"{key}: {value}")
        return state.exit_code if state.finished else 4

    raise typer.Exit(run_guarded(body, also=_cluster_errors()))


@k8s_app.command("logs")
def k8s_logs(
    name: NameArg,
    namespace: NamespaceOpt = DEFAULTS.namespace,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Print the logs of a RayJob (its submitter pod follows the Ray job's output)."""
    from soilnet.submission import kuberay

    def body() -> None:
        _, core = _apis(kubeconfig, context)
        sys.stdout.write(kuberay.rayjob_logs(core, namespace, name, tail))

    run_guarded(body, also=_cluster_errors())


@k8s_app.command("list")
def k8s_list(
    namespace: NamespaceOpt = DEFAULTS.namespace,
    job: Annotated[str | None, typer.Option("--job", help="Only RayJobs of this job.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """List soilnet's RayJobs in the namespace, oldest first."""
    from soilnet.submission import kuberay

    def body() -> None:
        custom, _ = _apis(kubeconfig, context)
        table = Table("name", "job", "deployment", "status", "start", "end", title=f"RayJobs in {namespace}")
        for s in kuberay.list_rayjobs(custom, namespace, job):
            table.add_row(s.name, s.job, s.deployment_status, s.job_status, s.start_time, s.end_time)
        Console(width=200).print(table)

    run_guarded(body, also=_cluster_errors())
