"""Amazon Bedrock's wire shapes, without any SDK: the job state table, the name patterns Bedrock
accepts, its metrics CSVs and the Converse message shape.

>>> job_status("InProgress", {"validationDetails": {"status": "InProgress"}}).value
'validating'
>>> slug("my bot/日本_v2")
'my-bot-v2'
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from typing import Any

from finetune_hub.status import JobStatus, StateMap

_S = JobStatus
BEDROCK_STATES = {
    "InProgress": _S.RUNNING,
    "Completed": _S.SUCCEEDED,
    "Failed": _S.FAILED,
    "Stopping": _S.CANCELLING,
    "Stopped": _S.CANCELLED,
}
STATE_MAP = StateMap("bedrock", BEDROCK_STATES)

ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
S3_URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.*)$")
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")
MODEL_NAME_RE = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")
TOKEN_RE = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$")

#: finetune_hub's method -> Bedrock's customizationType (a method missing here is refused by
#: `BedrockBackend.check` unless options['customization_type'] names one)
CUSTOMIZATION_TYPES = {
    "sft": "FINE_TUNING",
    "continued-pretraining": "CONTINUED_PRE_TRAINING",
    "distillation": "DISTILLATION",
}
#: what `list_foundation_models(byCustomizationType=...)` takes
TUNABLE_TYPES = ("FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION")

_PHASES = (
    ("validationDetails", "validation"),
    ("dataProcessingDetails", "data processing"),
    ("trainingDetails", "training"),
)
_ENDED = ("Completed", "Failed", "Stopped")


def job_status(status: str | None, details: dict[str, Any] | None) -> JobStatus:
    """Bedrock's `status` + `statusDetails` -> `JobStatus`: `InProgress` is told apart into
    validating, queued (validated, training not started) and running.

    >>> job_status("Stopping", None).value
    'cancelling'
    """
    if status != "InProgress":
        return STATE_MAP(status)
    details = details or {}

    def sub(key: str) -> str | None:
        return (details.get(key) or {}).get("status")

    if sub("validationDetails") == "InProgress":
        return JobStatus.VALIDATING
    if sub("trainingDetails") in (None, "NotStarted") and details:
        return JobStatus.QUEUED
    return JobStatus.RUNNING


def phase_events(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One event (as `JobEvent` fields) per sub-phase state a job reports now, then one for its
    end: Bedrock keeps no event log. Ids are `<phase>:<status>`, stable across polls."""
    found: list[dict[str, Any]] = []
    base_time = parse_time(job.get("creationTime")) or dt.datetime.now(dt.UTC)
    for key, label in _PHASES:
        detail = (job.get("statusDetails") or {}).get(key) or {}
        state = detail.get("status")
        if state and state != "NotStarted":
            found.append(
                {
                    "id": f"{key}:{state}",
                    "created_at": parse_time(detail.get("lastModifiedTime")) or base_time,
                    "level": "error" if state == "Failed" else "info",
                    "message": f"{label}: {state}",
                    "type": "status",
                }
            )
    status = job.get("status")
    if status in _ENDED:
        when = parse_time(job.get("endTime")) or parse_time(job.get("lastModifiedTime"))
        failed = status == "Failed"
        found.append(
            {
                "id": f"job:{status}",
                "created_at": when or base_time,
                "level": "error" if failed else "info",
                "message": f"job {status}" + (f": {job.get('failureMessage')}" if failed else ""),
                "type": "status",
            }
        )
    return found


def merge_metrics_csv(
    points: dict[int, dict[str, Any]], text: str, *, validation: bool = False
) -> None:
    """Add one Bedrock metrics CSV (step_number, epoch_number, training_loss / validation_loss,
    perplexity) into `points` keyed by step.

    >>> points = {}
    >>> merge_metrics_csv(points, "step_number,epoch_number,training_loss\\n0,0,1.5\\n")
    >>> points[0]["train_loss"]
    1.5
    """
    for row in csv.DictReader(io.StringIO(text)):
        values = {k.strip(): v.strip() for k, v in row.items() if k and v not in (None, "")}
        if "step_number" not in values:
            continue
        step = int(float(values["step_number"]))
        point = points.setdefault(step, {"step": step, "extra": {}})
        if "epoch_number" in values:
            point["epoch"] = float(values["epoch_number"])
        for column, value in values.items():
            if column in ("step_number", "epoch_number"):
                continue
            try:
                number = float(value)
            except ValueError:
                continue
            if column == "training_loss":
                point["train_loss"] = number
            elif column == "validation_loss":
                point["valid_loss"] = number
            elif validation and not column.startswith("validation"):
                point["extra"][f"validation_{column}"] = number
            else:
                point["extra"][column] = number


_INFERENCE_CONFIG = (
    ("max_tokens", "maxTokens"),
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("stop", "stopSequences"),
)


def to_converse(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """OpenAI-style messages -> (Converse `system`, Converse `messages`); consecutive turns of one
    role are merged (Converse wants user/assistant alternation).

    >>> to_converse([{"role": "system", "content": "s"}, {"role": "user", "content": "a"}])
    ([{'text': 's'}], [{'role': 'user', 'content': [{'text': 'a'}]}])
    """
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            parts = [{"text": content}]
        else:
            parts = [
                {"text": p.get("text", "")}
                for p in content or []
                if isinstance(p, dict) and "text" in p
            ]
        if m.get("role") in ("system", "developer"):
            system.extend(parts)
            continue
        role = "assistant" if m.get("role") == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(parts)
        else:
            turns.append({"role": role, "content": parts})
    return system, turns


def converse_args(model_id: str, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The arguments of one `bedrock-runtime` Converse call (`max_tokens`, `temperature`,
    `top_p`, `stop` become its `inferenceConfig`; other keywords are dropped).

    >>> converse_args("m", [{"role": "user", "content": "hi"}], max_tokens=5)["inferenceConfig"]
    {'maxTokens': 5}
    """
    system, turns = to_converse(messages)
    args: dict[str, Any] = {"modelId": model_id, "messages": turns}
    if system:
        args["system"] = system
    config = {
        theirs: kwargs[ours] for ours, theirs in _INFERENCE_CONFIG if kwargs.get(ours) is not None
    }
    if config:
        args["inferenceConfig"] = config
    return args


def converse_text(reply: dict[str, Any]) -> str:
    """The text of a Converse reply."""
    content = reply.get("output", {}).get("message", {}).get("content", [])
    return "".join(part.get("text", "") for part in content)


def slug(text: str) -> str:
    """Letters, digits and single hyphens, starting and ending with a letter or digit (what
    Bedrock's name and token patterns all accept)."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9]", "-", text)).strip("-") or "x"


def request_token(*parts: str) -> str:
    """A `clientRequestToken` for a request described by `parts`: `fh-<first part>-<digest>`,
    so the same request repeated carries the same token and a different one never does."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return slug(f"fh-{parts[0]}")[:200] + f"-{digest}"


def file_digest(path: str) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def jsonable(value: Any) -> Any:
    """A boto3 response as plain JSON data (datetimes as ISO strings, no ResponseMetadata)."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "ResponseMetadata"}
    return json.loads(
        json.dumps(
            value,
            default=lambda v: v.isoformat() if isinstance(v, dt.datetime | dt.date) else str(v),
        )
    )


def parse_time(value: Any) -> dt.datetime | None:
    """A datetime from boto3's datetime or an ISO string (UTC when no zone is given)."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
