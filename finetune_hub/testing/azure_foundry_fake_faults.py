"""Which surface a request is for (by host), and the answers of injected faults on each."""

from __future__ import annotations

from .azure_foundry_fake_wire import AzureError
from .fake_http import FakeResponse
from .openai_fake_faults import Fault

__all__ = ["FAULT_KINDS", "fault_response", "surface_of"]

FAULT_KINDS = ("429", "500", "503", "drop", "slow")

_MESSAGES = {
    429: ("TooManyRequests", "The request was throttled. Retry after {seconds:g} seconds."),
    500: ("InternalServerError", "The server encountered an internal error. Please retry."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry."),
}
_BLOB_CODES = {429: "ServerBusy", 500: "InternalError", 503: "ServerBusy"}


def surface_of(host: str) -> str:
    """`arm`, `blob`, `dataplane`, `registry`, `inference` or `unknown`, from the host.

    >>> surface_of("management.azure.com"), surface_of("acct.blob.core.windows.net")
    ('arm', 'blob')
    """
    host = host.lower().split(":", 1)[0]
    if host == "management.azure.com":
        return "arm"
    if host.endswith(".blob.core.windows.net"):
        return "blob"
    if host.endswith(".api.azureml.ms"):
        return "dataplane"
    if host.endswith(".experiments.azureml.net"):
        return "registry"
    if host.endswith(".models.ai.azure.com"):
        return "inference"
    return "unknown"


def fault_response(fault: Fault, surface: str) -> FakeResponse:
    """The answer of an injected fault (`kind`, `retry_after`) in the surface's error shape."""
    kind = fault.kind
    if kind == "drop":
        return FakeResponse(0, drop=True)
    status = int(kind)
    seconds = 1.0 if fault.retry_after is None else float(fault.retry_after)
    code, message = _MESSAGES[status]
    headers = {}
    if status == 429:
        headers["retry-after"] = str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"
    if surface == "blob":
        code = _BLOB_CODES[status]
    error = AzureError(
        status, code, message.format(seconds=seconds), headers, xml=surface == "blob"
    )
    return error.response()
