"""A fine-tuning job's story and numbers, from the workspace data plane (REST, azure-core).

The ARM job resource carries only a status. What happened lives elsewhere, and azure-ai-ml has
no public call for it:

- run history, `GET {api}/history/v1.0/{workspace}/runs/{job}`: created/started/ended times,
  warnings and, for a failed job, the error message (`jobs.stream` prints the same and raises);
  `{api}` comes from the workspace's discovery URL;
- MLflow, `GET {tracking}/api/2.0/mlflow/runs/get?run_id=` (latest value per metric) and
  `.../metrics/get-history?run_id=&metric_key=` (every point), where `{tracking}` is the
  workspace's `mlflow_tracking_uri` over https. These are the calls the `mlflow` client makes
  with `azureml-mlflow`, without installing either.

Both take the management-plane token (the scope azure-ai-ml's run-history client uses) and go
through the connection's transport.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from finetune_hub.status import JobEvent, MetricPoint

if TYPE_CHECKING:
    from finetune_hub.providers.azure_foundry import AzureFoundryConnection

__all__ = ["RunHistory", "metric_points", "run_events"]

SCOPE = "https://management.azure.com/.default"
_TRAIN_LOSS = ("train_loss", "loss")
_VALID_LOSS = ("eval_loss", "valid_loss", "validation_loss")
_TRAIN_ACC = ("train_accuracy", "accuracy")
_VALID_ACC = ("eval_accuracy", "valid_accuracy")


class RunHistory:
    """REST calls to run history and MLflow for one connection (made on first use)."""

    def __init__(self, connection: AzureFoundryConnection) -> None:
        self.connection = connection
        self._client: Any = None
        self._api: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import (
                BearerTokenCredentialPolicy,
                HeadersPolicy,
                UserAgentPolicy,
            )

            policies = [
                HeadersPolicy({"Accept": "application/json"}),
                UserAgentPolicy("finetune-hub"),
                BearerTokenCredentialPolicy(self.connection.credential(), SCOPE),
            ]
            kwargs: dict[str, Any] = {"policies": policies}
            if self.connection.options.transport is not None:
                kwargs["transport"] = self.connection.options.transport
            self._client = PipelineClient("https://management.azure.com", **kwargs)
        return self._client

    def get_json(self, url: str, params: dict[str, str] | None = None) -> Any:
        """GET `url` and return its JSON; HTTP errors raise azure-core's `HttpResponseError`."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        response = self.client.send_request(HttpRequest("GET", url, params=params or {}))
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return response.json()

    def api_base(self) -> str:
        if self._api is None:
            discovery = self.connection.workspace().discovery_url
            self._api = str(self.get_json(discovery)["api"]).rstrip("/")
        return self._api

    def run(self, name: str) -> dict[str, Any]:
        """The run-history record of job `name` (status, times, warnings, error)."""
        path = self.connection.workspace_path
        return self.get_json(f"{self.api_base()}/history/v1.0{path}/runs/{name}")

    def mlflow_base(self) -> str:
        uri = self.connection.workspace().mlflow_tracking_uri
        return "https://" + uri.split("://", 1)[1].rstrip("/")

    def metrics(self, name: str) -> list[dict[str, Any]]:
        """Every MLflow metric point logged by job `name` (MLflow's Metric shape)."""
        base = f"{self.mlflow_base()}/api/2.0/mlflow"
        run = self.get_json(f"{base}/runs/get", {"run_id": name}).get("run", {})
        keys = sorted({m["key"] for m in run.get("data", {}).get("metrics", [])})
        points: list[dict[str, Any]] = []
        for key in keys:
            history = self.get_json(
                f"{base}/metrics/get-history", {"run_id": name, "metric_key": key}
            )
            points.extend(history.get("metrics", []))
        return points


def run_events(run: dict[str, Any], after: str | None = None) -> list[JobEvent]:
    """Events from a run-history record, oldest first, those after event id `after` only."""
    events: list[JobEvent] = []
    created = _time(run.get("createdUtc"))
    if created:
        events.append(JobEvent(id="created", created_at=created, message="job created"))
    started = _time(run.get("startTimeUtc"))
    if started:
        events.append(JobEvent(id="started", created_at=started, message="training started"))
    for i, warning in enumerate(run.get("warnings") or []):
        at = started or created or dt.datetime.now(dt.UTC)
        text = warning.get("message", "") if isinstance(warning, dict) else str(warning)
        events.append(JobEvent(id=f"warning-{i}", created_at=at, level="warning", message=text))
    ended = _time(run.get("endTimeUtc"))
    if ended:
        status = run.get("status", "ended")
        message = f"job {str(status).lower()}"
        level = "info"
        error = error_message(run)
        if error:
            message, level = f"{message}: {error}", "error"
        events.append(JobEvent(id="ended", created_at=ended, level=level, message=message))
    ids = [e.id for e in events]
    return events[ids.index(after) + 1 :] if after in ids else events


def error_message(run: dict[str, Any]) -> str | None:
    """The failure message of a run-history record (`error.error.message`), if any."""
    error = (run.get("error") or {}).get("error") or {}
    return error.get("message") or None


def error_code(run: dict[str, Any]) -> str | None:
    error = (run.get("error") or {}).get("error") or {}
    return error.get("code") or None


def metric_points(raw: list[dict[str, Any]]) -> list[MetricPoint]:
    """MLflow points grouped by step: losses and accuracies under their names, the rest in
    `extra` (Hugging Face trainer names: `loss`, `eval_loss`, `epoch`, ...)."""
    by_step: dict[int, dict[str, float]] = {}
    for point in raw:
        by_step.setdefault(int(point.get("step", 0)), {})[point["key"]] = float(point["value"])
    out = []
    for step in sorted(by_step):
        values = dict(by_step[step])
        fields: dict[str, Any] = {"step": step}
        for field, keys in (
            ("train_loss", _TRAIN_LOSS),
            ("valid_loss", _VALID_LOSS),
            ("train_accuracy", _TRAIN_ACC),
            ("valid_accuracy", _VALID_ACC),
        ):
            key = next((k for k in keys if k in values), None)
            if key is not None:
                fields[field] = values.pop(key)
        if "epoch" in values:
            fields["epoch"] = values.pop("epoch")
        out.append(MetricPoint(**fields, extra=values))
    return out


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
