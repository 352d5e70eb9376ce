"""OpenAI fine-tuning through the official `openai` SDK (and the shared logic Azure OpenAI reuses).

Connection: `options` `api_key`, `base_url`, `organization`, `project`, `timeout`, else the SDK's
environment variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...). SDK retries are off: retries
go through finetune_hub's one policy, so an idempotent submit can check before each attempt.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import openai

from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.providers.base import Capability, DataRef, Provider, ProviderError, ProviderJob
from finetune_hub.rules import resolve
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint, StateMap

if TYPE_CHECKING:
    from finetune_hub.jobs.spec import JobSpec

T = TypeVar("T")
JOB_ID_KEY = "finetune_hub_job_id"
_METHOD_TYPES = {"sft": "supervised", "dpo": "dpo", "rft": "reinforcement"}
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


class OpenAIProvider(Provider):
    """OpenAI: files (or the Uploads API for big files), fine-tuning jobs, events, metrics, chat."""

    name = "openai"
    display_name = "OpenAI"
    capabilities = frozenset({Capability.UPLOAD, Capability.CANCEL, Capability.EVENTS, Capability.METRICS, Capability.CHAT, Capability.DELETE_MODEL})
    state_map = StateMap("openai", OPENAI_STATES)
    api_key_env = "OPENAI_API_KEY"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._client: Any = None
        self.file_poll_interval = float(self.options.get("file_poll_interval", 1.0))

    # -- connection -------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        o = self.options
        try:
            return openai.OpenAI(
                api_key=o.get("api_key"),
                base_url=o.get("base_url"),
                organization=o.get("organization"),
                project=o.get("project"),
                timeout=o.get("timeout", 60.0),
                max_retries=0,
            )
        except openai.OpenAIError as exc:
            raise ProviderError(self.name, "connect", f"{exc} (set {self.api_key_env} or pass options={{'api_key': ...}})", retryable=False) from None

    def credentials_source(self) -> dict[str, str]:
        return {"api_key": "explicit" if "api_key" in self.options else f"env:{self.api_key_env}"}

    def stored_options(self) -> dict[str, Any]:
        return {k: self.options[k] for k in ("base_url", "organization", "project") if k in self.options}

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one SDK call, turning SDK errors into `ProviderError`."""
        try:
            return fn()
        except openai.APIStatusError as exc:
            raise _status_error(self.name, operation, exc) from None
        except openai.APITimeoutError:
            raise ProviderError(self.name, operation, "the request timed out") from None
        except openai.APIConnectionError as exc:
            raise ProviderError(self.name, operation, f"connection failed: {exc}") from None

    # -- files --------------------------------------------------------------------------------------
    def upload(self, path: str, purpose: str) -> DataRef:
        with _plain_jsonl(path) as plain:
            size = os.path.getsize(plain)
            limit = _files_api_limit(self.name)
            if size <= limit:
                with open(plain, "rb") as f:
                    created = self.call("upload", lambda: self.client.files.create(file=(os.path.basename(plain), f), purpose="fine-tune"))
            else:
                upload = self.call(
                    "upload",
                    lambda: self.client.uploads.upload_file_chunked(file=plain, filename=os.path.basename(plain), mime_type="application/jsonl", purpose="fine-tune"),
                )
                created = upload.file
        file_id = self._wait_processed(created)
        return DataRef(purpose=purpose, id=file_id, path=str(path), bytes=size)

    def _wait_processed(self, file: Any, timeout: float = 600.0) -> str:
        waited = 0.0
        while file.status not in ("processed", "error"):
            if waited >= timeout:
                raise ProviderError(self.name, "upload", f"file {file.id} still {file.status} after {timeout:g} s")
            time.sleep(self.file_poll_interval)
            waited += self.file_poll_interval
            file = self.call("upload", lambda f=file: self.client.files.retrieve(f.id))
        if file.status == "error":
            raise ProviderError(self.name, "upload", f"file {file.id} was rejected: {file.status_details}", retryable=False)
        return file.id

    # -- jobs ---------------------------------------------------------------------------------------
    def create(self, spec: JobSpec, refs: dict[str, DataRef], idempotency_key: str) -> ProviderJob:
        rules, _ = resolve(self.name, spec.base_model, spec.method)
        values = dict(check_hyperparameters(spec.hyperparameters, rules).provider_values)
        seed = values.pop("seed", None)
        method_type = _METHOD_TYPES.get(spec.method, spec.method)
        body: dict[str, Any] = {"hyperparameters": values}
        if method_type == "reinforcement" and "grader" in spec.options:
            body["grader"] = spec.options["grader"]
        kwargs: dict[str, Any] = {
            "model": spec.base_model if is_fine_tuned_name(self.name, spec.base_model) else rules.model_id or spec.base_model,
            "training_file": refs["training"].id,
            "method": {"type": method_type, method_type: body},
            "metadata": {JOB_ID_KEY: idempotency_key},
        }
        if "validation" in refs:
            kwargs["validation_file"] = refs["validation"].id
        if spec.suffix:
            kwargs["suffix"] = spec.suffix
        if seed is not None:
            kwargs["seed"] = seed
        kwargs.update(self._extra_create_args(spec))
        job = self.call("create", lambda: self.client.fine_tuning.jobs.create(**kwargs))
        return self._to_job(job)

    def _extra_create_args(self, spec: JobSpec) -> dict[str, Any]:
        return {}

    def find(self, idempotency_key: str) -> ProviderJob | None:
        page = self.call("find", lambda: self.client.fine_tuning.jobs.list(limit=20, metadata={JOB_ID_KEY: idempotency_key}))
        for job in page.data:
            if (job.metadata or {}).get(JOB_ID_KEY) == idempotency_key:
                return self._to_job(job)
        return None

    def get(self, provider_job_id: str) -> ProviderJob:
        return self._to_job(self.call("get", lambda: self.client.fine_tuning.jobs.retrieve(provider_job_id)))

    def cancel(self, provider_job_id: str) -> None:
        self.call("cancel", lambda: self.client.fine_tuning.jobs.cancel(provider_job_id))

    def _to_job(self, job: Any) -> ProviderJob:
        error = getattr(job, "error", None)
        return ProviderJob(
            id=job.id,
            status=self.state_map(job.status),
            raw_status=job.status,
            fine_tuned_model=job.fine_tuned_model,
            error=error.message if error and error.message else None,
            error_code=error.code if error else None,
            trained_tokens=job.trained_tokens,
            raw=job.model_dump(mode="json"),
        )

    # -- events and metrics -------------------------------------------------------------------------
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        """New events since `after`, oldest first (the API pages newest first)."""
        newest_first: list[JobEvent] = []
        pager = self.call("events", lambda: self.client.fine_tuning.jobs.list_events(provider_job_id, limit=100))
        for ev in pager:  # pages lazily; a page fetch error surfaces here
            if ev.id == after:
                break
            newest_first.append(
                JobEvent(
                    id=ev.id,
                    created_at=ev.created_at,
                    level={"warn": "warning"}.get(ev.level, ev.level),
                    message=ev.message,
                    type=getattr(ev, "type", None),
                    data=getattr(ev, "data", None) or None,
                )
            )
        return newest_first[::-1]

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
        page = self.call("checkpoints", lambda: self.client.fine_tuning.jobs.checkpoints.list(provider_job_id, limit=100))
        found = [
            Checkpoint(
                id=c.id,
                step=c.step_number,
                model=c.fine_tuned_model_checkpoint,
                created_at=c.created_at,
                metrics={k: v for k, v in (c.metrics.model_dump() if c.metrics else {}).items() if isinstance(v, int | float)},
            )
            for c in page
        ]
        return sorted(found, key=lambda c: c.step)

    # -- using the model ----------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        kwargs.pop("deployment", None)
        reply = self.call("chat", lambda: self.client.chat.completions.create(model=model, messages=messages, **_chat_args(kwargs)))
        return reply.choices[0].message.content or ""

    def delete_model(self, model: str) -> None:
        self.call("delete_model", lambda: self.client.models.delete(model))


# -- helpers ----------------------------------------------------------------------------------------
_CHAT_ARGS = {"temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "n"}


def _chat_args(kwargs: dict[str, Any]) -> dict[str, Any]:
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
    "valid_accuracy": ("valid_accuracy", "valid_mean_token_accuracy", "validation_mean_token_accuracy"),
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


def is_fine_tuned_name(provider: str, name: str) -> bool:
    """True for a tuned model's name (`ft:...` on OpenAI, `<base>.ft-<id>` on Azure): continued
    training must start from it, not from its base model."""
    from finetune_hub.rules import default_catalog

    pattern = default_catalog().provider_data(provider).get("provider", {}).get("fine_tuned_pattern")
    return bool(pattern and re.match(pattern, name))


def _files_api_limit(provider: str) -> int:
    rules, _ = resolve(provider, "__generic__", "sft")
    return rules.max_file_bytes or 512 * 1024 * 1024


class _plain_jsonl:
    """The path itself, or a temporary decompressed copy of a `.gz` file (the API takes `.jsonl`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp: str | None = None

    def __enter__(self) -> str:
        with open(self.path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        if not gz:
            return self.path
        fd, self.tmp = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "wb") as out, gzip.open(self.path, "rb") as src:
            shutil.copyfileobj(src, out)
        return self.tmp

    def __exit__(self, *exc: Any) -> None:
        if self.tmp:
            os.unlink(self.tmp)
