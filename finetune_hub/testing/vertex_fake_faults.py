"""Fault injection and the request log of the Vertex AI + Cloud Storage fake."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .fake_http import FakeRequest, FakeResponse
from .vertex_fake_wire import ApiError

__all__ = ["FAULT_KINDS", "REDACTED", "Fault", "RecordedRequest"]

FAULT_KINDS = ("429", "500", "503", "drop", "slow")
REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-goog-api-key"})
_SECRET_QUERY = frozenset({"key", "access_token", "upload_id"})
_FAULT_MESSAGES = {
    429: "Quota exceeded for aiplatform.googleapis.com/requests. Please try again later.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}


@dataclass
class RecordedRequest:
    """One request the fake received. Credentials (and resumable upload ids) are redacted.

    `api` is "vertex", "storage" or "unknown"; `operation` names the route, e.g.
    "tuningJobs.create", "storage.objects.insert" (empty for unknown routes).
    """

    method: str
    api: str
    operation: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any  # the JSON body, or None (media, multipart, empty)
    body_size: int = 0
    status: int | None = None  # filled in once answered; 0 for a dropped connection


def record(request: FakeRequest, api: str, operation: str) -> RecordedRequest:
    """The log entry for `request`, credentials redacted."""
    return RecordedRequest(
        method=request.method,
        api=api,
        operation=operation,
        path=request.path,
        query={k: REDACTED if k in _SECRET_QUERY else v for k, v in request.query.items()},
        headers={k: REDACTED if k in _SECRET_HEADERS else v for k, v in request.headers.items()},
        json=request.json() if "multipart" not in request.headers.get("content-type", "") else None,
        body_size=len(request.body),
    )


@dataclass
class Fault:
    """An injected fault (see `FakeVertex.inject`); `remaining` counts down (None: forever)."""

    method: str
    target: str  # an operation name ("tuningJobs.create") or a path regex (full match)
    kind: str
    remaining: int | None = 1
    retry_after: float | None = None
    delay: float = 0.0
    after: bool = False

    def matches(self, method: str, operation: str, path: str) -> bool:
        """Whether a request (method, operation name, path) is one this fault targets."""
        return self.method in ("*", method.upper()) and target_matches(self.target, operation, path)

    def response(self, api: str) -> FakeResponse:
        """The answer this fault gives, in the API's error shape."""
        if self.kind == "drop":
            return FakeResponse(0, drop=True)
        code = int(self.kind)
        headers = {}
        if code == 429:
            seconds = 1.0 if self.retry_after is None else self.retry_after
            headers["retry-after"] = f"{seconds:g}"
        return ApiError(code, _FAULT_MESSAGES[code], headers=headers).response(api)


def target_matches(target: str, operation: str, path: str) -> bool:
    """`target` is an operation name, the exact path, or a regex matching the whole path.

    >>> target_matches("tuningJobs.create", "tuningJobs.create", "/v1beta1/x")
    True
    >>> target_matches(r".*/tuningJobs", "tuningJobs.create", "/v1beta1/projects/p/locations/l/tuningJobs")
    True
    """
    if target in (operation, path):
        return True
    try:
        return bool(re.fullmatch(target, path))
    except re.error:
        return False
