"""OpenAI fine-tuning through the official `openai` SDK (Azure OpenAI reuses it over its own
connection: see azure_openai.py).

Connection: options `api_key`, `base_url`, `organization`, `project`, `timeout`, else the SDK's
environment variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...). SDK retries are off: retries
go through finetune_hub's one policy, so an idempotent submit can check before each attempt.
Job options: `grader` (reinforcement fine-tuning), `file_poll_interval`.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import openai
from pydantic import SecretStr

from finetune_hub.backoff import Backoff, poll
from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue
from finetune_hub.providers.base import (
    Capability,
    Connection,
    DataRef,
    PreparedJob,
    ProviderJob,
    ProviderOptions,
    TuningBackend,
)
from finetune_hub.rules import resolve
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint, StateMap

JOB_ID_KEY = "finetune_hub_job_id"
_METHOD_TYPES = {"sft": "supervised", "dpo": "dpo", "rft": "reinforcement"}
_METHOD_NAMES = {v: k for k, v in _METHOD_TYPES.items()}
_S = JobStatus
OPENAI_STATES = {
    "validating_files": _S.VALIDATING,
    "queued": _S.QUEUED,
    "pending": _S.QUEUED,
    "running": _S.RUNNING,
    "paused": _S.PAUSED,
    "succeeded": _S.SUCCEEDED,
    "failed": _S.FAILED,
    "cancelled": _S.CANCELLED,
}


class OpenAIOptions(ProviderOptions):
    """Options of the `openai` provider (unknown keys are refused)."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    grader: dict[str, Any] | None = None  # reinforcement fine-tuning
    file_poll_interval: float = 1.0


class OpenAIConnection(Connection):
    """The `openai.OpenAI` client (made on first use) and how its errors read."""

    provider = "openai"
    Options = OpenAIOptions
    api_key_env = "OPENAI_API_KEY"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.call("connect", self.make_client)
        return self._client

    def make_client(self) -> Any:
        o = self.options
        return openai.OpenAI(
            api_key=o.api_key.get_secret_value() if o.api_key else None,
            base_url=o.base_url,
            organization=o.organization,
            project=o.project,
            timeout=o.timeout,
            max_retries=0,
        )

    def credentials_source(self) -> dict[str, str]:
        return {"api_key": "explicit" if self.options.api_key else f"env:{self.api_key_env}"}

    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        if isinstance(exc, openai.APIStatusError):
            return _status_error(self.provider, operation, exc)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(self.provider, operation, "the request timed out")
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(self.provider, operation, f"connection failed: {exc}")
        if isinstance(exc, openai.OpenAIError):
            hint = f" (set {self.api_key_env} or pass options={{'api_key': ...}})"
            return ProviderError(self.provider, operation, f"{exc}{hint}", retryable=False)
        return None


class OpenAIBackend(TuningBackend):
    """OpenAI: files (or the Uploads API for big files), fine-tuning jobs, events, metrics, chat."""

    name = "openai"
    display_name = "OpenAI"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.METRICS,
            Capability.CHECKPOINTS,
            Capability.CHAT,
            Capability.DELETE_MODEL,
            Capability.LIST_JOBS,
        }
    )
    state_map = StateMap("openai", OPENAI_STATES)
    connection_class = OpenAIConnection
    serving_note = "a tuned model answers through the chat API as it is: call model.chat(...)"

    @property
    def client(self) -> Any:
        return self.connection.client

    def preflight(self, job: PreparedJob) -> list[Issue]:
        """The key valid and the model there for it, before any upload (openai_preflight.py)."""
        from finetune_hub.providers.openai_preflight import preflight

        return preflight(self, job)

    # -- files --------------------------------------------------------------------------------------
    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        size = os.path.getsize(path)
        name = os.path.basename(path)
        if size <= _files_api_limit(self.name):
            with open(path, "rb") as f:
                created = self.call(
                    "upload",
                    lambda: self.client.files.create(file=(name, f), purpose="fine-tune"),
                )
        else:
            upload = self.call(
                "upload",
                lambda: self.client.uploads.upload_file_chunked(
                    file=path, filename=name, mime_type="application/jsonl", purpose="fine-tune"
                ),
            )
            created = upload.file
        file_id = self._wait_processed(created)
        return DataRef(purpose=purpose, id=file_id, path=str(path), bytes=size)

    def _wait_processed(self, file: Any, timeout: float = 600.0) -> str:
        def fetch() -> Any:
            return self.call("upload", lambda: self.client.files.retrieve(file.id))

        def too_long(last: Any) -> ProviderError:
            return ProviderError(
                self.name, "upload", f"file {file.id} still {last.status} after {timeout:g} s"
            )

        if file.status not in ("processed", "error"):
            interval = self.options.file_poll_interval
            file = poll(
                fetch,
                lambda f: f.status in ("processed", "error"),
                backoff=Backoff(interval, max(interval, 10.0)),
                timeout=timeout,
                on_timeout=too_long,
            )
        if file.status == "error":
            raise ProviderError(
                self.name,
                "upload",
                f"file {file.id} was rejected: {file.status_details}",
                retryable=False,
            )
        return file.id

    # -- jobs ---------------------------------------------------------------------------------------
    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        values = dict(job.hyperparameters)
        seed = values.pop("seed", None)
        method_type = _METHOD_TYPES.get(job.method, job.method)
        body: dict[str, Any] = {"hyperparameters": values}
        if method_type == "reinforcement" and self.options.grader:
            body["grader"] = self.options.grader
        kwargs: dict[str, Any] = {
            "model": job.model_id,
            "training_file": refs["training"].id,
            "method": {"type": method_type, method_type: body},
            "metadata": {JOB_ID_KEY: job.job_id},
        }
        if "validation" in refs:
            kwargs["validation_file"] = refs["validation"].id
        if job.suffix:
            kwargs["suffix"] = job.suffix
        if seed is not None:
            kwargs["seed"] = seed
        kwargs.update(self.extra_create_args(job))
        created = self.call("create", lambda: self.client.fine_tuning.jobs.create(**kwargs))
        return self._to_job(created)

    def extra_create_args(self, job: PreparedJob) -> dict[str, Any]:
        """Arguments a variant of this API adds to the create call (Azure's training tier)."""
        return {}

    def find(self, job_id: str) -> ProviderJob | None:
        page = self.call(
            "find",
            lambda: self.client.fine_tuning.jobs.list(limit=20, metadata={JOB_ID_KEY: job_id}),
        )
        for found in page.data:
            if (found.metadata or {}).get(JOB_ID_KEY) == job_id:
                return self._to_job(found)
        return None

    def get(self, provider_job_id: str) -> ProviderJob:
        job = self.call("get", lambda: self.client.fine_tuning.jobs.retrieve(provider_job_id))
        return self._to_job(job)

    def cancel(self, provider_job_id: str) -> None:
        self.call("cancel", lambda: self.client.fine_tuning.jobs.cancel(provider_job_id))

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """One page of `GET /fine_tuning/jobs` (newest first); the next cursor is the last id."""
        kwargs: dict[str, Any] = {"limit": limit}
        if after is not None:
            kwargs["after"] = after
        page = self.call("list_jobs", lambda: self.client.fine_tuning.jobs.list(**kwargs))
        jobs = [self._to_job(j) for j in page.data]
        more = bool(getattr(page, "has_more", False)) and bool(jobs)
        return jobs, (jobs[-1].id if more else None)

    def _to_job(self, job: Any) -> ProviderJob:
        error = getattr(job, "error", None)
        method = getattr(job, "method", None)
        method_type = getattr(method, "type", None) if method is not None else None
        return ProviderJob(
            id=job.id,
            status=self.state_map(job.status),
            raw_status=job.status,
            fine_tuned_model=job.fine_tuned_model,
            error=error.message if error and error.message else None,
            error_code=error.code if error else None,
            trained_tokens=job.trained_tokens,
            raw=job.model_dump(mode="json"),
            created_at=job.created_at,
            finished_at=job.finished_at,
            base_model=job.model,
            method=_METHOD_NAMES.get(method_type, method_type),
            local_job_id=(job.metadata or {}).get(JOB_ID_KEY),
        )

    # -- events and metrics -------------------------------------------------------------------------
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        """New events since `after`, oldest first (the API pages newest first)."""

        def newest_first() -> list[JobEvent]:
            found: list[JobEvent] = []
            pager = self.client.fine_tuning.jobs.list_events(provider_job_id, limit=100)
            for ev in pager:  # pages lazily; a page fetch error surfaces here
                if ev.id == after:
                    break
                found.append(
                    JobEvent(
                        id=ev.id,
                        created_at=ev.created_at,
                        level={"warn": "warning"}.get(ev.level, ev.level),
                        message=ev.message,
                        type=getattr(ev, "type", None),
                        data=getattr(ev, "data", None) or None,
                    )
                )
            return found

        return self.call("events", newest_first)[::-1]

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        """Per-step metrics from the job's result file (CSV, read by header name), else from
        metrics events while the job runs."""
        job = self.call("metrics", lambda: self.client.fine_tuning.jobs.retrieve(provider_job_id))
        if job.result_files:
            content = self.call("metrics", lambda: self.client.files.content(job.result_files[0]))
            return parse_metrics_csv(content.text)
        points = [e for e in self.events(provider_job_id) if e.type == "metrics" and e.data]
        return [_metric_point(e.data) for e in points if "step" in e.data]

    def checkpoints(self, provider_job_id: str) -> list[Checkpoint]:
        def listed() -> list[Checkpoint]:
            page = self.client.fine_tuning.jobs.checkpoints.list(provider_job_id, limit=100)
            return [
                Checkpoint(
                    id=c.id,
                    step=c.step_number,
                    model=c.fine_tuned_model_checkpoint,
                    created_at=c.created_at,
                    metrics={
                        k: v
                        for k, v in (c.metrics.model_dump() if c.metrics else {}).items()
                        if isinstance(v, int | float)
                    },
                )
                for c in page
            ]

        return sorted(self.call("checkpoints", listed), key=lambda c: c.step)

    # -- using the model ----------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        reply = self.call(
            "chat",
            lambda: self.client.chat.completions.create(
                model=model, messages=messages, **chat_args(kwargs)
            ),
        )
        return reply.choices[0].message.content or ""

    def delete_model(self, model: str) -> None:
        """Delete the tuned model; one already gone (404) is not an error, so a delete retried
        after its answer was lost succeeds."""
        try:
            self.call("delete_model", lambda: self.client.models.delete(model))
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    def tunable_models(self) -> list[str] | None:
        """None: OpenAI's public API has no call that lists what can be fine-tuned (`GET /models`
        says nothing about fine-tuning), so `finetune-hub rules check --live` says so.

        >>> OpenAIBackend.tunable_models(None) is None  # doctest: +SKIP
        True
        """
        return None


# -- helpers ----------------------------------------------------------------------------------------
_CHAT_ARGS = {"temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "n"}


def chat_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The chat-completion arguments finetune_hub passes through (others are dropped)."""
    return {k: v for k, v in kwargs.items() if k in _CHAT_ARGS}


def _status_error(provider: str, operation: str, exc: Any) -> ProviderError:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    message = (err.get("message") if isinstance(err, dict) else None) or str(exc)
    code = err.get("code") if isinstance(err, dict) else None
    headers = exc.response.headers
    retry_after = None
    if "retry-after-ms" in headers:
        retry_after = float(headers["retry-after-ms"]) / 1000
    elif "retry-after" in headers:
        try:
            retry_after = float(headers["retry-after"])
        except ValueError:
            retry_after = None
    return ProviderError(
        provider,
        operation,
        message,
        status_code=exc.status_code,
        request_id=headers.get("x-request-id") or headers.get("apim-request-id"),
        code=str(code) if code else None,
        retry_after=retry_after,
    )


def parse_metrics_csv(text: str) -> list[MetricPoint]:
    """Read OpenAI's / Azure's per-step result CSV by header name (column sets differ)."""
    points = []
    for row in csv.DictReader(io.StringIO(text)):
        values = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        if "step" in values:
            points.append(_metric_point(values))
    return points


_ALIASES = {
    "train_loss": ("train_loss",),
    "valid_loss": ("valid_loss", "validation_loss"),
    "train_accuracy": ("train_accuracy", "train_mean_token_accuracy"),
    "valid_accuracy": (
        "valid_accuracy",
        "valid_mean_token_accuracy",
        "validation_mean_token_accuracy",
    ),
}


def _metric_point(values: dict[str, Any]) -> MetricPoint:
    fields: dict[str, Any] = {"step": int(float(values["step"]))}
    used = {"step"}
    for name, keys in _ALIASES.items():
        for key in keys:
            if key in values:
                fields[name] = float(values[key])
                used.add(key)
                break
    if "epoch" in values:
        fields["epoch"] = float(values["epoch"])
        used.add("epoch")
    extra = {}
    for key, value in values.items():
        if key not in used:
            try:
                extra[key] = float(value)
            except (TypeError, ValueError):
                continue
    return MetricPoint(**fields, extra=extra)


def _files_api_limit(provider: str) -> int:
    rules, _ = resolve(provider, "__generic__", "sft")
    return rules.max_file_bytes or 512 * 1024 * 1024
