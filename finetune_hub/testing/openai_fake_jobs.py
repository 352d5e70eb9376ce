"""The fine-tuning job state machine of the OpenAI fake, driven by the fake's clock.

validating_files -> queued -> running -> succeeded (or failed / cancelled / paused). A job moves
lazily: whenever the fake looks at it, it replays every transition whose time has come, emitting
the events, metrics, checkpoints and result file a real job would have produced by then.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .openai_fake_wire import AZURE_SURFACES

if TYPE_CHECKING:
    from .openai_fake import FakeOpenAI

ACTIVE = ("validating_files", "queued", "running")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STATUSES = frozenset({*ACTIVE, *TERMINAL, "paused"})
DEFAULT_DURATIONS = {"validating_files": 5.0, "queued": 10.0, "running": 60.0}
LEGACY_COMPLETION_MODELS = frozenset({"babbage-002", "davinci-002"})
RESULT_CSV_HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"


@dataclass
class FineTuneJob:
    """The fake's record of one job; `render()` turns it into the wire object."""

    id: str
    family: str  # "openai" or "azure": the surface that created it names its model
    model: str
    training_file: str
    validation_file: str | None
    method_type: str
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    integrations: list[Any] | None
    created_at: float
    phase_started: float
    status: str = "validating_files"
    paused: tuple[str, float] | None = None  # (status before the pause, time spent in it)
    fail_with: dict[str, Any] | None = None  # applied at the next transition
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    trained_tokens: int | None = None
    result_files: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    n_examples: int = 0
    training_bytes: int = 0
    steps_per_epoch: int = 1
    total_steps: int = 1
    last_reported_step: int = 0
    estimated_finish: int | None = None

    def render(self, surface: str = "openai") -> dict[str, Any]:
        """The `fine_tuning.job` object as `surface` shows it (Azure says "pending" for queued)."""
        status = self.status
        if status == "queued" and surface in AZURE_SURFACES:
            status = "pending"
        hp = dict(self.hyperparameters)
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": int(self.created_at),
            "finished_at": self.finished_at,
            "fine_tuned_model": self.fine_tuned_model,
            "organization_id": "org-fake",
            "result_files": list(self.result_files),
            "status": status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": {k: hp.get(k, "auto") for k in _BASIC_HP},
            "trained_tokens": self.trained_tokens,
            "error": self.error,
            "user_provided_suffix": self.suffix,
            "seed": self.seed,
            "estimated_finish": self.estimated_finish if self.status == "running" else None,
            "integrations": self.integrations,
            "metadata": self.metadata,
            "method": {"type": self.method_type, self.method_type: {"hyperparameters": hp}},
        }


_BASIC_HP = ("n_epochs", "batch_size", "learning_rate_multiplier")


def base_model(model: str) -> str:
    """`ft:gpt-4o-mini-2024-07-18:org::abc` and `gpt-4o-mini-2024-07-18.ft-123` -> the base."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model.split(".ft-")[0]


def sync(fake: FakeOpenAI, job: FineTuneJob) -> None:
    """Replay every transition of `job` that is due by the fake's current time."""
    now = fake.clock.now()
    while job.status in ACTIVE:
        end = job.phase_started + fake.durations[job.status]
        if job.status == "running":
            job.estimated_finish = int(end)
            _report_steps(job, until=min(now, end), duration=fake.durations["running"])
        if now < end:
            return
        _transition(fake, job, at=end)


def _transition(fake: FakeOpenAI, job: FineTuneJob, at: float) -> None:
    if job.fail_with is not None:
        fail(fake, job, at, **job.fail_with)
    elif job.status == "validating_files":
        problem = _validate_training_data(fake, job)
        if problem:
            fail(fake, job, at, **problem)
            return
        _resolve_hyperparameters(job)
        job.status, job.phase_started = "queued", at
        add_event(fake, job, at, "Files validated, moving job to queued state")
    elif job.status == "queued":
        job.status, job.phase_started = "running", at
        add_event(fake, job, at, "Fine-tuning job started")
    else:
        succeed(fake, job, at)


def add_event(
    fake: FakeOpenAI,
    job: FineTuneJob,
    at: float,
    message: str,
    *,
    level: str = "info",
    data: dict[str, Any] | None = None,
) -> None:
    job.events.append(
        {
            "object": "fine_tuning.job.event",
            "id": f"ftevent-{fake.ids.alnum(24)}",
            "created_at": int(at),
            "level": level,
            "message": message,
            "data": data or {},
            "type": "metrics" if data else "message",
        }
    )


def fail(
    fake: FakeOpenAI,
    job: FineTuneJob,
    at: float,
    code: str,
    message: str,
    param: str | None = None,
) -> None:
    job.status, job.fail_with, job.paused = "failed", None, None
    job.error = {"code": code, "message": message, "param": param}
    job.finished_at = int(at)
    add_event(fake, job, at, message, level="error")


def cancel(fake: FakeOpenAI, job: FineTuneJob, at: float) -> None:
    job.status, job.paused = "cancelled", None
    add_event(fake, job, at, "Fine-tuning job cancelled")


def pause(fake: FakeOpenAI, job: FineTuneJob, at: float) -> None:
    job.paused = (job.status, at - job.phase_started)
    job.status = "paused"
    add_event(fake, job, at, "Fine-tuning job paused")


def resume(fake: FakeOpenAI, job: FineTuneJob, at: float) -> None:
    status, spent = job.paused or ("running", 0.0)
    job.status, job.phase_started, job.paused = status, at - spent, None
    add_event(fake, job, at, "Fine-tuning job resumed")


def set_state(
    fake: FakeOpenAI, job: FineTuneJob, status: str, at: float, allow_unknown: bool = False
) -> None:
    """Force `status` now (the test control behind `FakeOpenAI.set_state`).

    With `allow_unknown=True` any string is reported as-is and the job stays in it, the way a
    provider that adds a new state would look to a client.
    """
    if status not in STATUSES:
        if not allow_unknown:
            raise ValueError(f"unknown job status {status!r}; expected one of {sorted(STATUSES)}")
        job.status = status
        return
    if status == "succeeded":
        _resolve_hyperparameters(job)
        succeed(fake, job, at)
    elif status == "failed":
        fail(fake, job, at, **(job.fail_with or _DEFAULT_FAILURE))
    elif status == "cancelled":
        cancel(fake, job, at)
    elif status == "paused":
        pause(fake, job, at)
    else:
        if status != "validating_files":
            _resolve_hyperparameters(job)
        job.status, job.phase_started, job.paused = status, at, None
        job.error = job.fine_tuned_model = job.finished_at = job.trained_tokens = None
        job.last_reported_step = 0


_DEFAULT_FAILURE = {
    "code": "server_error",
    "message": "The job failed due to an internal error.",
    "param": None,
}


def succeed(fake: FakeOpenAI, job: FineTuneJob, at: float) -> None:
    _report_steps(job, until=math.inf, duration=1.0)
    base = base_model(job.model)
    if job.family == "azure":
        name = f"{base}.ft-{job.id.removeprefix('ftjob-')}"
        name += f"-{job.suffix}" if job.suffix else ""
    else:
        name = f"ft:{base}:{fake.organization}:{job.suffix or ''}:{fake.ids.alnum(8)}"
    epochs = int(job.hyperparameters.get("n_epochs", 1))
    job.status, job.paused, job.fine_tuned_model = "succeeded", None, name
    job.finished_at = int(at)
    job.trained_tokens = max(1, job.training_bytes // 4) * epochs
    fake.fine_tuned_models[name] = job.id
    for epoch in range(max(1, epochs - 2), epochs + 1):
        step = epoch * job.steps_per_epoch
        checkpoint_model = f"{name}:ckpt-step-{step}"
        ckpt_id = f"ftchkpt-{fake.ids.hex(32)}" if job.family == "azure" else None
        job.checkpoints.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": ckpt_id or f"ftckpt_{fake.ids.alnum(24)}",
                "created_at": int(at),
                "fine_tuned_model_checkpoint": checkpoint_model,
                "fine_tuning_job_id": job.id,
                "step_number": step,
                "metrics": _checkpoint_metrics(job, step),
            }
        )
        fake.fine_tuned_models[checkpoint_model] = job.id
        add_event(fake, job, at, f"Checkpoint created at step {step}")
    csv = "\n".join([RESULT_CSV_HEADER, *(_csv_row(job, s) for s in _steps(job))]) + "\n"
    result = fake.add_file(
        csv.encode(), filename="step_metrics.csv", purpose="fine-tune-results", surface=job.family
    )
    job.result_files = [result]
    add_event(fake, job, at, f"New fine-tuned model created: {name}")
    add_event(fake, job, at, "The job has successfully completed")


def _steps(job: FineTuneJob) -> range:
    return range(1, job.total_steps + 1)


def _report_steps(job: FineTuneJob, until: float, duration: float) -> None:
    """Emit a metrics event for every sampled step whose time has come (about 10 per job)."""
    every = max(1, math.ceil(job.total_steps / 10))
    for step in range(job.last_reported_step + 1, job.total_steps + 1):
        if job.phase_started + duration * step / job.total_steps > until:
            break
        job.last_reported_step = step
        if step % every and step != job.total_steps:
            continue
        m = _step_metrics(job, step)
        at = min(until, job.phase_started + duration * step / job.total_steps)
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{job.id[-6:]}-{step:06d}",
                "created_at": int(at),
                "level": "info",
                "message": f"Step {step}/{job.total_steps}: training loss={m['train_loss']:.2f}",
                "data": {
                    "step": step,
                    "total_steps": job.total_steps,
                    "train_loss": m["train_loss"],
                    "train_mean_token_accuracy": m["train_mean_token_accuracy"],
                },
                "type": "metrics",
            }
        )


def _step_metrics(job: FineTuneJob, step: int) -> dict[str, Any]:
    """Deterministic, plausible metrics: the loss decays with a little seeded noise."""
    noise = random.Random(f"{job.id}:{step}:{job.seed}").uniform(-0.04, 0.04)
    train_loss = round(0.15 + 1.85 * math.exp(-4 * step / job.total_steps) + noise, 4)
    metrics: dict[str, Any] = {
        "step": step,
        "train_loss": train_loss,
        "train_mean_token_accuracy": round(min(0.99, max(0.0, 1 - train_loss / 2.2)), 4),
        "valid_loss": None,
        "valid_mean_token_accuracy": None,
    }
    if job.validation_file and step % job.steps_per_epoch == 0:
        metrics["valid_loss"] = round(train_loss * 1.08, 4)
        metrics["valid_mean_token_accuracy"] = round(max(0.0, 1 - train_loss * 1.08 / 2.2), 4)
    return metrics


def _checkpoint_metrics(job: FineTuneJob, step: int) -> dict[str, Any]:
    m = _step_metrics(job, step)
    m["full_valid_loss"] = m["valid_loss"]
    m["full_valid_mean_token_accuracy"] = m["valid_mean_token_accuracy"]
    return m


def _csv_row(job: FineTuneJob, step: int) -> str:
    m = _step_metrics(job, step)
    cells = [
        m["train_loss"],
        m["train_mean_token_accuracy"],
        m["valid_loss"],
        m["valid_mean_token_accuracy"],
    ]
    return ",".join([str(step), *("" if c is None else str(c) for c in cells)])


def _resolve_hyperparameters(job: FineTuneJob) -> None:
    """Replace "auto" the way the service does once it has read the data (cookbook heuristic)."""
    hp, n = job.hyperparameters, max(1, job.n_examples)
    if hp.get("n_epochs", "auto") == "auto":
        epochs = 3
        if n * 3 < 100:
            epochs = min(25, 100 // n)
        elif n * 3 > 25_000:
            epochs = max(1, 25_000 // n)
        hp["n_epochs"] = epochs
    if hp.get("batch_size", "auto") == "auto":
        hp["batch_size"] = max(1, min(256, n // 500 or 1))
    if hp.get("learning_rate_multiplier", "auto") == "auto":
        hp["learning_rate_multiplier"] = 1.8
    if job.method_type == "dpo" and hp.get("beta", "auto") == "auto":
        hp["beta"] = 0.1
    job.steps_per_epoch = max(1, math.ceil(n / int(hp["batch_size"])))
    job.total_steps = job.steps_per_epoch * int(hp["n_epochs"])


def _validate_training_data(fake: FakeOpenAI, job: FineTuneJob) -> dict[str, Any] | None:
    """What the service's validation step finds wrong with the training file, if anything."""
    stored = fake.files.get(job.training_file)
    if stored is None:
        return {
            "code": "invalid_training_file",
            "message": f"Training file {job.training_file} was deleted before validation.",
            "param": "training_file",
        }
    key = "messages"
    if job.method_type == "dpo":
        key = "preferred_output"
    elif base_model(job.model) in LEGACY_COMPLETION_MODELS:
        key = "prompt"
    text = stored.data.decode("utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        record = json.loads(line)  # the file is "processed", so every line is a JSON object
        if key not in record:
            return {
                "code": "invalid_training_file",
                "message": f"Training file line {number}: the example has no '{key}' field.",
                "param": "training_file",
            }
    if len(lines) < fake.min_examples:
        return {
            "code": "invalid_n_examples",
            "message": f"Training file has {len(lines)} example(s), but must have at least "
            f"{fake.min_examples} examples",
            "param": "training_file",
        }
    return None
