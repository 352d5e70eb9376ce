"""Fine-tuning, chat and models routes of the OpenAI fake."""

from __future__ import annotations

import json
from typing import Any

from . import openai_fake_jobs as jobs
from .fake_http import FakeResponse
from .openai_fake_arm import serving_deployment
from .openai_fake_jobs import FineTuneJob
from .openai_fake_wire import Ctx, WireError, cursor_page

METHOD_TYPES = ("supervised", "dpo", "reinforcement")
#: (low, high, low is exclusive) per hyperparameter; "auto" is always accepted.
HYPERPARAMETER_RANGES: dict[str, tuple[float, float, bool]] = {
    "n_epochs": (1, 50, False),
    "batch_size": (1, 256, False),
    "learning_rate_multiplier": (0, 1e9, True),
    "beta": (0, 2, True),
    "compute_multiplier": (0.00001, 10, True),
    "eval_interval": (1, 1e9, False),
    "eval_samples": (1, 1e9, False),
}


# --- fine-tuning jobs -------------------------------------------------------------------


def _job(ctx: Ctx, job_id: str) -> FineTuneJob:
    job = ctx.fake.jobs.get(job_id)
    if job is None:
        raise WireError.openai(
            404, f"Could not find fine-tuning job: {job_id}", param="fine_tuning_job_id"
        )
    jobs.sync(ctx.fake, job)
    return job


def create_job(ctx: Ctx) -> FakeResponse:
    fake, body = ctx.fake, ctx.body()
    model = body.get("model")
    if not isinstance(model, str) or not fake.is_tunable(model):
        raise WireError.openai(
            400,
            f"Model {model} is not available for fine-tuning or does not exist.",
            param="model",
            code="model_not_available",
        )
    training = _usable_file(ctx, body.get("training_file"), "training_file")
    validation = None
    if body.get("validation_file"):
        validation = _usable_file(ctx, body["validation_file"], "validation_file")
    suffix = _check_suffix(ctx, body.get("suffix"))
    metadata = _check_metadata(body.get("metadata"))
    method_type, hyperparameters = _check_method(body)
    seed = body.get("seed")
    if seed is None:
        seed = int(fake.ids.hex(7), 16)
    elif not isinstance(seed, int) or not 0 <= seed <= 2_147_483_647:
        raise WireError.openai(400, "'seed' must be an integer in [0, 2147483647].", param="seed")
    now = fake.clock.now()
    family = "azure" if ctx.azure else "openai"
    job = FineTuneJob(
        id=f"ftjob-{fake.ids.hex(32) if ctx.azure else fake.ids.alnum(24)}",
        family=family,
        model=model,
        training_file=training.id,
        validation_file=validation.id if validation else None,
        method_type=method_type,
        hyperparameters=hyperparameters,
        suffix=suffix,
        seed=seed,
        metadata=metadata,
        integrations=body.get("integrations"),
        created_at=now,
        phase_started=now,
        n_examples=sum(1 for line in training.data.splitlines() if line.strip()),
        training_bytes=len(training.data),
    )
    job.fail_with, fake.next_job_failure = fake.next_job_failure, None
    fake.jobs[job.id] = job
    jobs.add_event(fake, job, now, f"Created fine-tuning job: {job.id}")
    jobs.add_event(fake, job, now, f"Validating training file: {training.id}")
    if validation:
        jobs.add_event(fake, job, now, f"Validating validation file: {validation.id}")
    return ctx.ok(job.render(ctx.surface))


def _usable_file(ctx: Ctx, file_id: Any, param: str) -> Any:
    code = f"invalid_{param}"
    stored = ctx.fake.files.get(file_id) if isinstance(file_id, str) else None
    if stored is None:
        raise WireError.openai(400, f"invalid {param}: {file_id}", param=param, code=code)
    if stored.purpose != "fine-tune":
        raise WireError.openai(
            400,
            f"File {file_id} has purpose '{stored.purpose}'; fine-tuning needs 'fine-tune'.",
            param=param,
            code=code,
        )
    status = stored.status(ctx.fake.clock.now())
    if status == "uploaded":
        raise WireError.openai(
            400,
            f"File {file_id} is still being processed and is not ready for fine-tuning. "
            "Try again when its status is 'processed'.",
            param=param,
            code="file_not_ready",
        )
    if status == "error":
        raise WireError.openai(
            400, f"File {file_id} failed processing: {stored.problem}", param=param, code=code
        )
    return stored


def _check_suffix(ctx: Ctx, suffix: Any) -> str | None:
    if suffix in (None, ""):
        return None
    limit = 18 if ctx.azure else 64
    problem = None
    if not isinstance(suffix, str) or len(suffix) > limit:
        problem = f"'suffix' must be a string of at most {limit} characters."
    elif ctx.azure and "." in suffix:
        problem = "'suffix' must not contain '.' on Azure OpenAI."
    if problem:
        raise WireError.openai(400, problem, param="suffix", code="invalid_suffix")
    return suffix


def _check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    problem = None
    if not isinstance(metadata, dict):
        problem = "'metadata' must be an object of string keys and values."
    elif len(metadata) > 16:
        problem = f"'metadata' may hold at most 16 pairs (got {len(metadata)})."
    else:
        for key, value in metadata.items():
            if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
                problem = (
                    f"metadata[{key!r}]: keys must be at most 64 characters and values strings "
                    "of at most 512 characters."
                )
                break
    if problem:
        raise WireError.openai(400, problem, param="metadata", code="invalid_metadata")
    return dict(metadata)


def _check_method(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = body.get("method") or {"type": "supervised"}
    method_type = method.get("type") if isinstance(method, dict) else None
    if method_type not in METHOD_TYPES:
        raise WireError.openai(
            400,
            f"'method.type' must be one of {list(METHOD_TYPES)} (got {method_type!r}).",
            param="method.type",
        )
    section = method.get(method_type)
    given = section.get("hyperparameters") if isinstance(section, dict) else None
    if given is None:  # the deprecated top-level field
        given = body.get("hyperparameters") or {}
    if not isinstance(given, dict):
        raise WireError.openai(400, "'hyperparameters' must be an object.", param="method")
    for name, value in given.items():
        if value == "auto" or name not in HYPERPARAMETER_RANGES:
            continue
        low, high, exclusive = HYPERPARAMETER_RANGES[name]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and (low < value if exclusive else low <= value) and value <= high
        if not ok:
            raise WireError.openai(
                400,
                f"Invalid hyperparameter {name}={value!r}: expected 'auto' or a number in "
                f"{'(' if exclusive else '['}{low:g}, {high:g}].",
                param=f"method.{method_type}.hyperparameters.{name}",
                code="invalid_hyperparameters",
            )
    defaults = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    if method_type == "dpo":
        defaults["beta"] = "auto"
    return method_type, {**defaults, **given}


def list_jobs(ctx: Ctx) -> FakeResponse:
    wanted = {k[9:-1]: v for k, v in ctx.query.items() if k.startswith("metadata[")}
    only_null = ctx.query.get("metadata") == "null"
    found = []
    for job in reversed(list(ctx.fake.jobs.values())):
        jobs.sync(ctx.fake, job)
        meta = job.metadata or {}
        if only_null and meta:
            continue
        if all(meta.get(k) == v for k, v in wanted.items()):
            found.append(job.render(ctx.surface))
    return ctx.ok(cursor_page(found, ctx.query))


def get_job(ctx: Ctx, job_id: str) -> FakeResponse:
    if job_id in ctx.fake.jobs and ctx.fake.auto_advance:
        ctx.fake.clock.advance(ctx.fake.auto_advance)
    return ctx.ok(_job(ctx, job_id).render(ctx.surface))


def cancel_job(ctx: Ctx, job_id: str) -> FakeResponse:
    job = _job(ctx, job_id)
    if job.status in jobs.TERMINAL:
        raise WireError.openai(400, f"Job has already completed: {job_id}", param="job_id")
    jobs.cancel(ctx.fake, job, ctx.fake.clock.now())
    return ctx.ok(job.render(ctx.surface))


def pause_job(ctx: Ctx, job_id: str) -> FakeResponse:
    job = _job(ctx, job_id)
    if job.status not in jobs.ACTIVE:
        raise WireError.openai(
            400, f"Job {job_id} is {job.status}; only an active job can be paused.", param="job_id"
        )
    jobs.pause(ctx.fake, job, ctx.fake.clock.now())
    return ctx.ok(job.render(ctx.surface))


def resume_job(ctx: Ctx, job_id: str) -> FakeResponse:
    job = _job(ctx, job_id)
    if job.status != "paused":
        raise WireError.openai(
            400, f"Job {job_id} is {job.status}; only a paused job can be resumed.", param="job_id"
        )
    jobs.resume(ctx.fake, job, ctx.fake.clock.now())
    return ctx.ok(job.render(ctx.surface))


def list_events(ctx: Ctx, job_id: str) -> FakeResponse:
    job = _job(ctx, job_id)
    return ctx.ok(cursor_page(list(reversed(job.events)), ctx.query))


def list_checkpoints(ctx: Ctx, job_id: str) -> FakeResponse:
    job = _job(ctx, job_id)
    return ctx.ok(cursor_page(list(reversed(job.checkpoints)), {"limit": "10", **ctx.query}))


# --- chat ---------------------------------------------------------------------------------


def chat(ctx: Ctx, deployment: str | None = None) -> FakeResponse:
    if deployment is not None and not ctx.azure:
        raise WireError.openai(404, f"Invalid URL (POST /v1{ctx.path})")
    body = ctx.body()
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError.openai(400, "'messages' must be a non-empty list.", param="messages")
    model = body.get("model")
    if ctx.azure:
        model = serving_deployment(ctx, deployment or model)
    elif isinstance(model, str) and model in ctx.fake.retired:
        raise WireError.openai(
            404,
            f"The model `{model}` has been deprecated, learn more here: "
            "https://platform.openai.com/docs/deprecations",
            param="model",
            code="model_not_found",
        )
    elif not isinstance(model, str) or not ctx.fake.is_servable(model):
        raise WireError.openai(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    text = ctx.fake.reply(model, messages)
    prompt_tokens = max(1, len(json.dumps(messages)) // 4)
    completion_tokens = max(1, len(text) // 4)
    ident, created = f"chatcmpl-{ctx.fake.ids.alnum(29)}", ctx.now
    if body.get("stream"):
        return _chat_stream(ident, created, model, text)
    return ctx.ok(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": None,
        }
    )


def _chat_stream(ident: str, created: int, model: str, text: str) -> FakeResponse:
    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        payload = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    body = chunk({"role": "assistant", "content": text}, None) + chunk({}, "stop")
    return FakeResponse(200, body + b"data: [DONE]\n\n", {"content-type": "text/event-stream"})


def default_reply(model: str, messages: list[dict[str, Any]]) -> str:
    """The fake's default chat reply: "Echo: " plus the last user message's text."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return f"Echo: {content}"
    return "Echo: "


# --- models -------------------------------------------------------------------------------


def _model_object(ctx: Ctx, model_id: str) -> dict[str, Any]:
    owner = "system" if model_id in ctx.fake.models else ctx.fake.organization
    return {"id": model_id, "object": "model", "created": ctx.now, "owned_by": owner}


def list_models(ctx: Ctx) -> FakeResponse:
    names = [*sorted(ctx.fake.models - set(ctx.fake.retired)), *ctx.fake.fine_tuned_models]
    data = [_model_object(ctx, n) for n in names]
    return ctx.ok({"object": "list", "data": data, "has_more": False})


def get_model(ctx: Ctx, model_id: str) -> FakeResponse:
    if not ctx.fake.is_servable(model_id):
        raise _model_not_found(model_id)
    return ctx.ok(_model_object(ctx, model_id))


def delete_model(ctx: Ctx, model_id: str) -> FakeResponse:
    fake = ctx.fake
    if model_id in fake.models:
        raise WireError.openai(
            403,
            f"You have insufficient permissions to delete the base model {model_id}.",
            param="model",
            code="insufficient_permissions",
        )
    if model_id not in fake.fine_tuned_models:
        raise _model_not_found(model_id)
    in_use = [d.name for d in fake.deployments.values() if d.model_name == model_id]
    if in_use:
        raise WireError.openai(
            400,
            f"Model {model_id} is deployed ({', '.join(in_use)}); delete the deployment first.",
            param="model",
            code="model_in_use",
        )
    del fake.fine_tuned_models[model_id]
    return ctx.ok({"id": model_id, "object": "model", "deleted": True})


def _model_not_found(model_id: str) -> WireError:
    return WireError.openai(
        404,
        f"The model '{model_id}' does not exist",
        param="model",
        code="model_not_found",
    )


_ID = r"(?P<{}>[^/]+)"
_JOB = rf"/fine_tuning/jobs/{_ID.format('job_id')}"
ROUTES = [
    ("POST", r"/fine_tuning/jobs", create_job),
    ("GET", r"/fine_tuning/jobs", list_jobs),
    ("GET", _JOB, get_job),
    ("POST", rf"{_JOB}/cancel", cancel_job),
    ("POST", rf"{_JOB}/pause", pause_job),
    ("POST", rf"{_JOB}/resume", resume_job),
    ("GET", rf"{_JOB}/events", list_events),
    ("GET", rf"{_JOB}/checkpoints", list_checkpoints),
    ("POST", r"/chat/completions", chat),
    ("POST", rf"/deployments/{_ID.format('deployment')}/chat/completions", chat),
    ("GET", r"/models", list_models),
    ("GET", rf"/models/{_ID.format('model_id')}", get_model),
    ("DELETE", rf"/models/{_ID.format('model_id')}", delete_model),
]
