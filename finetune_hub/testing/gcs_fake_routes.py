"""The Cloud Storage JSON API routes, as google-cloud-storage calls them at `STORAGE_EMULATOR_HOST`.

Served by `FakeVertex` on the same loopback server as the Vertex routes:

- buckets: `GET|POST /storage/v1/b`, `GET|DELETE /storage/v1/b/{bucket}`;
- objects: `GET /storage/v1/b/{bucket}/o` (prefix, delimiter, maxResults, pageToken),
  `GET|DELETE /storage/v1/b/{bucket}/o/{object}` (`alt=media` downloads, with Range);
  `GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`;
- uploads: `POST /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart|resumable`, and for
  resumable ones `PUT` of chunks to the returned `Location` (308 with `Range: bytes=0-N` until the
  last chunk). crc32c/md5 sent by the client (multipart metadata, `x-goog-hash` on the last chunk)
  are checked; a mismatch is a 400, as on Cloud Storage.
- preconditions `ifGenerationMatch` (0: only if the object does not exist),
  `ifGenerationNotMatch`, `ifMetagenerationMatch`: 412 `conditionNotMet` when they fail.

Not modelled: ACLs, compose/rewrite/copy, XML API (so no `transfer_manager` parallel uploads),
object versioning, signed URLs. Any credentials (or none) are accepted, like the emulators.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from .fake_http import FakeResponse
from .gcs_fake import FakeStorage, StoredObject, UploadSession, crc32c_b64, md5_b64
from .vertex_fake_wire import ApiError, Ctx, rfc3339

__all__ = ["ROUTES", "unquote_groups"]


def _check_hashes(data: bytes, expected: dict[str, str]) -> None:
    if "crc32c" in expected and expected["crc32c"] != crc32c_b64(data):
        raise ApiError(
            400,
            f'Provided CRC32C "{expected["crc32c"]}" doesn\'t match calculated CRC32C '
            f'"{crc32c_b64(data)}".',
        )
    if "md5Hash" in expected and expected["md5Hash"] != md5_b64(data):
        raise ApiError(
            400,
            f'Provided MD5 hash "{expected["md5Hash"]}" doesn\'t match calculated MD5 hash '
            f'"{md5_b64(data)}".',
        )


def _goog_hash(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key in ("crc32c", "md5") and value:
            out["crc32c" if key == "crc32c" else "md5Hash"] = value
    return out


def _fields(resource: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    wanted = query.get("fields")
    if not wanted:
        return resource
    keys = {f.split("(")[0].split("/")[0].strip() for f in wanted.split(",")}
    return {k: v for k, v in resource.items() if k in keys}


def _bucket_resource(gcs: FakeStorage, name: str) -> dict[str, Any]:
    created = rfc3339(gcs.buckets[name])
    return {
        "kind": "storage#bucket",
        "id": name,
        "selfLink": f"{gcs.base_url}/storage/v1/b/{name}",
        "name": name,
        "projectNumber": gcs.project_number,
        "metageneration": "1",
        "location": "US-CENTRAL1",
        "locationType": "region",
        "storageClass": "STANDARD",
        "etag": "CAE=",
        "timeCreated": created,
        "updated": created,
    }


# --- routes ------------------------------------------------------------------------------------


def list_buckets(ctx: Ctx) -> FakeResponse:
    gcs = ctx.fake.storage
    items = [_bucket_resource(gcs, name) for name in sorted(gcs.buckets)]
    return ctx.ok({"kind": "storage#buckets", **({"items": items} if items else {})})


def insert_bucket(ctx: Ctx) -> FakeResponse:
    gcs = ctx.fake.storage
    name = ctx.body().get("name", "")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", name):
        raise ApiError(400, f"Invalid bucket name: '{name}'")
    if name in gcs.buckets:
        raise ApiError(
            409,
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
    gcs.create_bucket(name)
    return ctx.ok(_bucket_resource(gcs, name))


def get_bucket(ctx: Ctx, bucket: str) -> FakeResponse:
    ctx.fake.storage.require_bucket(bucket)
    return ctx.ok(_fields(_bucket_resource(ctx.fake.storage, bucket), ctx.request.query))


def delete_bucket(ctx: Ctx, bucket: str) -> FakeResponse:
    gcs = ctx.fake.storage
    gcs.require_bucket(bucket)
    if any(b == bucket for b, _ in gcs.objects):
        raise ApiError(409, "The bucket you tried to delete is not empty.")
    del gcs.buckets[bucket]
    return FakeResponse(204)


def list_objects(ctx: Ctx, bucket: str) -> FakeResponse:
    gcs = ctx.fake.storage
    gcs.require_bucket(bucket)
    q = ctx.request.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    start = q.get("pageToken", "") or q.get("startOffset", "")
    limit = int(q.get("maxResults") or 1000)
    items: list[dict[str, Any]] = []
    prefixes: set[str] = set()
    names = sorted(n for b, n in gcs.objects if b == bucket and n.startswith(prefix))
    next_token = ""
    for name in names:
        if start and name < start:
            continue
        rest = name[len(prefix) :]
        if delimiter and delimiter in rest:
            prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
            continue
        if len(items) == limit:
            next_token = name
            break
        items.append(gcs.objects[(bucket, name)].resource(gcs.base_url))
    payload: dict[str, Any] = {"kind": "storage#objects"}
    if items:
        payload["items"] = items
    if prefixes:
        payload["prefixes"] = sorted(prefixes)
    if next_token:
        payload["nextPageToken"] = next_token
    return ctx.ok(payload)


def get_object(ctx: Ctx, bucket: str, name: str) -> FakeResponse:
    gcs = ctx.fake.storage
    obj = gcs.require_object(bucket, name)
    gcs.check_preconditions(bucket, name, ctx.request.query)
    if ctx.request.query.get("alt") == "media":
        return _media(ctx, obj)
    return ctx.ok(_fields(obj.resource(gcs.base_url), ctx.request.query))


def _media(ctx: Ctx, obj: StoredObject) -> FakeResponse:
    headers = {
        "content-type": obj.content_type,
        "x-goog-generation": str(obj.generation),
        "x-goog-metageneration": str(obj.metageneration),
        "x-goog-stored-content-length": str(len(obj.data)),
        "x-goog-stored-content-encoding": "identity",
        "x-goog-hash": f"crc32c={crc32c_b64(obj.data)},md5={md5_b64(obj.data)}",
        "accept-ranges": "bytes",
    }
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", ctx.request.headers.get("range", ""))
    if not match:
        return FakeResponse(200, obj.data, headers)
    first = int(match.group(1))
    last = min(int(match.group(2) or len(obj.data) - 1), len(obj.data) - 1)
    if first >= len(obj.data) and obj.data:
        raise ApiError(416, "The requested range cannot be satisfied.")
    headers["content-range"] = f"bytes {first}-{last}/{len(obj.data)}"
    return FakeResponse(206, obj.data[first : last + 1], headers)


def download(ctx: Ctx, bucket: str, name: str) -> FakeResponse:
    gcs = ctx.fake.storage
    obj = gcs.require_object(bucket, name)
    gcs.check_preconditions(bucket, name, ctx.request.query)
    return _media(ctx, obj)


def delete_object(ctx: Ctx, bucket: str, name: str) -> FakeResponse:
    gcs = ctx.fake.storage
    gcs.require_object(bucket, name)
    gcs.check_preconditions(bucket, name, ctx.request.query)
    del gcs.objects[(bucket, name)]
    return FakeResponse(204)


def _multipart_related(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes, str]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ApiError(400, "Multipart upload without a boundary.")
    parts = body.split(b"--" + match.group(1).encode())
    sections = [p for p in parts[1:] if not p.startswith(b"--")]
    if len(sections) != 2:
        raise ApiError(400, "A multipart upload needs exactly a metadata part and a media part.")
    out = []
    for part in sections:
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        ctype = re.search(rb"(?im)^content-type:\s*([^\r\n]+)", head)
        out.append((ctype.group(1).decode() if ctype else "", data.removesuffix(b"\r\n")))
    try:
        metadata = json.loads(out[0][1] or b"{}")
    except ValueError:
        raise ApiError(400, "Metadata part is not JSON.") from None
    return metadata, out[1][1], out[1][0]


def upload(ctx: Ctx, bucket: str) -> FakeResponse:
    gcs = ctx.fake.storage
    gcs.require_bucket(bucket)
    q, request = ctx.request.query, ctx.request
    kind = q.get("uploadType", "")
    if kind == "media":
        name = q.get("name") or ""
        metadata: dict[str, Any] = {"name": name}
        data, ctype = request.body, request.headers.get("content-type", "")
    elif kind == "multipart":
        metadata, data, ctype = _multipart_related(
            request.headers.get("content-type", ""), request.body
        )
    elif kind == "resumable":
        return _start_session(ctx, bucket)
    else:
        raise ApiError(400, f"Unsupported uploadType '{kind}'.")
    name = metadata.get("name") or q.get("name") or ""
    if not name:
        raise ApiError(400, "Required: the object name.")
    gcs.check_preconditions(bucket, name, q)
    _check_hashes(data, {k: metadata[k] for k in ("crc32c", "md5Hash") if k in metadata})
    obj = gcs.store(
        bucket,
        name,
        data,
        metadata.get("contentType") or ctype or "application/octet-stream",
        metadata.get("metadata"),
    )
    return ctx.ok(obj.resource(gcs.base_url))


def _start_session(ctx: Ctx, bucket: str) -> FakeResponse:
    gcs = ctx.fake.storage
    metadata = ctx.body()
    name = metadata.get("name") or ctx.request.query.get("name") or ""
    if not name:
        raise ApiError(400, "Required: the object name.")
    gcs.check_preconditions(bucket, name, ctx.request.query)
    upload_id = gcs.new_session_id()
    gcs.sessions[upload_id] = UploadSession(
        bucket=bucket,
        name=name,
        content_type=metadata.get("contentType")
        or ctx.request.headers.get("x-upload-content-type")
        or "application/octet-stream",
        metadata=metadata.get("metadata") or {},
        query=dict(ctx.request.query),
        expected={k: metadata[k] for k in ("crc32c", "md5Hash") if k in metadata},
    )
    location = (
        f"{gcs.base_url}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={upload_id}"
    )
    return FakeResponse(200, b"", {"location": location, "x-guploader-uploadid": upload_id})


def put_chunk(ctx: Ctx, bucket: str) -> FakeResponse:
    gcs = ctx.fake.storage
    upload_id = ctx.request.query.get("upload_id", "")
    session = gcs.sessions.get(upload_id)
    if session is None or session.bucket != bucket:
        raise ApiError(404, "No such upload session.")
    if session.done is not None:
        return ctx.ok(session.done.resource(gcs.base_url))
    match = re.fullmatch(
        r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", ctx.request.headers.get("content-range", "")
    )
    if not match:
        raise ApiError(400, "Failed to parse Content-Range header.")
    first, _last, total = match.groups()
    body = ctx.request.body
    if first is not None:
        offset = int(first)
        if offset > len(session.data):
            return _incomplete(session)  # a gap: tell the client what we have
        session.data[offset:] = b""  # a resent chunk replaces what followed it
        session.data += body
    if total == "*" or int(total) > len(session.data):
        return _incomplete(session)
    data = bytes(session.data[: int(total)])
    _check_hashes(
        data, {**session.expected, **_goog_hash(ctx.request.headers.get("x-goog-hash", ""))}
    )
    gcs.check_preconditions(session.bucket, session.name, session.query)
    session.done = gcs.store(
        session.bucket, session.name, data, session.content_type, session.metadata
    )
    return ctx.ok(session.done.resource(gcs.base_url))


def _incomplete(session: UploadSession) -> FakeResponse:
    headers = {"x-guploader-uploadid": "fake"}
    if session.data:
        headers["range"] = f"bytes=0-{len(session.data) - 1}"
    return FakeResponse(308, b"", headers)


def cancel_upload(ctx: Ctx, bucket: str) -> FakeResponse:
    ctx.fake.storage.sessions.pop(ctx.request.query.get("upload_id", ""), None)
    return FakeResponse(499, b"")


_B = r"(?P<bucket>[^/]+)"
_O = r"(?P<name>.+)"
#: (method, path regex, operation name, handler); object names arrive percent-encoded.
ROUTES = [
    ("GET", r"/storage/v1/b", "storage.buckets.list", list_buckets),
    ("POST", r"/storage/v1/b", "storage.buckets.insert", insert_bucket),
    ("GET", rf"/storage/v1/b/{_B}", "storage.buckets.get", get_bucket),
    ("DELETE", rf"/storage/v1/b/{_B}", "storage.buckets.delete", delete_bucket),
    ("GET", rf"/storage/v1/b/{_B}/o", "storage.objects.list", list_objects),
    ("GET", rf"/storage/v1/b/{_B}/o/{_O}", "storage.objects.get", get_object),
    ("DELETE", rf"/storage/v1/b/{_B}/o/{_O}", "storage.objects.delete", delete_object),
    ("GET", rf"/download/storage/v1/b/{_B}/o/{_O}", "storage.objects.download", download),
    ("POST", rf"/upload/storage/v1/b/{_B}/o", "storage.objects.insert", upload),
    ("PUT", rf"/upload/storage/v1/b/{_B}/o", "storage.objects.upload_chunk", put_chunk),
    ("DELETE", rf"/upload/storage/v1/b/{_B}/o", "storage.objects.cancel_upload", cancel_upload),
]


def unquote_groups(groups: dict[str, str]) -> dict[str, str]:
    """Object names and bucket names from the path, percent-decoded."""
    return {k: unquote(v) for k, v in groups.items()}
