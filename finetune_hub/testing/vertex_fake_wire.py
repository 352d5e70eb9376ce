"""Wire conventions of Google's REST APIs, as the Vertex and Cloud Storage fakes speak them.

- Errors: Vertex answers `{"error": {"code": 404, "message": ..., "status": "NOT_FOUND"}}`; Cloud
  Storage answers `{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}`.
- 64-bit integers travel as JSON strings (`"epochCount": "3"`).
- Enums travel as names, or as numbers when the client asks for `$alt=json;enum-encoding=int`
  (the GAPIC REST transport of google-cloud-aiplatform does; google-genai does not).
- Timestamps are RFC 3339 in UTC with microseconds (`2025-01-01T00:00:00.000000Z`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .fake_http import FakeRequest, FakeResponse

__all__ = [
    "ENUMS",
    "ApiError",
    "Ctx",
    "encode_enums",
    "int64",
    "rfc3339",
]

#: Canonical status name per HTTP code (google.rpc.Code as mapped by Google's REST gateway).
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: google.rpc.Code numbers, used in `error` fields of jobs and operations (not in HTTP errors).
RPC_CODES = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
}

_GCS_REASONS = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}

#: Enum numbers of aiplatform v1 protos (checked against google-cloud-aiplatform 2.7.0).
ENUMS: dict[str, dict[str, int]] = {
    "JobState": {
        "JOB_STATE_UNSPECIFIED": 0,
        "JOB_STATE_QUEUED": 1,
        "JOB_STATE_PENDING": 2,
        "JOB_STATE_RUNNING": 3,
        "JOB_STATE_SUCCEEDED": 4,
        "JOB_STATE_FAILED": 5,
        "JOB_STATE_CANCELLING": 6,
        "JOB_STATE_CANCELLED": 7,
        "JOB_STATE_PAUSED": 8,
        "JOB_STATE_EXPIRED": 9,
        "JOB_STATE_UPDATING": 10,
        "JOB_STATE_PARTIALLY_SUCCEEDED": 11,
    },
    "PipelineState": {
        "PIPELINE_STATE_UNSPECIFIED": 0,
        "PIPELINE_STATE_QUEUED": 1,
        "PIPELINE_STATE_PENDING": 2,
        "PIPELINE_STATE_RUNNING": 3,
        "PIPELINE_STATE_SUCCEEDED": 4,
        "PIPELINE_STATE_FAILED": 5,
        "PIPELINE_STATE_CANCELLING": 6,
        "PIPELINE_STATE_CANCELLED": 7,
        "PIPELINE_STATE_PAUSED": 8,
    },
    "PipelineTaskDetail.State": {
        "STATE_UNSPECIFIED": 0,
        "PENDING": 1,
        "RUNNING": 2,
        "SUCCEEDED": 3,
        "CANCEL_PENDING": 4,
        "CANCELLING": 5,
        "CANCELLED": 6,
        "FAILED": 7,
        "SKIPPED": 8,
        "NOT_TRIGGERED": 9,
    },
    "AcceleratorType": {
        "ACCELERATOR_TYPE_UNSPECIFIED": 0,
        "NVIDIA_TESLA_K80": 1,
        "NVIDIA_TESLA_P100": 2,
        "NVIDIA_TESLA_V100": 3,
        "NVIDIA_TESLA_P4": 4,
        "NVIDIA_TESLA_T4": 5,
        "TPU_V2": 6,
        "TPU_V3": 7,
        "NVIDIA_TESLA_A100": 8,
        "NVIDIA_A100_80GB": 9,
        "TPU_V4_POD": 10,
        "NVIDIA_L4": 11,
        "TPU_V5_LITEPOD": 12,
        "NVIDIA_H100_80GB": 13,
        "NVIDIA_H100_MEGA_80GB": 14,
        "NVIDIA_H200_141GB": 15,
        "NVIDIA_B200": 16,
    },
    "AdapterSize": {
        "ADAPTER_SIZE_UNSPECIFIED": 0,
        "ADAPTER_SIZE_ONE": 1,
        "ADAPTER_SIZE_FOUR": 2,
        "ADAPTER_SIZE_EIGHT": 3,
        "ADAPTER_SIZE_SIXTEEN": 4,
        "ADAPTER_SIZE_THIRTY_TWO": 5,
        "ADAPTER_SIZE_TWO": 6,
    },
    "DeploymentResourcesType": {
        "DEPLOYMENT_RESOURCES_TYPE_UNSPECIFIED": 0,
        "DEDICATED_RESOURCES": 1,
        "AUTOMATIC_RESOURCES": 2,
        "SHARED_RESOURCES": 3,
    },
}
_BY_FIELD = {
    "acceleratorType": "AcceleratorType",
    "adapterSize": "AdapterSize",
    "supportedDeploymentResourcesTypes": "DeploymentResourcesType",
}


def _enum_table(key: str, value: Any) -> dict[str, int] | None:
    if key in _BY_FIELD:
        return ENUMS[_BY_FIELD[key]]
    if key != "state":
        return None
    if isinstance(value, str) and value.startswith("JOB_STATE_"):
        return ENUMS["JobState"]
    if isinstance(value, str) and value.startswith("PIPELINE_STATE_"):
        return ENUMS["PipelineState"]
    return ENUMS["PipelineTaskDetail.State"]


def encode_enums(value: Any, as_int: bool) -> Any:
    """A copy of `value` with the enums it knows as numbers (`as_int`) or as names.

    >>> encode_enums({"state": "JOB_STATE_RUNNING", "n": "3"}, as_int=True)
    {'state': 3, 'n': '3'}
    >>> encode_enums({"machineSpec": {"acceleratorType": 9}}, as_int=False)
    {'machineSpec': {'acceleratorType': 'NVIDIA_A100_80GB'}}
    """
    if isinstance(value, list):
        return [encode_enums(item, as_int) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        table = _enum_table(key, item)
        if table is None:
            out[key] = encode_enums(item, as_int)
        elif isinstance(item, list):
            out[key] = [_convert(table, x, as_int) for x in item]
        else:
            out[key] = _convert(table, item, as_int)
    return out


def _convert(table: dict[str, int], item: Any, as_int: bool) -> Any:
    if as_int and isinstance(item, str) and item in table:
        return table[item]
    if not as_int and isinstance(item, int):
        return next((name for name, num in table.items() if num == item), item)
    return item


def int64(value: int | float) -> str:
    """An int64 as Google's JSON mapping writes it: a string.

    >>> int64(3)
    '3'
    """
    return str(int(value))


def rfc3339(seconds: float) -> str:
    """Unix seconds as an RFC 3339 UTC timestamp with microseconds.

    >>> rfc3339(1735689600.5)
    '2025-01-01T00:00:00.500000Z'
    """
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


@dataclass
class ApiError(Exception):
    """An error answer; `response(api)` renders it in the Vertex or the Cloud Storage shape.

    >>> ApiError(404, "no such job").response("vertex").payload()["error"]["status"]
    'NOT_FOUND'
    >>> ApiError(412, "precondition").response("storage").payload()["error"]["errors"][0]["reason"]
    'conditionNotMet'
    """

    code: int
    message: str
    status: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    location: str | None = None  # Cloud Storage: the header or parameter at fault

    def __post_init__(self) -> None:
        self.status = self.status or STATUS_NAMES.get(self.code, "UNKNOWN")
        super().__init__(self.message)

    def response(self, api: str) -> FakeResponse:
        if api == "storage":
            detail: dict[str, Any] = {
                "message": self.message,
                "domain": "usageLimits" if self.code == 429 else "global",
                "reason": _GCS_REASONS.get(self.code, "backendError"),
            }
            if self.location:
                detail.update(locationType="header", location=self.location)
            body = {"code": self.code, "message": self.message, "errors": [detail]}
        else:
            body = {"code": self.code, "message": self.message, "status": self.status}
        return FakeResponse.json_body(self.code, {"error": body}, dict(self.headers))


def rpc_status(status: str, message: str) -> dict[str, Any]:
    """A google.rpc.Status as jobs and operations carry it: `{"code": 3, "message": ...}`."""
    return {"code": RPC_CODES.get(status, 2), "message": message}


@dataclass
class Ctx:
    """What a route handler gets: the fake, the request and how to encode the answer."""

    fake: Any
    request: FakeRequest
    api: str  # "vertex" | "storage"

    @property
    def int_enums(self) -> bool:
        """Whether the client asked for enum numbers (`$alt=json;enum-encoding=int`)."""
        return "enum-encoding=int" in self.request.query.get("$alt", "")

    def body(self) -> dict[str, Any]:
        """The JSON body as a dict, enums as names; a body that is not an object is a 400."""
        payload = self.request.json()
        if payload is None and not self.request.body:
            return {}
        if not isinstance(payload, dict):
            raise ApiError(400, "Invalid JSON payload received: the body is not a JSON object.")
        return encode_enums(payload, as_int=False)

    def ok(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        """A JSON answer, enums encoded as the client asked."""
        if self.api == "vertex":
            payload = encode_enums(payload, self.int_enums)
        return FakeResponse.json_body(status, payload, headers)
