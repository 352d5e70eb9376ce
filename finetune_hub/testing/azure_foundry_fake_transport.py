"""How the real Azure SDKs reach `FakeAzureFoundry`: an azure-core transport and a credential.

azure-ai-ml hands the `transport=` given to `MLClient` to every service client it builds (ARM,
workspace data plane, run history, registries), so one in-process transport sees every call:
no sockets, no TLS, no environment variables, and the SDK keeps its real URLs
(`https://management.azure.com/...`). Each request becomes a `FakeRequest` (its host in the
`host` header, as a real server would see it) and goes to the fake's `handle`.

`transport.sleep()` is how azure-core waits between retries and long-running-operation polls,
so here it moves the fake's clock instead of real time: a poller that would wait 30 s returns
at once, and the fake's resources are 30 s older.

One SDK client does not take the transport: the blob client that azure-ai-ml builds itself to
upload local files. `route_storage_clients` sends azure-storage-blob clients built without a
transport to the fake for the duration of a `with` block.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .fake_http import FakeRequest, FakeResponse

__all__ = ["FakeAzureCredential", "fake_jwt", "make_transport", "route_storage_clients"]

#: The tenant id the fake credential puts in its tokens (azure-ai-ml reads `tid`).
FAKE_TENANT_ID = "00000000-0000-0000-0000-0000000000aa"


def fake_jwt(audience: str, *, tenant_id: str = FAKE_TENANT_ID, lifetime: int = 3600) -> str:
    """An unsigned JWT-shaped token for `audience` (azure-ai-ml decodes tokens, never checks them).

    >>> token = fake_jwt("https://management.azure.com")
    >>> token.count(".")
    2
    """

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "tid": tenant_id,
        "oid": "00000000-0000-0000-0000-0000000000bb",
        "upn": "fake-user@example.com",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    signature = base64.urlsafe_b64encode(b"not-a-signature").rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


class FakeAzureCredential:
    """An azure-core `TokenCredential` for tests: JWT-shaped tokens, no network, no environment.

    Use it instead of `DefaultAzureCredential`, which probes the instance metadata service.

    >>> cred = FakeAzureCredential()
    >>> cred.get_token("https://management.azure.com/.default").token.count(".")
    2
    >>> cred.scopes
    ['https://management.azure.com/.default']
    """

    def __init__(self, tenant_id: str = FAKE_TENANT_ID) -> None:
        self.tenant_id = tenant_id
        #: every scope a token was asked for, in order
        self.scopes: list[str] = []

    def _token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        scope = scopes[0] if scopes else "https://management.azure.com/.default"
        self.scopes.append(scope)
        audience = scope.removesuffix("/.default").removesuffix("/")
        return fake_jwt(audience, tenant_id=self.tenant_id), int(time.time()) + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(*self._token(scopes))

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(*self._token(scopes))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"FakeAzureCredential(tenant_id={self.tenant_id!r})"


def _body_bytes(body: Any) -> bytes:
    """requests hands adapters bytes, str, a file-like object or an iterable of chunks."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in body)


def to_fake_request(method: str, url: str, headers: Any, body: Any) -> FakeRequest:
    """A `FakeRequest` for one outgoing request; the URL's host goes in the `host` header."""
    parts = urlsplit(url)
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    lowered["host"] = parts.netloc.lower()
    return FakeRequest(
        method=method.upper(),
        path=parts.path or "/",
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=lowered,
        body=_body_bytes(body),
    )


def make_transport(
    handle: Callable[[FakeRequest], FakeResponse], sleep: Callable[[float], None]
) -> Any:
    """An azure-core `RequestsTransport` whose requests never leave the process.

    `handle` answers each request; `sleep` replaces the transport's `sleep` (retries and polls).
    """
    import requests
    import urllib3
    from azure.core.pipeline.transport import RequestsTransport

    class _FakeAdapter(requests.adapters.HTTPAdapter):
        def send(  # type: ignore[override]
            self, request: Any, stream: bool = False, timeout: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            fake_request = to_fake_request(
                request.method, request.url, request.headers, request.body
            )
            response = handle(fake_request)
            if response.drop:
                raise requests.exceptions.ConnectionError(
                    "Connection aborted: the fake dropped the connection", request=request
                )
            read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
            if response.delay and read_timeout is not None and response.delay > read_timeout:
                raise requests.exceptions.ReadTimeout(
                    f"Read timed out (read timeout={read_timeout}): the fake answered "
                    f"{response.delay:g} s late",
                    request=request,
                )
            headers = {"content-length": str(len(response.body)), **response.headers}
            raw = urllib3.HTTPResponse(
                body=io.BytesIO(response.body),
                headers=headers,
                status=response.status,
                reason=_REASONS.get(response.status, ""),
                preload_content=False,
                decode_content=False,
                request_method=request.method,
            )
            return self.build_response(request, raw)

    class FakeAzureTransport(RequestsTransport):
        """RequestsTransport on an in-process adapter; `sleep` moves the fake clock."""

        def sleep(self, duration: float) -> None:
            sleep(duration)

    session = requests.Session()
    session.trust_env = False  # proxies and netrc from the environment never apply
    adapter = _FakeAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return FakeAzureTransport(session=session, session_owner=False)


@contextlib.contextmanager
def route_storage_clients(transport: Any) -> Iterator[None]:
    """Send azure-storage-blob clients built *without* a transport to `transport`.

    azure-ai-ml builds its own `BlobServiceClient` to upload local files (`Data(path="x.jsonl")`,
    a local `Input`), without the `MLClient`'s transport. Inside this block such clients use
    `transport` instead of opening sockets; clients given a transport keep theirs.

    It also makes the `TransportWrapper` of child clients (`container.get_blob_client(...)`)
    forward `sleep` to the transport it wraps: azure-storage-blob 12.x does not, so a retried
    upload through a child client would wait real seconds (15 s for the first retry).
    """
    from azure.storage.blob._shared import base_client

    original = base_client.RequestsTransport
    had_sleep = "sleep" in vars(base_client.TransportWrapper)

    def factory(**kwargs: Any) -> Any:
        return transport

    def forward_sleep(self: Any, duration: float) -> None:
        self._transport.sleep(duration)

    base_client.RequestsTransport = factory  # type: ignore[assignment,misc]
    if not had_sleep:
        base_client.TransportWrapper.sleep = forward_sleep  # type: ignore[method-assign]
    try:
        yield
    finally:
        base_client.RequestsTransport = original  # type: ignore[misc]
        if not had_sleep:
            del base_client.TransportWrapper.sleep


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
