"""Files and Uploads routes of the OpenAI fake (`/files`, `/uploads`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .fake_http import FakeResponse, parse_multipart
from .openai_fake_wire import Ctx, WireError, cursor_page, not_found

FILE_PURPOSES = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals", "fine-tune-results"}
)
MAX_UPLOAD_BYTES = 8 * 1024**3
MAX_PART_BYTES = 64 * 1024**2
UPLOAD_LIFETIME_S = 3600


@dataclass
class StoredFile:
    """A file the fake holds; `status` turns "processed" (or "error") once `ready_at` passes."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: float
    ready_at: float
    problem: str | None = None  # why processing fails (status "error")
    expires_at: int | None = None

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return "uploaded"
        return "error" if self.problem else "processed"

    def render(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        return {
            "object": "file",
            "id": self.id,
            "bytes": len(self.data),
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": status,
            "status_details": self.problem if status == "error" else None,
            "expires_at": self.expires_at,
        }


@dataclass
class StoredUpload:
    id: str
    filename: str
    purpose: str
    mime_type: str
    bytes: int
    created_at: int
    status: str = "pending"
    parts: dict[str, bytes] = field(default_factory=dict)
    file_id: str | None = None

    @property
    def expires_at(self) -> int:
        return self.created_at + UPLOAD_LIFETIME_S

    def current_status(self, now: float) -> str:
        return "expired" if self.status == "pending" and now > self.expires_at else self.status


def jsonl_problem(data: bytes) -> str | None:
    """Why `data` is not JSONL with one JSON object per line (None when it is)."""
    text = data.decode("utf-8-sig", errors="replace")
    if not text.strip():
        return "Invalid file format. The file is empty."
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            return f"Invalid file format. Line {number} is not valid JSON."
        if not isinstance(record, dict):
            return f"Invalid file format. Line {number} is not a JSON object."
    return None


def render_file(ctx: Ctx, stored: StoredFile) -> dict[str, Any]:
    return stored.render(ctx.fake.clock.now())


def _file(ctx: Ctx, file_id: str) -> StoredFile:
    stored = ctx.fake.files.get(file_id)
    if stored is None:
        raise not_found(ctx.surface, "File", file_id)
    return stored


def create_file(ctx: Ctx) -> FakeResponse:
    content_type = ctx.request.headers.get("content-type", "")
    if "multipart/form-data" not in content_type:
        raise WireError.openai(
            400, "Expected a multipart/form-data body with 'file' and 'purpose'."
        )
    form = parse_multipart(content_type, ctx.request.body)
    if "file" not in form:
        raise WireError.openai(400, "Missing required parameter: 'file'.", param="file")
    purpose = form.get("purpose", (None, b""))[1].decode().strip()
    _check_purpose(purpose)
    filename, data = form["file"]
    filename = filename or "upload"
    if purpose == "fine-tune" and not filename.endswith(".jsonl"):
        raise WireError.openai(
            400,
            f"Invalid file format for Fine-Tuning API. Must be .jsonl (got {filename!r}).",
            param="file",
            code="invalid_file_format",
        )
    seconds = form.get("expires_after[seconds]", (None, b""))[1].decode().strip()
    file_id = ctx.fake.add_file(data, filename=filename, purpose=purpose, surface=ctx.surface)
    stored = ctx.fake.files[file_id]
    if seconds:
        stored.expires_at = int(stored.created_at) + int(seconds)
    return ctx.ok(render_file(ctx, stored))


def _check_purpose(purpose: str) -> None:
    if purpose not in FILE_PURPOSES - {"fine-tune-results"}:
        raise WireError.openai(
            400,
            f"'{purpose}' is not one of {sorted(FILE_PURPOSES - {'fine-tune-results'})} - "
            "'purpose'",
            param="purpose",
        )


def list_files(ctx: Ctx) -> FakeResponse:
    files = sorted(ctx.fake.files.values(), key=lambda f: f.created_at)
    if ctx.query.get("order", "desc") != "asc":
        files.reverse()
    if purpose := ctx.query.get("purpose"):
        files = [f for f in files if f.purpose == purpose]
    query = {"limit": "10000", **ctx.query}
    return ctx.ok(cursor_page([render_file(ctx, f) for f in files], query))


def get_file(ctx: Ctx, file_id: str) -> FakeResponse:
    return ctx.ok(render_file(ctx, _file(ctx, file_id)))


def delete_file(ctx: Ctx, file_id: str) -> FakeResponse:
    _file(ctx, file_id)
    del ctx.fake.files[file_id]
    return ctx.ok({"id": file_id, "object": "file", "deleted": True})


def file_content(ctx: Ctx, file_id: str) -> FakeResponse:
    stored = _file(ctx, file_id)
    content_type = "text/csv" if stored.filename.endswith(".csv") else "application/octet-stream"
    return FakeResponse(200, stored.data, {"content-type": content_type})


# --- uploads (large files in parts) -----------------------------------------------------


def _upload(ctx: Ctx, upload_id: str, *, pending: bool = False) -> StoredUpload:
    upload = ctx.fake.uploads.get(upload_id)
    if upload is None:
        raise not_found(ctx.surface, "Upload", upload_id)
    status = upload.current_status(ctx.fake.clock.now())
    if pending and status != "pending":
        raise WireError.openai(
            400, f"Upload {upload_id} is {status}; only a pending Upload accepts this."
        )
    return upload


def render_upload(ctx: Ctx, upload: StoredUpload) -> dict[str, Any]:
    stored = ctx.fake.files.get(upload.file_id) if upload.file_id else None
    return {
        "object": "upload",
        "id": upload.id,
        "bytes": upload.bytes,
        "created_at": upload.created_at,
        "expires_at": upload.expires_at,
        "filename": upload.filename,
        "purpose": upload.purpose,
        "status": upload.current_status(ctx.fake.clock.now()),
        "file": render_file(ctx, stored) if stored else None,
    }


def create_upload(ctx: Ctx) -> FakeResponse:
    body = ctx.body()
    for name in ("bytes", "filename", "mime_type", "purpose"):
        if body.get(name) in (None, ""):
            raise WireError.openai(400, f"Missing required parameter: '{name}'.", param=name)
    _check_purpose(body["purpose"])
    size = body["bytes"]
    if not isinstance(size, int) or not 0 < size <= MAX_UPLOAD_BYTES:
        raise WireError.openai(
            400, f"'bytes' must be an integer between 1 and {MAX_UPLOAD_BYTES}.", param="bytes"
        )
    upload = StoredUpload(
        id=f"upload_{ctx.fake.ids.alnum(24)}",
        filename=body["filename"],
        purpose=body["purpose"],
        mime_type=body["mime_type"],
        bytes=size,
        created_at=ctx.now,
    )
    ctx.fake.uploads[upload.id] = upload
    return ctx.ok(render_upload(ctx, upload))


def add_upload_part(ctx: Ctx, upload_id: str) -> FakeResponse:
    upload = _upload(ctx, upload_id, pending=True)
    form = parse_multipart(ctx.request.headers.get("content-type", ""), ctx.request.body)
    if "data" not in form:
        raise WireError.openai(400, "Missing required parameter: 'data'.", param="data")
    data = form["data"][1]
    if len(data) > MAX_PART_BYTES:
        raise WireError.openai(
            400, f"A part may hold at most {MAX_PART_BYTES} bytes (got {len(data)}).", param="data"
        )
    part_id = f"part_{ctx.fake.ids.alnum(24)}"
    upload.parts[part_id] = data
    return ctx.ok(
        {"object": "upload.part", "id": part_id, "created_at": ctx.now, "upload_id": upload.id}
    )


def complete_upload(ctx: Ctx, upload_id: str) -> FakeResponse:
    upload = _upload(ctx, upload_id, pending=True)
    body = ctx.body()
    part_ids = body.get("part_ids")
    if not isinstance(part_ids, list) or not part_ids:
        raise WireError.openai(400, "'part_ids' must be a non-empty list.", param="part_ids")
    unknown = [p for p in part_ids if p not in upload.parts]
    if unknown:
        raise WireError.openai(
            400, f"Unknown part id(s) for Upload {upload_id}: {unknown}", param="part_ids"
        )
    data = b"".join(upload.parts[p] for p in part_ids)
    if len(data) != upload.bytes:
        raise WireError.openai(
            400,
            f"The number of bytes uploaded ({len(data)}) does not match the number of bytes "
            f"specified ({upload.bytes}) when the Upload was created.",
            param="part_ids",
        )
    md5 = body.get("md5")
    if md5 and md5 != hashlib.md5(data).hexdigest():
        raise WireError.openai(
            400, "The md5 checksum does not match the uploaded bytes.", param="md5"
        )
    upload.file_id = ctx.fake.add_file(
        data, filename=upload.filename, purpose=upload.purpose, surface=ctx.surface
    )
    upload.status = "completed"
    return ctx.ok(render_upload(ctx, upload))


def cancel_upload(ctx: Ctx, upload_id: str) -> FakeResponse:
    upload = _upload(ctx, upload_id, pending=True)
    upload.status = "cancelled"
    return ctx.ok(render_upload(ctx, upload))


_ID = r"(?P<{}>[^/]+)"
ROUTES = [
    ("POST", r"/files", create_file),
    ("GET", r"/files", list_files),
    ("GET", rf"/files/{_ID.format('file_id')}", get_file),
    ("DELETE", rf"/files/{_ID.format('file_id')}", delete_file),
    ("GET", rf"/files/{_ID.format('file_id')}/content", file_content),
    ("POST", r"/uploads", create_upload),
    ("POST", rf"/uploads/{_ID.format('upload_id')}/parts", add_upload_part),
    ("POST", rf"/uploads/{_ID.format('upload_id')}/complete", complete_upload),
    ("POST", rf"/uploads/{_ID.format('upload_id')}/cancel", cancel_upload),
]
