"""Bedrock helpers shared by `bedrock.py` and `bedrock_deploy.py`: the state table, name patterns,
metrics CSV parsing and botocore error mapping."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from typing import Any

from botocore.exceptions import ClientError

from finetune_hub.providers.base import ProviderError
from finetune_hub.status import JobStatus, StateMap

_S = JobStatus
BEDROCK_STATES = {
    "InProgress": _S.RUNNING,
    "Completed": _S.SUCCEEDED,
    "Failed": _S.FAILED,
    "Stopping": _S.CANCELLING,
    "Stopped": _S.CANCELLED,
}
ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
S3_URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.*)$")
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")
MODEL_NAME_RE = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")
TOKEN_RE = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$")
CUSTOMIZATION_TYPES = {
    "sft": "FINE_TUNING",
    "continued-pretraining": "CONTINUED_PRE_TRAINING",
    "distillation": "DISTILLATION",
}
RETRYABLE_CODES = {
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceUnavailableException",
    "InternalServerException",
    "RequestTimeout",
    "SlowDown",
}
NOT_FOUND_CODES = {"ResourceNotFoundException", "NoSuchKey", "NotFound", "404", "NoSuchBucket"}
_PHASES = (
    ("validationDetails", "validation"),
    ("dataProcessingDetails", "data processing"),
    ("trainingDetails", "training"),
)
_STORED = (
    "region",
    "profile",
    "endpoint_url",
    "role_arn",
    "s3_uri",
    "job_name",
    "custom_model_name",
    "customization_type",
    "teacher_model",
    "vpc_config",
    "kms_key_id",
    "tags",
)

STATE_MAP = StateMap("bedrock", BEDROCK_STATES)


# -- helpers --------------------------------------------------------------------------------------
def job_status(status: str | None, details: dict[str, Any] | None) -> JobStatus:
    """Bedrock status + statusDetails -> JobStatus (provider-rules §6)."""
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


def merge_metrics_csv(
    points: dict[int, dict[str, Any]], text: str, *, validation: bool = False
) -> None:
    """Add one Bedrock metrics CSV (step_number, epoch_number, training_loss / validation_loss,
    perplexity) into `points` keyed by step."""
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
            else:
                point["extra"][
                    f"validation_{column}"
                    if validation and not column.startswith("validation")
                    else column
                ] = number


def client_error(provider: str, operation: str, exc: ClientError) -> ProviderError:
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = _error_code(exc)
    status = _http_status(exc)
    headers = meta.get("HTTPHeaders") or {}
    retry_after = None
    if headers.get("retry-after"):
        try:
            retry_after = float(headers["retry-after"])
        except ValueError:
            retry_after = None
    retryable = code in RETRYABLE_CODES or status == 429 or (status is not None and status >= 500)
    return ProviderError(
        provider,
        operation,
        f"{code}: {err.get('Message') or exc}" if code else str(exc),
        status_code=status,
        request_id=meta.get("RequestId") or headers.get("x-amzn-requestid"),
        code=code,
        retry_after=retry_after,
        retryable=retryable,
    )


def _error_code(exc: ClientError) -> str | None:
    return exc.response.get("Error", {}).get("Code")


def _http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _slug(text: str) -> str:
    """Letters, digits and single hyphens, starting and ending with a letter or digit."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9]", "-", text)).strip("-") or "x"


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(
            value,
            default=lambda v: v.isoformat() if isinstance(v, dt.datetime | dt.date) else str(v),
        )
    )


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
