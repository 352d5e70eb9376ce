"""Vertex AI tuning jobs (`tuningJobs`) in the fake: create, get, list, cancel, and their clock.

A job is `JOB_STATE_PENDING` for `durations["pending"]` fake seconds (reading its dataset), then
`JOB_STATE_RUNNING` for `durations["running"]`, then `JOB_STATE_SUCCEEDED` with
`tunedModel {model, endpoint, checkpoints}`; the model and endpoint then exist in the fake, and
generateContent on the endpoint answers as the tuned model. A cancel moves it to
`JOB_STATE_CANCELLING`, then after `durations["cancelling"]` to `JOB_STATE_CANCELLED` (with
`error {code: 1, message: "CANCELED"}`, as Vertex's custom jobs report a cancel). A dataset
that is missing from the fake's Cloud Storage fails the job when PENDING ends, and a job marked
with `fail_tuning_job` fails at its next transition, with `error {code, message}`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .vertex_fake_wire import ApiError, Ctx, int64, rfc3339, rpc_status

__all__ = ["DEFAULT_DURATIONS", "PREFERENCE_MODELS", "ROUTES", "TUNABLE_MODELS", "TuningJob"]

DEFAULT_DURATIONS = {"pending": 30.0, "running": 120.0, "cancelling": 10.0}
TERMINAL = frozenset(
    {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
)
#: Base models the fake tunes with supervisedTuningSpec (provider-rules §3, audit 2026-11-30).
#: Gemini 2.0 (retired 2026-02-05 / 2026-02-25) and 1.5 are in `RETIRED_MODELS` instead.
TUNABLE_MODELS = frozenset(
    {
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-3.5-flash",
        "gemini-3.1-flash-lite",
    }
)
#: Base models the fake tunes with preferenceOptimizationSpec.
PREFERENCE_MODELS = frozenset({"gemini-2.5-flash", "gemini-2.5-flash-lite"})
_SPECS = {
    "supervisedTuningSpec": "SUPERVISED_FINE_TUNING",
    "preferenceOptimizationSpec": "PREFERENCE_TUNING",
}
_ADAPTERS = {
    "ADAPTER_SIZE_ONE",
    "ADAPTER_SIZE_TWO",
    "ADAPTER_SIZE_FOUR",
    "ADAPTER_SIZE_EIGHT",
    "ADAPTER_SIZE_SIXTEEN",
}
_LABEL = re.compile(r"[a-z0-9_-]{0,63}")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_BATCH = 8  # examples per step, for tuningStepCount


@dataclass
class TuningJob:
    """A tuning job as the fake holds it; `render()` is its REST representation."""

    name: str
    request: dict[str, Any]
    spec_key: str
    created: float
    state: str = "JOB_STATE_PENDING"
    updated: float = 0.0
    started: float | None = None
    ended: float | None = None
    cancel_at: float | None = None
    error: dict[str, Any] | None = None
    fail_with: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    tuned_model: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.name.split("/tuningJobs/")[0]

    @property
    def labels(self) -> dict[str, str]:
        return self.request.get("labels") or {}

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, **self.request}
        out.update(state=self.state, createTime=rfc3339(self.created))
        out["updateTime"] = rfc3339(self.updated or self.created)
        if self.started is not None:
            out["startTime"] = rfc3339(self.started)
        if self.ended is not None:
            out["endTime"] = rfc3339(self.ended)
        if self.error:
            out["error"] = self.error
        if self.stats:
            out["tuningDataStats"] = self.stats
        if self.tuned_model:
            out["tunedModel"] = self.tuned_model
        if self.state == "JOB_STATE_PENDING":
            out["tuningJobState"] = "TUNING_JOB_STATE_PROCESSING_DATASET"
        elif self.state == "JOB_STATE_RUNNING":
            out["tuningJobState"] = "TUNING_JOB_STATE_TUNING"
        out.update(self.extra)
        return out


# --- validation of a create body --------------------------------------------------------------


def _normalise(body: dict[str, Any], fake: Any) -> tuple[dict[str, Any], str]:
    keys = [k for k in _SPECS if k in body]
    others = [k for k in ("distillationSpec", "reinforcementTuningSpec") if k in body]
    if others:
        raise ApiError(400, f"The fake tunes supervised and preference jobs only, not {others[0]}.")
    if len(keys) != 1:
        raise ApiError(
            400, "Exactly one of supervisedTuningSpec or preferenceOptimizationSpec is required."
        )
    spec_key = keys[0]
    base = body.get("baseModel") or ""
    if not base and "preTunedModel" not in body:
        raise ApiError(400, "base_model is required.")
    allowed = fake.preference_models if spec_key == "preferenceOptimizationSpec" else fake.models
    if base and base not in allowed:
        method = _SPECS[spec_key].lower().replace("_", " ")
        raise ApiError(400, f"Base model {base} is not supported for {method}.")
    spec = dict(body[spec_key])
    if not str(spec.get("trainingDatasetUri", "")).startswith("gs://"):
        raise ApiError(400, "Training dataset URI must be a Cloud Storage URI (gs://...).")
    if "validationDatasetUri" in spec and not str(spec["validationDatasetUri"]).startswith("gs://"):
        raise ApiError(400, "Validation dataset URI must be a Cloud Storage URI (gs://...).")
    hp = dict(spec.get("hyperParameters") or {})
    for key in ("epochCount", "batchSize"):
        if key in hp:
            try:
                value = int(hp[key])
            except (TypeError, ValueError):
                raise ApiError(
                    400, f"Invalid value for hyper_parameters.{key}: {hp[key]!r}"
                ) from None
            if value < 1:
                raise ApiError(400, f"hyper_parameters.{key} must be positive, got {value}.")
            hp[key] = int64(value)
    for key in ("learningRateMultiplier", "beta", "learningRate"):
        if key in hp and (not isinstance(hp[key], int | float) or hp[key] <= 0):
            raise ApiError(400, f"hyper_parameters.{key} must be a positive number.")
    if "adapterSize" in hp and hp["adapterSize"] not in _ADAPTERS:
        raise ApiError(400, f"Unsupported adapter size {hp['adapterSize']}.")
    if "beta" in hp and spec_key != "preferenceOptimizationSpec":
        raise ApiError(400, "beta is only supported for preference optimization.")
    if hp:
        spec["hyperParameters"] = hp
    name = body.get("tunedModelDisplayName", "")
    if len(name) > 128:
        raise ApiError(400, "tuned_model_display_name must be at most 128 characters.")
    labels = body.get("labels") or {}
    if len(labels) > 64:
        raise ApiError(400, "At most 64 labels are allowed.")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(str(key)) or not _LABEL.fullmatch(str(value)):
            raise ApiError(
                400,
                f"Invalid label {key}={value}: keys and values may contain only lowercase "
                "letters, digits, underscores and dashes (keys start with a letter), "
                "at most 63 characters.",
            )
    return {**body, spec_key: spec}, spec_key


# --- the clock ----------------------------------------------------------------------------------


def sync(fake: Any, job: TuningJob) -> None:
    """Bring `job` up to the fake clock's now."""
    now, d = fake.clock.now(), fake.durations
    if job.state == "JOB_STATE_CANCELLING" and now >= (job.cancel_at or now) + d["cancelling"]:
        _finish(fake, job, "JOB_STATE_CANCELLED", job.cancel_at + d["cancelling"])
        job.error = rpc_status("CANCELLED", "CANCELED")
    if job.state == "JOB_STATE_PENDING" and now >= job.created + d["pending"]:
        at = job.created + d["pending"]
        problem = _dataset_problem(fake, job)
        if problem or job.fail_with:
            job.error = problem or job.fail_with
            _finish(fake, job, "JOB_STATE_FAILED", at)
            return
        job.state, job.started, job.updated = "JOB_STATE_RUNNING", at, at
        job.stats = _stats(fake, job)
        job.extra["experiment"] = (
            f"{job.parent}/metadataStores/default/contexts/tuning-experiment-{job.id}"
        )
    if job.state == "JOB_STATE_RUNNING" and now >= (job.started or now) + d["running"]:
        at = (job.started or now) + d["running"]
        if job.fail_with:
            job.error = job.fail_with
            _finish(fake, job, "JOB_STATE_FAILED", at)
        else:
            succeed(fake, job, at)


def _finish(fake: Any, job: TuningJob, state: str, at: float) -> None:
    job.state, job.ended, job.updated = state, at, at


def succeed(fake: Any, job: TuningJob, at: float) -> None:
    """Mark `job` SUCCEEDED at `at`: register its model and endpoint, fill `tunedModel`."""
    if job.stats is None:
        job.stats = _stats(fake, job)
    if job.started is None:
        job.started = at
    display = job.request.get("tunedModelDisplayName") or f"tuned-{job.id}"
    model, endpoint = fake.serving.add_tuned(job.parent, display, job.request.get("baseModel", ""))
    epochs = int(job.request[job.spec_key].get("hyperParameters", {}).get("epochCount", 3))
    steps = _steps(job.stats)
    per_epoch = max(1, steps // max(epochs, 1))
    checkpoints = [
        {"checkpointId": str(e), "epoch": int64(e), "step": int64(e * per_epoch)}
        for e in range(1, epochs + 1)
    ]
    checkpoints[-1]["endpoint"] = endpoint
    job.tuned_model = {"model": f"{model}@1", "endpoint": endpoint, "checkpoints": checkpoints}
    _finish(fake, job, "JOB_STATE_SUCCEEDED", at)


def _dataset_problem(fake: Any, job: TuningJob) -> dict[str, Any] | None:
    spec = job.request[job.spec_key]
    for key in ("trainingDatasetUri", "validationDatasetUri"):
        uri = spec.get(key)
        if not uri:
            continue
        bucket = uri[5:].split("/", 1)[0]
        if bucket in fake.storage.buckets and not fake.storage.exists(uri):
            return rpc_status(
                "INVALID_ARGUMENT", f"Failed to read the dataset {uri}: the object does not exist."
            )
    return None


def _examples(fake: Any, uri: str) -> list[dict[str, Any]]:
    try:
        text = fake.storage.get(uri).decode("utf-8", "replace")
    except (KeyError, ValueError):
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _text_len(node: Any) -> int:
    if isinstance(node, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _text_len(v) for k, v in node.items()
        )
    if isinstance(node, list):
        return sum(_text_len(item) for item in node)
    return 0


def _distribution(values: list[int], int_sum: bool) -> dict[str, Any]:
    if not values:
        return {}
    ordered = sorted(values)
    total = sum(ordered)
    return {
        "sum": int64(total) if int_sum else float(total),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "mean": total / len(ordered),
        "median": float(ordered[len(ordered) // 2]),
        "p5": float(ordered[int(len(ordered) * 0.05)]),
        "p95": float(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]),
    }


def _stats(fake: Any, job: TuningJob) -> dict[str, Any]:
    """tuningDataStats computed from the dataset in the fake's storage (tokens = chars / 4)."""
    spec = job.request[job.spec_key]
    examples = _examples(fake, spec["trainingDatasetUri"])
    epochs = int(spec.get("hyperParameters", {}).get("epochCount", 3))
    inputs, outputs = [], []
    for ex in examples:
        if job.spec_key == "preferenceOptimizationSpec":
            inputs.append(math.ceil(_text_len(ex.get("contents")) / 4))
            outputs.append(math.ceil(_text_len(ex.get("completions")) / 4))
        else:
            turns = ex.get("contents") or []
            model = [t for t in turns if isinstance(t, dict) and t.get("role") == "model"]
            outputs.append(math.ceil(_text_len(model) / 4))
            inputs.append(math.ceil((_text_len(ex) - _text_len(model)) / 4))
    tokens = sum(inputs) + sum(outputs)
    common = {
        "tuningDatasetExampleCount": int64(len(examples)),
        "totalBillableTokenCount": int64(tokens * epochs),
        "tuningStepCount": int64(epochs * max(1, math.ceil(len(examples) / _BATCH))),
    }
    if job.spec_key == "preferenceOptimizationSpec":
        return {
            "preferenceOptimizationDataStats": {
                **common,
                "userInputTokenDistribution": _distribution(inputs, int_sum=False),
                "userOutputTokenDistribution": _distribution(outputs, int_sum=False),
            }
        }
    chars = sum(_text_len(ex) for ex in examples)
    return {
        "supervisedTuningDataStats": {
            **common,
            "totalTuningCharacterCount": int64(chars),
            "totalBillableCharacterCount": int64(chars * epochs),
            "userInputTokenDistribution": _distribution(inputs, int_sum=True),
            "userOutputTokenDistribution": _distribution(outputs, int_sum=True),
            "userDatasetExamples": [
                ex.get("contents", [])[0] for ex in examples[:3] if ex.get("contents")
            ],
        }
    }


def _steps(stats: dict[str, Any]) -> int:
    inner = next(iter(stats.values()), {}) if stats else {}
    return int(inner.get("tuningStepCount", 1))


# --- routes --------------------------------------------------------------------------------------


def create(ctx: Ctx, project: str, location: str, version: str) -> Any:
    fake = ctx.fake
    base = str(ctx.body().get("baseModel") or "")
    if base.removeprefix("publishers/google/models/") in fake.retired_models:
        raise ApiError(  # a retired model is gone: Vertex answers as for any unknown model
            404,
            f"Publisher Model `projects/{project}/locations/{location}/publishers/google/models/"
            f"{base.removeprefix('publishers/google/models/')}` was not found or your project "
            "does not have access to it.",
        )
    body, spec_key = _normalise(ctx.body(), fake)
    parent = fake.parent(project, location)
    job_id = fake.new_id()
    now = fake.clock.now()
    job = TuningJob(f"{parent}/tuningJobs/{job_id}", body, spec_key, created=now, updated=now)
    if fake.next_job_failure is not None:
        job.fail_with, fake.next_job_failure = fake.next_job_failure, None
    fake.tuning_jobs[job.name] = job
    return ctx.ok(job.render())


def get(ctx: Ctx, project: str, location: str, version: str, job_id: str) -> Any:
    job = _find(ctx, project, location, job_id)
    ctx.fake.poll_advance()
    sync(ctx.fake, job)
    return ctx.ok(job.render())


def _find(ctx: Ctx, project: str, location: str, job_id: str) -> TuningJob:
    name = f"{ctx.fake.parent(project, location)}/tuningJobs/{job_id}"
    job = ctx.fake.tuning_jobs.get(name)
    if job is None:
        raise ApiError(404, f'The TuningJob "{name}" does not exist.')
    return job


def _filter_terms(text: str) -> list[tuple[str, str]]:
    terms = []
    for raw in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        match = re.fullmatch(r'\s*([\w.\-]+)\s*(=|:)\s*"?([^"]*)"?\s*', raw)
        if not match:
            raise ApiError(400, f"Invalid filter: {text!r}")
        key, _op, value = match.groups()
        if not (key.startswith("labels.") or key in ("state", "base_model", "baseModel")):
            raise ApiError(
                400,
                f"Unsupported filter field {key!r} (the fake supports labels.KEY, state, base_model).",
            )
        terms.append((key, value))
    return terms


def _keep(job: TuningJob, terms: list[tuple[str, str]]) -> bool:
    for key, value in terms:
        if key.startswith("labels."):
            label = job.labels.get(key[len("labels.") :])
            if label is None or (value != "*" and label != value):
                return False
        elif key == "state":
            if job.state != value:
                return False
        elif job.request.get("baseModel") != value:
            return False
    return True


def list_jobs(ctx: Ctx, project: str, location: str, version: str) -> Any:
    fake, q = ctx.fake, ctx.request.query
    parent = fake.parent(project, location)
    terms = _filter_terms(q.get("filter", ""))
    jobs = [j for j in fake.tuning_jobs.values() if j.parent == parent]
    for job in jobs:
        sync(fake, job)
    jobs = sorted((j for j in jobs if _keep(j, terms)), key=lambda j: j.created, reverse=True)
    size = int(q.get("pageSize") or 100)
    start = int(q.get("pageToken") or 0)
    page = jobs[start : start + size]
    payload: dict[str, Any] = {}
    if page:
        payload["tuningJobs"] = [j.render() for j in page]
    if start + size < len(jobs):
        payload["nextPageToken"] = str(start + size)
    return ctx.ok(payload)


def cancel(ctx: Ctx, project: str, location: str, version: str, job_id: str) -> Any:
    fake = ctx.fake
    job = _find(ctx, project, location, job_id)
    sync(fake, job)
    if job.state in TERMINAL:
        raise ApiError(
            400,
            f"Cannot cancel tuning job {job.name} in state {job.state}.",
            status="FAILED_PRECONDITION",
        )
    if job.state != "JOB_STATE_CANCELLING":
        now = fake.clock.now()
        job.state, job.cancel_at, job.updated = "JOB_STATE_CANCELLING", now, now
        sync(fake, job)
    return ctx.ok({})


_P = r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
ROUTES = [
    ("POST", rf"{_P}/tuningJobs", "tuningJobs.create", create),
    ("GET", rf"{_P}/tuningJobs", "tuningJobs.list", list_jobs),
    ("GET", rf"{_P}/tuningJobs/(?P<job_id>[^/:]+)", "tuningJobs.get", get),
    ("POST", rf"{_P}/tuningJobs/(?P<job_id>[^/:]+):cancel", "tuningJobs.cancel", cancel),
]
