"""Wire-level pieces of the OpenAI fake: ids, error shapes, cursor pages, the request context."""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .fake_http import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from .openai_fake import FakeOpenAI

#: The Azure data-plane surfaces; jobs render Azure's status strings there.
AZURE_SURFACES = frozenset({"azure", "azure-v1"})


class IdMaker:
    """Deterministic, realistic-looking ids (seeded, so a test run is reproducible)."""

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)

    def alnum(self, n: int) -> str:
        return "".join(self._random.choices(string.ascii_letters + string.digits, k=n))

    def hex(self, n: int) -> str:
        return "".join(self._random.choices("0123456789abcdef", k=n))


class WireError(Exception):
    """Raised by a route to answer with an error in the surface's shape."""

    def __init__(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(payload["error"].get("message"))
        self.status = status
        self.payload = payload
        self.headers = headers or {}

    @classmethod
    def openai(
        cls,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",  # noqa: A002 (the wire field's name)
    ) -> WireError:
        """OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
        return cls(status, openai_error(message, param=param, code=code, type=type))

    @classmethod
    def azure(cls, status: int, code: str, message: str) -> WireError:
        """Azure's (and ARM's) shape: {"error": {"code", "message"}}."""
        return cls(status, {"error": {"code": code, "message": message}})

    def response(self) -> FakeResponse:
        return FakeResponse.json_body(self.status, self.payload, self.headers)


def openai_error(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    type: str = "invalid_request_error",  # noqa: A002
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def not_found(surface: str, what: str, ident: str) -> WireError:
    if surface == "arm":
        return WireError.azure(404, "NotFound", f"{what} {ident} was not found.")
    return WireError.openai(404, f"No such {what} object: {ident}", param="id")


def cursor_page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """A cursor page like the API's: `items` must already be in API order (newest first)."""
    limit = _int_query(query, "limit", 20, low=1, high=10_000)
    after = query.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "has_more": len(items) > limit,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def _int_query(query: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WireError.openai(400, f"Invalid '{name}': expected an integer.", param=name) from None
    if not low <= value <= high:
        raise WireError.openai(
            400, f"Invalid '{name}': must be between {low} and {high}.", param=name
        )
    return value


def retry_after_headers(seconds: float) -> dict[str, str]:
    """`Retry-After` (seconds; fractional when asked for) plus `retry-after-ms`."""
    whole = float(seconds).is_integer()
    return {
        "retry-after": str(int(seconds)) if whole else f"{seconds:g}",
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }


@dataclass
class Ctx:
    """What a route handler gets: the fake, the request and where it came in."""

    fake: FakeOpenAI
    request: FakeRequest
    surface: str  # "openai" | "azure" | "azure-v1" | "arm"
    path: str  # the path after the surface prefix

    @property
    def query(self) -> dict[str, str]:
        return self.request.query

    @property
    def azure(self) -> bool:
        return self.surface in AZURE_SURFACES

    @property
    def now(self) -> int:
        return int(self.fake.clock.now())

    def body(self) -> dict[str, Any]:
        """The JSON body as an object, or a 400 in the surface's shape."""
        data = self.request.json()
        if not isinstance(data, dict):
            if self.surface == "arm":
                raise WireError.azure(
                    400, "InvalidRequestContent", "The request content was invalid."
                )
            raise WireError.openai(
                400,
                "We could not parse the JSON body of your request. The request body must be a "
                "JSON object.",
            )
        return data

    def ok(self, payload: Any, status: int = 200) -> FakeResponse:
        return FakeResponse.json_body(status, payload)


def check_access(ctx: Ctx) -> None:
    """Refuse a request without a valid api-version or credential, in the surface's shape."""
    headers, surface = ctx.request.headers, ctx.surface
    bearer = headers.get("authorization", "")
    token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
    if surface in ("azure", "arm") and not ctx.query.get("api-version"):
        raise WireError.azure(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if surface == "arm":
        if not token:
            raise WireError.azure(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        if ctx.fake.management_tokens is not None and token not in ctx.fake.management_tokens:
            raise WireError.azure(401, "InvalidAuthenticationToken", "The access token is invalid.")
    elif surface == "openai":
        if not token:
            raise WireError.openai(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if ctx.fake.api_keys is not None and token not in ctx.fake.api_keys:
            raise WireError.openai(401, "Incorrect API key provided.", code="invalid_api_key")
    elif surface in ("azure", "azure-v1"):
        key = headers.get("api-key") or token
        if not key:
            raise WireError.azure(
                401,
                "401",
                "Access denied due to missing subscription key. Make sure to include "
                "subscription key when making requests to an API.",
            )
        if ctx.fake.api_keys is not None and key not in ctx.fake.api_keys:
            raise WireError.azure(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint.",
            )
