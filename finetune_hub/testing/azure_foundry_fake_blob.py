"""Azure Blob Storage, as much as uploading training data needs (host `{account}.blob.core.windows.net`).

Served so that azure-storage-blob runs its real upload path: Put Blob (small files), Put Block
+ Put Block List (large ones, `max_single_put_size`), Get Blob (ranges), Get Blob Properties
(`exists()`), Set Blob Metadata, Delete Blob, List Blobs and container create/properties.
`If-None-Match: *` on a write is honoured (409 BlobAlreadyExists), so "never overwrite" uploads
can be tested. Requests need a SharedKey/Bearer `Authorization` header or a SAS `sig`.

>>> store = BlobStore("acct")
>>> store.put("c", "a/b.jsonl", b"{}\\n").size
3
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .azure_foundry_fake_wire import AzureError, Ctx, http_date
from .fake_http import FakeResponse

__all__ = ["Blob", "BlobStore", "handle_blob"]

STORAGE_VERSION = "2025-01-05"


@dataclass
class Blob:
    """One committed block blob."""

    data: bytes
    created_at: float
    modified_at: float
    etag: str
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.data)

    def headers(self) -> dict[str, str]:
        md5 = base64.b64encode(hashlib.md5(self.data).digest()).decode()  # noqa: S324 (wire field)
        headers = {
            "etag": self.etag,
            "last-modified": http_date(self.modified_at),
            "x-ms-creation-time": http_date(self.created_at),
            "x-ms-blob-type": "BlockBlob",
            "content-type": self.content_type,
            "content-md5": md5,
            "accept-ranges": "bytes",
            "x-ms-server-encrypted": "true",
            "x-ms-lease-state": "available",
            "x-ms-lease-status": "unlocked",
        }
        headers.update({f"x-ms-meta-{k}": v for k, v in self.metadata.items()})
        return headers


class BlobStore:
    """The fake's storage account: containers of block blobs, plus staged (uncommitted) blocks."""

    def __init__(self, account: str, clock_now: Any = None) -> None:
        self.account = account
        self.account_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.containers: dict[str, dict[str, Blob]] = {}
        self.staged: dict[tuple[str, str], dict[str, bytes]] = {}
        self._now = clock_now or (lambda: 0.0)
        self._etags = 0

    def sas_token(self) -> str:
        """A SAS token in the usual shape (the fake checks only that `sig` is present)."""
        return "sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&spr=https&sig=fake"

    def _etag(self) -> str:
        self._etags += 1
        return f'"0x8DD{self._etags:012X}"'

    def put(self, container: str, name: str, data: bytes, **kwargs: Any) -> Blob:
        """Store a committed blob (creates the container); returns it."""
        now = self._now()
        blobs = self.containers.setdefault(container, {})
        old = blobs.get(name)
        blob = Blob(data, old.created_at if old else now, now, self._etag(), **kwargs)
        blobs[name] = blob
        return blob

    def get(self, container: str, name: str) -> Blob | None:
        return self.containers.get(container, {}).get(name)


def _blob_error(status: int, code: str, message: str) -> AzureError:
    return AzureError(status, code, message, xml=True)


def _ranged(blob: Blob, header: str) -> tuple[int, bytes, dict[str, str]]:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
    if not match:
        return 200, blob.data, {}
    start = int(match[1])
    end = min(int(match[2]) if match[2] else blob.size - 1, blob.size - 1)
    if start >= blob.size:
        raise AzureError(
            416,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
            headers={"content-range": f"bytes */{blob.size}"},
            xml=True,
        )
    return 206, blob.data[start : end + 1], {"content-range": f"bytes {start}-{end}/{blob.size}"}


def _check_write_conditions(ctx: Ctx, blob: Blob | None) -> None:
    headers = ctx.request.headers
    if headers.get("if-none-match") == "*" and blob is not None:
        raise _blob_error(409, "BlobAlreadyExists", "The specified blob already exists.")
    if_match = headers.get("if-match")
    if if_match and (blob is None or (if_match != "*" and if_match != blob.etag)):
        raise _blob_error(
            412,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        )


def _metadata(ctx: Ctx) -> dict[str, str]:
    return {
        k[len("x-ms-meta-") :]: v
        for k, v in ctx.request.headers.items()
        if k.startswith("x-ms-meta-")
    }


def _put(ctx: Ctx, store: BlobStore, container: str, name: str) -> FakeResponse:
    query, headers = ctx.request.query, ctx.request.headers
    comp = query.get("comp")
    existing = store.get(container, name)
    if comp == "block":
        block_id = query.get("blockid", "")
        store.staged.setdefault((container, name), {})[block_id] = ctx.request.body
        return FakeResponse(201, b"", {"x-ms-request-server-encrypted": "true"})
    if comp == "metadata":
        if existing is None:
            raise _blob_error(404, "BlobNotFound", "The specified blob does not exist.")
        existing.metadata = _metadata(ctx)
        existing.etag = store._etag()
        return FakeResponse(200, b"", {"etag": existing.etag})
    if comp == "properties":
        if existing is None:
            raise _blob_error(404, "BlobNotFound", "The specified blob does not exist.")
        existing.content_type = headers.get("x-ms-blob-content-type", existing.content_type)
        return FakeResponse(200, b"", {"etag": existing.etag})
    _check_write_conditions(ctx, existing)
    kwargs = {
        "content_type": headers.get("x-ms-blob-content-type") or "application/octet-stream",
        "metadata": _metadata(ctx),
    }
    if comp == "blocklist":
        staged = store.staged.pop((container, name), {})
        try:
            root = ElementTree.fromstring(ctx.request.body)
        except ElementTree.ParseError as exc:
            raise _blob_error(400, "InvalidXmlDocument", f"Invalid block list: {exc}") from None
        parts = []
        for element in root:
            data = staged.get(element.text or "")
            if data is None:
                raise _blob_error(400, "InvalidBlockList", "The specified block list is invalid.")
            parts.append(data)
        blob = store.put(container, name, b"".join(parts), **kwargs)
    elif comp is None and headers.get("x-ms-blob-type") == "BlockBlob":
        blob = store.put(container, name, ctx.request.body, **kwargs)
    else:
        raise _blob_error(400, "UnsupportedHeader", "The fake stores block blobs only.")
    return FakeResponse(
        201,
        b"",
        {
            "etag": blob.etag,
            "last-modified": http_date(blob.modified_at),
            "content-md5": blob.headers()["content-md5"],
            "x-ms-request-server-encrypted": "true",
        },
    )


def _list(ctx: Ctx, store: BlobStore, container: str) -> FakeResponse:
    query = ctx.request.query
    prefix = query.get("prefix", "")
    include_metadata = "metadata" in query.get("include", "")
    blobs = sorted(
        (n, b) for n, b in store.containers.get(container, {}).items() if n.startswith(prefix)
    )
    start = int(query.get("marker") or 0)
    limit = int(query.get("maxresults") or 5000)
    page = blobs[start : start + limit]
    items = []
    for name, blob in page:
        meta = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in blob.metadata.items())
        items.append(
            f"<Blob><Name>{escape(name)}</Name><Properties>"
            f"<Creation-Time>{http_date(blob.created_at)}</Creation-Time>"
            f"<Last-Modified>{http_date(blob.modified_at)}</Last-Modified>"
            f"<Etag>{escape(blob.etag)}</Etag><Content-Length>{blob.size}</Content-Length>"
            f"<Content-Type>{escape(blob.content_type)}</Content-Type>"
            f"<Content-MD5>{blob.headers()['content-md5']}</Content-MD5><BlobType>BlockBlob</BlobType>"
            "<AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>"
            "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
            "<ServerEncrypted>true</ServerEncrypted></Properties>"
            + (f"<Metadata>{meta}</Metadata>" if include_metadata else "")
            + "</Blob>"
        )
    marker = str(start + limit) if start + limit < len(blobs) else ""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="https://{ctx.host}/" ContainerName="{escape(container)}">'
        f"<Prefix>{escape(prefix)}</Prefix><MaxResults>{limit}</MaxResults><Blobs>{''.join(items)}"
        f"</Blobs><NextMarker>{marker}</NextMarker></EnumerationResults>"
    )
    return FakeResponse(200, body.encode(), {"content-type": "application/xml"})


def handle_blob(ctx: Ctx, store: BlobStore) -> FakeResponse:
    """Answer one Blob service request for the fake's account."""
    request = ctx.request
    account = ctx.host.split(".", 1)[0]
    if account != store.account:
        raise _blob_error(
            404, "ResourceNotFound", f"The storage account '{account}' does not exist."
        )
    if not request.headers.get("authorization") and "sig" not in request.query:
        raise _blob_error(
            401, "NoAuthenticationInformation", "Server failed to authenticate the request."
        )
    container, _, name = unquote(request.path).lstrip("/").partition("/")
    method = request.method
    base = {"x-ms-version": STORAGE_VERSION}
    if not name:
        if request.query.get("comp") == "list" and method == "GET":
            response = _list(ctx, store, container)
        elif method == "PUT":
            if container in store.containers:
                raise _blob_error(
                    409, "ContainerAlreadyExists", "The specified container already exists."
                )
            store.containers[container] = {}
            response = FakeResponse(201, b"", {"etag": store._etag()})
        elif method in ("GET", "HEAD") and container in store.containers:
            response = FakeResponse(
                200, b"", {"etag": '"0x8DD000000000000"', "x-ms-has-immutability-policy": "false"}
            )
        else:
            raise _blob_error(404, "ContainerNotFound", "The specified container does not exist.")
        response.headers.update(base)
        return response
    if method == "PUT":
        response = _put(ctx, store, container, name)
    else:
        blob = store.get(container, name)
        if blob is None:
            raise _blob_error(404, "BlobNotFound", "The specified blob does not exist.")
        if method == "DELETE":
            del store.containers[container][name]
            response = FakeResponse(202, b"", {"x-ms-delete-type-permanent": "true"})
        elif method == "HEAD":
            response = FakeResponse(200, b"", {**blob.headers(), "content-length": str(blob.size)})
        elif method == "GET":
            status, data, extra = _ranged(
                blob, request.headers.get("x-ms-range") or request.headers.get("range") or ""
            )
            response = FakeResponse(status, data, {**blob.headers(), **extra})
        else:
            raise _blob_error(405, "UnsupportedHttpVerb", f"{method} is not supported by the fake.")
    response.headers.update(base)
    response.headers.setdefault("date", http_date(store._now()))
    return response
