"""Wire details shared by the Azure AI Foundry fake's routes: errors, times, request context."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from .fake_http import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from .azure_foundry_fake import FakeAzureFoundry

__all__ = ["AzureError", "Ctx", "iso", "ms"]


def iso(seconds: float) -> str:
    """Unix seconds -> the ISO 8601 form ARM uses (`2025-01-01T00:00:00.000000+00:00`)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def http_date(seconds: float) -> str:
    """Unix seconds -> an RFC 1123 date (blob `Last-Modified`)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def ms(seconds: float | None) -> int | None:
    """Unix seconds -> Unix milliseconds (MLflow), None stays None."""
    return None if seconds is None else int(seconds * 1000)


@dataclass
class AzureError(Exception):
    """An error answer in the shape of the surface that raised it.

    ARM and the data planes answer `{"error": {"code", "message"}}`; blob storage answers XML
    with an `x-ms-error-code` header.

    >>> AzureError(404, "ResourceNotFound", "no such job").response().status
    404
    """

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    xml: bool = False

    def response(self) -> FakeResponse:
        headers = {"x-ms-error-code": self.code, **self.headers}
        if self.xml:
            body = (
                '<?xml version="1.0" encoding="utf-8"?><Error>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                "</Error>"
            ).encode()
            return FakeResponse(self.status, body, {"content-type": "application/xml", **headers})
        payload = {"error": {"code": self.code, "message": self.message}}
        return FakeResponse.json_body(self.status, payload, headers)


@dataclass
class Ctx:
    """What a route handler gets: the fake, the request and the request's surface."""

    fake: FakeAzureFoundry
    request: FakeRequest
    surface: str

    @property
    def host(self) -> str:
        return self.request.headers.get("host", "")

    def body(self) -> dict[str, Any]:
        """The JSON body as an object; a 400 in ARM's shape when it is not one."""
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AzureError(
                400, "InvalidRequestContent", "The request body must be a JSON object."
            )
        return data

    def api_version(self, *accepted: str) -> str:
        """The request's `api-version`; a 400 when it is missing (or not in `accepted`)."""
        version = self.request.query.get("api-version", "")
        if not version:
            raise AzureError(
                400, "MissingApiVersionParameter", "The api-version query parameter is required."
            )
        if accepted and version not in accepted:
            raise AzureError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for API version '{version}'. "
                f"The supported api-versions are '{', '.join(accepted)}'.",
            )
        return version

    def ok(
        self, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> FakeResponse:
        return FakeResponse.json_body(status, payload, headers)
