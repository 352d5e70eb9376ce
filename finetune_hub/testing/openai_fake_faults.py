"""Fault injection and the request log of the OpenAI fake."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .fake_http import FakeRequest, FakeResponse
from .openai_fake_wire import WireError, retry_after_headers

FAULT_KINDS = ("429", "500", "503", "drop", "slow")
REDACTED = "<redacted>"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "api-key",
        "proxy-authorization",
        "cookie",
        "ocp-apim-subscription-key",
        "x-ms-authorization-auxiliary",
    }
)
SECRET_QUERY = frozenset({"api-key", "api_key", "key", "code", "sig", "token"})


@dataclass
class RecordedRequest:
    """One request the fake received; credentials in headers and query are `"<redacted>"`."""

    method: str
    surface: str  # "openai" | "azure" | "azure-v1" | "arm" | "unknown"
    path: str  # after the surface prefix, e.g. "/fine_tuning/jobs"
    query: dict[str, str]
    headers: dict[str, str]
    json: Any  # the JSON body, or None (multipart uploads, empty bodies)
    url_path: str = ""  # the full path, prefix included
    status: int | None = None  # filled in once answered; 0 for a dropped connection


@dataclass
class Fault:
    """An injected fault (see `FakeOpenAI.inject`); `remaining` counts down to 0 (None: forever)."""

    method: str
    path_pattern: str
    kind: str
    remaining: int | None = 1
    retry_after: float | None = None
    delay: float = 0.0
    after: bool = False

    def matches(self, method: str, path: str, url_path: str) -> bool:
        return self.method in ("*", method.upper()) and path_matches(
            self.path_pattern, path, url_path
        )


def path_matches(pattern: str, path: str, url_path: str) -> bool:
    if pattern in (path, url_path):
        return True
    try:
        return bool(re.fullmatch(pattern, path) or re.fullmatch(pattern, url_path))
    except re.error:
        return False


def record(request: FakeRequest, surface: str, path: str) -> RecordedRequest:
    """The log entry for `request`, with credentials in headers and query redacted."""
    return RecordedRequest(
        method=request.method,
        surface=surface,
        path=path,
        query={k: REDACTED if k.lower() in SECRET_QUERY else v for k, v in request.query.items()},
        headers={k: REDACTED if k in SECRET_HEADERS else v for k, v in request.headers.items()},
        json=request.json(),
        url_path=request.path,
    )


def fault_response(fault: Fault, surface: str) -> FakeResponse:
    """The response an injected fault gives on `surface` (OpenAI, Azure or ARM shape)."""
    if fault.kind == "drop":
        return FakeResponse(0, drop=True)
    status = int(fault.kind)
    azure = surface != "openai"
    headers: dict[str, str] = {}
    if status == 429:
        seconds = 1.0 if fault.retry_after is None else fault.retry_after
        headers = retry_after_headers(seconds)
        err = WireError.openai(
            429,
            "Rate limit reached for requests. Please try again later.",
            type="requests",
            code="rate_limit_exceeded",
        )
        if azure:
            err = WireError.azure(
                429,
                "429" if surface != "arm" else "TooManyRequests",
                f"Requests have exceeded the call rate limit. Please retry after {seconds:g}"
                " seconds.",
            )
    elif status == 500:
        message = "The server had an error while processing your request. Sorry about that!"
        err = (
            WireError.azure(500, "InternalServerError", message)
            if azure
            else WireError.openai(500, message, type="server_error")
        )
    else:
        message = "The server is overloaded or not ready yet."
        err = (
            WireError.azure(503, "ServiceUnavailable", message)
            if azure
            else WireError.openai(503, message, type="server_error")
        )
    err.headers.update(headers)
    return err.response()
