"""Google Vertex AI: Gemini supervised and preference tuning through google-genai
(`client.tunings`), the three-data-set RLHF pipeline through google-cloud-aiplatform, Cloud
Storage uploads, and chat on the tuned model's endpoint.

- Connection and options: `vertex_connection.py`; uploads: `vertex_storage.py`; RLHF data sets,
  the Gemini conversion and the pipeline: `vertex_rlhf.py`; endpoints: `vertex_deploy.py`.
- `method="sft"` and `"dpo"` create a tuning job (`supervisedTuningSpec` /
  `preferenceOptimizationSpec`) with the hyperparameters in google-genai's names
  (`epoch_count`, `learning_rate_multiplier`, `adapter_size` as ADAPTER_SIZE_*, `beta`), the
  `suffix` as the tuned model's display name, and the label `finetune-hub-job=<local job id>`.
- `method="rlhf"` submits Google's RLHF template as a PipelineJob whose id is derived from the
  local job id.
- Idempotency: `find` lists tuning jobs filtered by that label (`labels.finetune-hub-job=ID`) and
  reads the pipeline job by its derived id; the job layer calls it before every create, so a
  create that failed after taking effect is found, not repeated.
- A tuned Gemini model is served on its own endpoint and billed per token: `model.chat()` sends
  generateContent there. A pipeline's model is deployed with `model.deploy(confirm_cost=True)`.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from google import genai  # noqa: F401 - loaded here so a missing SDK names the extra
from google.cloud import storage  # noqa: F401

from finetune_hub.errors import ProviderError, UnsupportedOperation
from finetune_hub.issues import Issue
from finetune_hub.providers import vertex_rlhf
from finetune_hub.providers.base import (
    Capability,
    DataRef,
    PreparedJob,
    ProviderJob,
    TuningBackend,
)
from finetune_hub.providers.vertex_connection import VertexConnection
from finetune_hub.providers.vertex_storage import upload_jsonl
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, StateMap

LABEL = "finetune-hub-job"
_S = JobStatus
VERTEX_STATES = {
    "JOB_STATE_QUEUED": _S.QUEUED,
    "JOB_STATE_PENDING": _S.QUEUED,
    "JOB_STATE_RUNNING": _S.RUNNING,
    "JOB_STATE_UPDATING": _S.RUNNING,
    "JOB_STATE_PAUSED": _S.PAUSED,
    "JOB_STATE_CANCELLING": _S.CANCELLING,
    "JOB_STATE_SUCCEEDED": _S.SUCCEEDED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": _S.FAILED,
    "JOB_STATE_FAILED": _S.FAILED,
    "JOB_STATE_EXPIRED": _S.FAILED,
    "JOB_STATE_CANCELLED": _S.CANCELLED,
    **vertex_rlhf.PIPELINE_STATES,
}
_ADAPTERS = {1: "ONE", 2: "TWO", 4: "FOUR", 8: "EIGHT", 16: "SIXTEEN", 32: "THIRTY_TWO"}
_CHAT_ARGS = {
    "temperature": "temperature",
    "max_tokens": "max_output_tokens",
    "max_output_tokens": "max_output_tokens",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop_sequences",
}


def label_value(job_id: str) -> str:
    """The local job id as a label value (lower case, [a-z0-9_-], at most 63).

    >>> label_value("ftj_1A2B")
    'ftj_1a2b'
    """
    return re.sub(r"[^a-z0-9_-]", "-", job_id.lower())[:63]


class VertexBackend(TuningBackend):
    """Vertex AI: GCS uploads, Gemini tuning jobs, the RLHF pipeline, chat on tuned endpoints."""

    name = "vertex"
    display_name = "Google Vertex AI"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.CHECKPOINTS,
            Capability.CHAT,
            Capability.DELETE_MODEL,
            Capability.LIST_JOBS,
        }
    )
    state_map = StateMap("vertex", VERTEX_STATES)
    connection_class = VertexConnection
    serving_note = (
        "a tuned Gemini model answers on its own endpoint, billed per token: call model.chat(...)"
    )

    def __init__(self, connection: VertexConnection) -> None:
        super().__init__(connection)
        self._methods: dict[str, str] = {}  # local job id -> method, learnt in check()

    # -- checks and uploads -----------------------------------------------------------------------
    def preflight(self, job: PreparedJob) -> list[Issue]:
        """The Cloud Storage bucket reachable, before any upload (vertex_preflight.py)."""
        from finetune_hub.providers.vertex_preflight import preflight

        return preflight(self, job)

    def check(self, job: PreparedJob) -> list[Issue]:
        self._methods[job.job_id] = job.method  # so find() asks only where the job can be
        issues = []
        if not self.options.gcs_uri:
            issues.append(
                Issue(
                    code="missing_option",
                    field="options.gcs_uri",
                    message="Vertex AI reads training data from Cloud Storage: pass "
                    "options={'gcs_uri': 'gs://bucket/prefix'}",
                )
            )
        if job.method == "rlhf":
            issues += vertex_rlhf.dataset_issues(job)
            issues.append(
                vertex_rlhf.cost_issue(self.options.accelerator_type, self.options.confirm_cost)
            )
        elif job.datasets:
            issues.append(
                Issue(
                    code="unused_dataset",
                    field="datasets",
                    message=f"named data sets are for method='rlhf'; {job.method!r} uses "
                    "training_file and validation_file only",
                )
            )
        return issues

    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        return upload_jsonl(self.connection, path, purpose, job_id)

    # -- jobs --------------------------------------------------------------------------------------
    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        if job.method == "rlhf":
            return self._create_pipeline(job, refs)
        from google.genai import types

        values = dict(job.hyperparameters)
        if "adapter_size" in values:
            values["adapter_size"] = f"ADAPTER_SIZE_{_ADAPTERS[int(values['adapter_size'])]}"
        config: dict[str, Any] = {
            **values,
            "tuned_model_display_name": (job.suffix or f"finetune-hub-{job.job_id}")[:128],
            "description": f"finetune_hub job {job.job_id}",
            "labels": {**self.options.labels, LABEL: label_value(job.job_id)},
        }
        if job.method == "dpo":
            config["method"] = "PREFERENCE_TUNING"
        if "validation" in refs:
            config["validation_dataset"] = types.TuningValidationDataset(
                gcs_uri=refs["validation"].id
            )
        client = self.connection.genai

        def tune() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "tuning is experimental" on every call
                return client.tunings.tune(
                    base_model=job.model_id,
                    training_dataset=types.TuningDataset(gcs_uri=refs["training"].id),
                    config=types.CreateTuningJobConfig(**config),
                )

        return self._to_job(self.call("create", tune))

    def _create_pipeline(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        from google.cloud import aiplatform_v1

        spec = vertex_rlhf.load_template(self.connection, self.options.rlhf_template)
        body = vertex_rlhf.pipeline_body(self.connection, job, refs, spec)
        created = self.connection.gapic_call(
            "create",
            "pipeline",
            "create_pipeline_job",
            parent=self.connection.parent,
            pipeline_job=aiplatform_v1.PipelineJob(**body),
            pipeline_job_id=vertex_rlhf.pipeline_id(job.job_id),
        )
        return vertex_rlhf.to_provider_job(created, self.state_map)

    def find(self, job_id: str) -> ProviderJob | None:
        method = self._methods.get(job_id)
        if method != "rlhf":
            found = self._find_tuning_job(job_id)
            if found is not None or method is not None:
                return found
        name = f"{self.connection.parent}/pipelineJobs/{vertex_rlhf.pipeline_id(job_id)}"
        try:
            pipeline = self.connection.gapic_call("find", "pipeline", "get_pipeline_job", name=name)
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        return vertex_rlhf.to_provider_job(pipeline, self.state_map)

    def _find_tuning_job(self, job_id: str) -> ProviderJob | None:
        client = self.connection.genai
        value = label_value(job_id)
        pager = self.call(
            "find",
            lambda: client.tunings.list(
                config={"filter": f"labels.{LABEL}={value}", "page_size": 50}
            ),
        )
        for found in pager.page:
            if (found.labels or {}).get(LABEL) == value and (
                found.description in (None, f"finetune_hub job {job_id}")
            ):
                return self._to_job(found)
        return None

    def get(self, provider_job_id: str) -> ProviderJob:
        if "/pipelineJobs/" in provider_job_id:
            pipeline = self._pipeline(provider_job_id, "get")
            return vertex_rlhf.to_provider_job(pipeline, self.state_map)
        return self._to_job(self._tuning_job(provider_job_id, "get"))

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """One page of the location's Gemini tuning jobs (`client.tunings.list`, newest first);
        the cursor is Vertex's page token. RLHF pipeline jobs are not listed (adopt one by its
        `.../pipelineJobs/...` name)."""
        client = self.connection.genai
        config: dict[str, Any] = {"page_size": limit}
        if after is not None:
            config["page_token"] = after
        pager = self.call("list_jobs", lambda: client.tunings.list(config=config))
        jobs = [self._to_job(j) for j in pager.page]
        return jobs, (pager.config.get("page_token") or None) if jobs else None

    def cancel(self, provider_job_id: str) -> None:
        if "/pipelineJobs/" in provider_job_id:
            self.connection.gapic_call(
                "cancel", "pipeline", "cancel_pipeline_job", name=provider_job_id
            )
            return
        client = self.connection.genai
        self.call("cancel", lambda: client.tunings.cancel(name=provider_job_id))

    def _tuning_job(self, name: str, operation: str) -> Any:
        client = self.connection.genai
        return self.call(operation, lambda: client.tunings.get(name=name))

    def _pipeline(self, name: str, operation: str) -> Any:
        return self.connection.gapic_call(operation, "pipeline", "get_pipeline_job", name=name)

    def _to_job(self, job: Any) -> ProviderJob:
        raw = job.state.name if job.state else None
        tuned = job.tuned_model
        error = job.error
        stats = job.tuning_data_stats
        inner = stats and (
            stats.supervised_tuning_data_stats or stats.preference_optimization_data_stats
        )
        return ProviderJob(
            id=job.name,
            status=self.state_map(raw),
            raw_status=raw,
            fine_tuned_model=tuned.model if tuned and raw == "JOB_STATE_SUCCEEDED" else None,
            error=error.message if error and error.message else None,
            error_code=str(error.code) if error and error.code is not None else None,
            trained_tokens=getattr(inner, "total_billable_token_count", None),
            created_at=job.create_time,
            finished_at=job.end_time,
            raw=job.model_dump(mode="json", exclude_none=True),
            base_model=job.base_model,
            method=_method(job),
            local_job_id=(job.labels or {}).get(LABEL),
        )

    # -- following ---------------------------------------------------------------------------------
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        """Milestones as events (Vertex keeps no event log for tuning jobs): created, dataset
        read, started, ended; for a pipeline, each task's start and end, the reward-model and
        reinforcement-learning phases as `type="phase"`. Oldest first, those after `after`."""
        if "/pipelineJobs/" in provider_job_id:
            events = vertex_rlhf.pipeline_events(self._pipeline(provider_job_id, "events"))
        else:
            events = _tuning_events(self._tuning_job(provider_job_id, "events"))
        ids = [e.id for e in events]
        return events[ids.index(after) + 1 :] if after in ids else events

    def checkpoints(self, provider_job_id: str) -> list[Checkpoint]:
        if "/pipelineJobs/" in provider_job_id:
            return []
        job = self._tuning_job(provider_job_id, "checkpoints")
        tuned = job.tuned_model
        if not tuned or not tuned.checkpoints:
            return []
        return sorted(
            (
                Checkpoint(
                    id=c.checkpoint_id or str(c.step),
                    step=c.step or 0,
                    model=c.endpoint or tuned.model,
                    metrics={"epoch": float(c.epoch)} if c.epoch is not None else {},
                )
                for c in tuned.checkpoints
            ),
            key=lambda c: c.step,
        )

    # -- using the model ---------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """generateContent on the tuned model's endpoint (`model` may be the endpoint itself)."""
        from finetune_hub.providers.vertex_deploy import chat_on_endpoint, model_endpoints

        if "/endpoints/" in model:
            return chat_on_endpoint(self.connection, model, messages, gemini=True, **kwargs)
        info = model_endpoints(self.connection, model, "chat")
        if not info.endpoints:
            raise UnsupportedOperation(
                f"{model} is not deployed: deploy it first with model.deploy(confirm_cost=True)"
            )
        return chat_on_endpoint(
            self.connection, info.endpoints[0], messages, gemini=info.gemini, **kwargs
        )

    def delete_model(self, model: str) -> None:
        """Undeploy the model from its endpoints (deleting endpoints left empty), then delete it.
        Whether Vertex lets a tuned Gemini model's managed endpoint go is UNCONFIRMED."""
        from finetune_hub.providers.vertex_deploy import delete_model_and_endpoints

        delete_model_and_endpoints(self.connection, model)


def _method(job: Any) -> str | None:
    """The tuning job's method in finetune_hub's names, from the spec it carries."""
    if job.preference_optimization_spec is not None:
        return "dpo"
    if job.supervised_tuning_spec is not None:
        return "sft"
    return None


def _tuning_events(job: Any) -> list[JobEvent]:
    events = []
    if job.create_time:
        events.append(
            JobEvent(id="created", created_at=job.create_time, message="tuning job created")
        )
    stats = job.tuning_data_stats
    inner = stats and (
        stats.supervised_tuning_data_stats or stats.preference_optimization_data_stats
    )
    if inner and job.start_time:
        events.append(
            JobEvent(
                id="dataset",
                created_at=job.start_time,
                message=f"dataset read: {inner.tuning_dataset_example_count} examples, "
                f"{inner.tuning_step_count} steps, {inner.total_billable_token_count} billable tokens",
                type="dataset",
                data={
                    "examples": inner.tuning_dataset_example_count,
                    "steps": inner.tuning_step_count,
                    "billable_tokens": inner.total_billable_token_count,
                },
            )
        )
    if job.start_time:
        events.append(JobEvent(id="started", created_at=job.start_time, message="tuning started"))
    if job.end_time and job.state:
        state = job.state.name.removeprefix("JOB_STATE_").lower()
        failed = state in ("failed", "expired", "partially_succeeded")
        message = f"tuning job {state}" + (f": {job.error.message}" if job.error and failed else "")
        events.append(
            JobEvent(
                id=f"ended:{state}",
                created_at=job.end_time,
                level="error" if failed else "info",
                message=message,
            )
        )
    return events
