"""Fine-tuning jobs of the Azure AI Foundry fake: state timeline, ARM rendering, run history.

A job's life is a timeline of (status, fake time) pairs fixed at creation from the fake's
`phases` (default NotStarted 10 s, Queued 30 s, Running 120 s, then Completed); `cancel`,
`fail` and `force` rewrite the rest of it. Nothing moves on real time.

The ARM job resource carries only `status`; as in Azure, the failure message, start and end
times live in run history (`/history/v1.0/.../runs/{name}/details`) and the training metrics in
MLflow (`/mlflow/v1.0/.../api/2.0/mlflow/...`), both rendered here.
"""

from __future__ import annotations

import copy
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

from .azure_foundry_fake_wire import iso, ms

__all__ = ["DEFAULT_PHASES", "TERMINAL", "FineTuningJob"]

DEFAULT_PHASES: tuple[tuple[str, float], ...] = (
    ("NotStarted", 10.0),
    ("Queued", 30.0),
    ("Running", 120.0),
)
TERMINAL = frozenset({"Completed", "Failed", "Canceled"})
#: azure-ai-ml's JobStatus values; `force` refuses anything else unless told not to
KNOWN_STATUSES = frozenset(
    {
        "NotStarted",
        "Starting",
        "Provisioning",
        "Preparing",
        "Queued",
        "Running",
        "Finalizing",
        "CancelRequested",
        "Completed",
        "Failed",
        "Canceled",
        "NotResponding",
        "Paused",
        "Unknown",
    }
)
_MLFLOW_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}


@dataclass
class FineTuningJob:
    """One fine-tuning job as the fake keeps it."""

    name: str
    resource_id: str
    properties: dict[str, Any]  # `properties` of the PUT body, as sent
    created_at: float
    timeline: list[tuple[str, float]]
    step_seconds: float = 10.0
    steps_per_epoch: int = 3
    error: dict[str, str] | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    extra_metrics: list[dict[str, Any]] = field(default_factory=list)
    registered_model: tuple[str, str] | None = None  # (name, version) once Completed

    # --- timeline ------------------------------------------------------------------------

    def status(self, now: float) -> str:
        current = self.timeline[0][0]
        for status, at in self.timeline:
            if at <= now:
                current = status
        return current

    def entered(self, status: str, now: float) -> float | None:
        """When the job entered `status` (the first time), if it has by `now`."""
        return next((at for s, at in self.timeline if s == status and at <= now), None)

    def started_at(self, now: float) -> float | None:
        return self.entered("Running", now)

    def ended_at(self, now: float) -> float | None:
        return next((at for s, at in self.timeline if s in TERMINAL and at <= now), None)

    def _cut(self, now: float) -> None:
        self.timeline = [(s, at) for s, at in self.timeline if at <= now]

    def cancel(self, now: float, seconds: float) -> None:
        """CancelRequested now, Canceled `seconds` later (nothing happens to a finished job)."""
        if self.status(now) in TERMINAL:
            return
        self._cut(now)
        if self.timeline[-1][0] != "CancelRequested":
            self.timeline.append(("CancelRequested", now))
            self.timeline.append(("Canceled", now + seconds))

    def fail(self, now: float, code: str, message: str, immediately: bool) -> None:
        """Fail now, or at the job's next transition (its end, if it is running)."""
        if self.status(now) in TERMINAL:
            raise ValueError(f"job {self.name} has already ended ({self.status(now)})")
        later = [at for _, at in self.timeline if at > now]
        at = now if immediately or not later else min(later)
        self._cut(at - 1e-9 if at > now else now)
        self.timeline.append(("Failed", at))
        self.error = {"code": code, "message": message}

    def force(self, status: str, now: float) -> None:
        self._cut(now)
        self.timeline.append((status, now))

    # --- ARM -----------------------------------------------------------------------------

    @property
    def output_model_name(self) -> str | None:
        output = (self.properties.get("outputs") or {}).get("registered_model") or {}
        return output.get("assetName")

    def render(self, now: float, studio_url: str, tracking_uri: str) -> dict[str, Any]:
        """The job resource as `GET .../jobs/{name}` returns it."""
        properties = copy.deepcopy(self.properties)
        properties["status"] = self.status(now)
        properties.setdefault("experimentName", "Default")
        properties.setdefault("displayName", self.name)
        properties.setdefault("isArchived", False)
        properties["services"] = {
            "Studio": {"jobServiceType": "Studio", "endpoint": f"{studio_url}/runs/{self.name}"},
            "Tracking": {"jobServiceType": "Tracking", "endpoint": tracking_uri},
        }
        created = iso(self.created_at)
        return {
            "id": self.resource_id,
            "name": self.name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": properties,
            "systemData": {
                "createdAt": created,
                "createdBy": "fake-user@example.com",
                "createdByType": "User",
                "lastModifiedAt": created,
            },
        }

    # --- run history -----------------------------------------------------------------------

    def run_details(self, now: float) -> dict[str, Any]:
        """`GET /history/v1.0/.../runs/{name}/details` (RunDetails)."""
        started, ended = self.started_at(now), self.ended_at(now)
        status = self.status(now)
        details: dict[str, Any] = {
            "runId": self.name,
            "runUuid": f"00000000-0000-0000-0000-{zlib.crc32(self.name.encode()):012d}",
            "status": status,
            "target": "serverless",
            "startTimeUtc": iso(started) if started is not None else None,
            "endTimeUtc": iso(ended) if ended is not None else None,
            "warnings": list(self.warnings),
            "properties": dict(self.properties.get("properties") or {}),
            "logFiles": {},
            "services": {},
        }
        if status == "Failed" and self.error:
            details["error"] = {
                "error": {"code": self.error["code"], "message": self.error["message"]},
                "time": iso(ended or now),
            }
        return details

    def run(self, now: float) -> dict[str, Any]:
        """`GET /history/v1.0/.../runs/{name}` (Run)."""
        details = self.run_details(now)
        return {
            **{k: details[k] for k in ("runId", "runUuid", "status", "warnings")},
            "createdUtc": iso(self.created_at),
            "startTimeUtc": details["startTimeUtc"],
            "endTimeUtc": details["endTimeUtc"],
            "error": details.get("error"),
            "displayName": self.properties.get("displayName", self.name),
            "experimentId": "00000000-0000-0000-0000-00000000e001",
            "name": self.name,
            "runType": "azureml.FineTuning",
            "tags": dict(self.properties.get("tags") or {}),
            "properties": details["properties"],
        }

    # --- metrics (MLflow) ----------------------------------------------------------------

    def metric_points(self, now: float) -> list[dict[str, Any]]:
        """Every metric point logged by `now`: a made-up loss curve while Running, plus any
        points added with `FakeAzureFoundry.log_metric`. Shape: MLflow's Metric."""
        points: list[dict[str, Any]] = []
        started = self.started_at(now)
        if started is not None:
            end = min(now, self.ended_at(now) or now)
            steps = int((end - started) // self.step_seconds) if self.step_seconds > 0 else 0
            for step in range(1, steps + 1):
                at = ms(started + step * self.step_seconds)
                loss = round(0.35 + 1.9 * math.exp(-0.35 * step), 4)
                points.append({"key": "loss", "value": loss, "timestamp": at, "step": step})
                points.append(
                    {
                        "key": "epoch",
                        "value": step / self.steps_per_epoch,
                        "timestamp": at,
                        "step": step,
                    }
                )
                if step % self.steps_per_epoch == 0:
                    eval_loss = round(loss + 0.08, 4)
                    points.append(
                        {"key": "eval_loss", "value": eval_loss, "timestamp": at, "step": step}
                    )
        points.extend(p for p in self.extra_metrics if p["timestamp"] <= ms(now))
        return points

    def mlflow_run(self, now: float, experiment_id: str) -> dict[str, Any]:
        """`GET /mlflow/v1.0/.../api/2.0/mlflow/runs/get?run_id=` (latest value per key)."""
        latest: dict[str, dict[str, Any]] = {}
        for point in self.metric_points(now):
            latest[point["key"]] = point
        status = self.status(now)
        hyper = (self.properties.get("fineTuningDetails") or {}).get("hyperParameters") or {}
        return {
            "info": {
                "run_id": self.name,
                "run_uuid": self.name,
                "run_name": self.properties.get("displayName", self.name),
                "experiment_id": experiment_id,
                "status": _MLFLOW_STATUS.get(
                    status, "RUNNING" if self.started_at(now) else "SCHEDULED"
                ),
                "start_time": ms(self.started_at(now) or self.created_at),
                "end_time": ms(self.ended_at(now)),
                "lifecycle_stage": "active",
            },
            "data": {
                "metrics": list(latest.values()),
                "params": [{"key": k, "value": str(v)} for k, v in hyper.items()],
                "tags": [{"key": "mlflow.runName", "value": self.name}],
            },
        }
