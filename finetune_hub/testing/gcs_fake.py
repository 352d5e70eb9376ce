"""Cloud Storage state in the fake: buckets, objects (with crc32c and md5), resumable sessions.

The JSON API routes that google-cloud-storage calls are in `gcs_fake_routes`; `FakeVertex`
serves both on its loopback server (`STORAGE_EMULATOR_HOST` points at it).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .vertex_fake_wire import ApiError, int64, rfc3339

__all__ = ["FakeStorage", "StoredObject", "crc32c_b64", "md5_b64", "split_uri"]


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
    try:
        import google_crc32c  # ships with google-cloud-storage; pure Python below otherwise

        return google_crc32c.value(data)
    except ImportError:
        if not _TABLE:
            _TABLE.extend(_crc32c_table())
        crc = 0xFFFFFFFF
        for byte in data:
            crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def crc32c_b64(data: bytes) -> str:
    """Cloud Storage's `crc32c`: base64 of the big-endian CRC32C.

    >>> crc32c_b64(b"hello world")
    'yZRlqg=='
    """
    return base64.b64encode(struct.pack(">I", _crc32c(data))).decode()


def md5_b64(data: bytes) -> str:
    """Cloud Storage's `md5Hash`: base64 of the MD5 digest."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass
class StoredObject:
    """An object as stored; `resource()` is its JSON metadata."""

    bucket: str
    name: str
    data: bytes
    generation: int
    created: float
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    metageneration: int = 1

    def resource(self, base_url: str) -> dict[str, Any]:
        quoted = quote(self.name, safe="")
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "selfLink": f"{base_url}/storage/v1/b/{self.bucket}/o/{quoted}",
            "mediaLink": f"{base_url}/download/storage/v1/b/{self.bucket}/o/{quoted}"
            f"?generation={self.generation}&alt=media",
            "name": self.name,
            "bucket": self.bucket,
            "generation": int64(self.generation),
            "metageneration": int64(self.metageneration),
            "contentType": self.content_type,
            "storageClass": "STANDARD",
            "size": int64(len(self.data)),
            "md5Hash": md5_b64(self.data),
            "crc32c": crc32c_b64(self.data),
            "etag": base64.b64encode(f"{self.generation}".encode()).decode(),
            "timeCreated": rfc3339(self.created),
            "updated": rfc3339(self.created),
            **({"metadata": dict(self.metadata)} if self.metadata else {}),
        }


@dataclass
class UploadSession:
    """A resumable upload in progress (bytes received so far, and what to check at the end)."""

    bucket: str
    name: str
    content_type: str
    metadata: dict[str, str]
    query: dict[str, str]
    expected: dict[str, str]  # crc32c / md5Hash given in the initiating metadata
    data: bytearray = field(default_factory=bytearray)
    done: StoredObject | None = None


class FakeStorage:
    """Buckets, objects and resumable sessions of the Cloud Storage fake (thread-safe via the
    owning `FakeVertex`'s lock).

    >>> from finetune_hub.testing.fake_clock import FakeClock
    >>> gcs = FakeStorage(FakeClock())
    >>> gcs.create_bucket("b")
    >>> gcs.put("gs://b/data/train.jsonl", b"{}")
    >>> gcs.get("gs://b/data/train.jsonl")
    b'{}'
    """

    def __init__(self, clock: Any, project_number: str = "123456789012") -> None:
        self.clock = clock
        self.project_number = project_number
        self.buckets: dict[str, float] = {}
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.sessions: dict[str, UploadSession] = {}
        self._generations = itertools.count(1)
        self._session_ids = itertools.count(1)
        self.base_url = ""

    # --- direct access for tests ---------------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        """Create bucket `name` (no-op when it exists)."""
        self.buckets.setdefault(name, self.clock.now())

    def put(self, uri: str, data: bytes | str, content_type: str = "application/octet-stream"):
        """Store `data` at `gs://bucket/name` (the bucket is created when missing)."""
        bucket, name = split_uri(uri)
        self.create_bucket(bucket)
        self.store(bucket, name, data.encode() if isinstance(data, str) else data, content_type)

    def get(self, uri: str) -> bytes:
        """The bytes at `gs://bucket/name` (KeyError when missing)."""
        return self.objects[split_uri(uri)].data

    def exists(self, uri: str) -> bool:
        """Whether `gs://bucket/name` exists."""
        return split_uri(uri) in self.objects

    def list(self, prefix: str = "gs://") -> list[str]:
        """`gs://` URIs of every object whose URI starts with `prefix`, sorted."""
        uris = (f"gs://{b}/{n}" for b, n in self.objects)
        return sorted(u for u in uris if u.startswith(prefix))

    # --- used by the routes ------------------------------------------------------------------------

    def new_session_id(self) -> str:
        return f"fake-upload-{next(self._session_ids)}"

    def store(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        generation = int(self.clock.now() * 1_000_000) + next(self._generations)
        obj = StoredObject(
            bucket, name, data, generation, self.clock.now(), content_type, metadata or {}
        )
        self.objects[(bucket, name)] = obj
        return obj

    def require_bucket(self, name: str) -> None:
        if name not in self.buckets:
            raise ApiError(404, "The specified bucket does not exist.")

    def require_object(self, bucket: str, name: str) -> StoredObject:
        self.require_bucket(bucket)
        obj = self.objects.get((bucket, name))
        if obj is None:
            raise ApiError(404, f"No such object: {bucket}/{name}")
        return obj

    def check_preconditions(self, bucket: str, name: str, query: dict[str, str]) -> None:
        """412 when `ifGenerationMatch` / `ifGenerationNotMatch` / `ifMetagenerationMatch` fail."""
        obj = self.objects.get((bucket, name))
        generation = obj.generation if obj else 0
        failed = (
            ("ifGenerationMatch" in query and int(query["ifGenerationMatch"]) != generation)
            or (
                "ifGenerationNotMatch" in query and int(query["ifGenerationNotMatch"]) == generation
            )
            or (
                "ifMetagenerationMatch" in query
                and (obj is None or int(query["ifMetagenerationMatch"]) != obj.metageneration)
            )
        )
        if failed:
            raise ApiError(
                412,
                "At least one of the pre-conditions you specified did not hold.",
                location="If-Match",
            )


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b")."""
    match = re.fullmatch(r"gs://([^/]+)/(.+)", uri)
    if not match:
        raise ValueError(f"not a gs://bucket/object URI: {uri!r}")
    return match.group(1), match.group(2)
