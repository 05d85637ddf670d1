"""Settings of job submission: where the Ray cluster and the Kubernetes namespace are."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from soilnet.configbase import StrictModel

#: Environment variables forwarded to submitted jobs by default: endpoints, never credentials.
DEFAULT_FORWARD_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "SOILNET_STORAGE_ROOT",
)

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class SubmissionConfig(StrictModel):
    """Where jobs go: a Ray dashboard (Jobs API) or a namespace with the soilnet chart."""

    address: str = Field(
        "http://127.0.0.1:8265",
        pattern=r"^https?://\S+$",
        description="Ray dashboard URL of the Jobs API (e.g. a port-forwarded head service).",
    )
    forward_env: list[EnvName] = Field(
        default_factory=lambda: list(DEFAULT_FORWARD_ENV),
        description="Names of local environment variables passed to the job when they are set.",
    )
    follow: bool = Field(True, description="Follow the job's logs until it ends.")
    namespace: str = Field(
        "soilnet",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Kubernetes namespace of the soilnet chart's RayJobs.",
    )
    templates_configmap: str = Field(
        "soilnet-rayjob-templates",
        pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="ConfigMap with the chart's RayJob templates (<release fullname>-rayjob-templates).",
    )
    poll_seconds: float = Field(5.0, gt=0, le=600, description="Seconds between status checks.")
