"""Training files to Cloud Storage for Vertex AI: checksummed, resumable when large, and never
overwriting a different object.

Each file goes to `{gcs_uri}/{job_id}/{purpose}.jsonl`. An object already there with the same
CRC32C is reused (a retried submit uploads nothing twice); a different one is refused, never
replaced. The upload itself is conditional (`ifGenerationMatch=0`), so a race with another
writer also ends in a refusal or a reuse, not an overwrite. Files over 8 MiB go as resumable
uploads in `CHUNK_BYTES` chunks (a dropped connection resumes, it does not restart); every upload
is checked against the CRC32C Cloud Storage computes.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import DataRef

#: Resumable chunk size (a multiple of 256 KiB, as Cloud Storage requires).
CHUNK_BYTES = 16 * 1024 * 1024
#: google-cloud-storage's own switch-over from one multipart request to a resumable upload.
MULTIPART_LIMIT = 8 * 1024 * 1024


def file_crc32c(path: str) -> str:
    """Cloud Storage's `crc32c` of a local file: base64 of the big-endian CRC32C."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode()


def object_name(prefix: str, job_id: str, purpose: str) -> str:
    """`{prefix}/{job_id}/{purpose}.jsonl` (no leading slash when the prefix is empty).

    >>> object_name("finetune-hub", "ftj_1", "training")
    'finetune-hub/ftj_1/training.jsonl'
    """
    return "/".join(p for p in (prefix, job_id, f"{purpose}.jsonl") if p)


def upload_jsonl(connection: Any, path: str, purpose: str, job_id: str) -> DataRef:
    """Put `path` at `{gcs_uri}/{job_id}/{purpose}.jsonl` (see the module doc) and return its ref."""

    bucket_name, prefix = connection.gcs_prefix()
    name = object_name(prefix, job_id, purpose)
    uri = f"gs://{bucket_name}/{name}"
    size = os.path.getsize(path)
    local = file_crc32c(path)
    bucket = connection.storage.bucket(bucket_name)

    def existing_matches() -> bool:
        blob = connection.call(
            "upload", lambda: bucket.get_blob(name, retry=None, timeout=connection.options.timeout)
        )
        if blob is None:
            return False
        if blob.crc32c != local:
            raise ProviderError(
                connection.provider,
                "upload",
                f"{uri} already holds a different file (crc32c {blob.crc32c}, this one "
                f"{local}); finetune_hub never overwrites it. Delete it or use another gcs_uri.",
                retryable=False,
            )
        return True

    if not existing_matches():
        blob = bucket.blob(name, chunk_size=CHUNK_BYTES if size > MULTIPART_LIMIT else None)
        try:
            connection.call(
                "upload",
                lambda: blob.upload_from_filename(
                    path,
                    content_type="application/jsonl",
                    if_generation_match=0,
                    checksum="crc32c",
                    retry=None,
                    timeout=connection.options.timeout,
                ),
            )
        except ProviderError as exc:
            if exc.status_code != 412 or not existing_matches():
                raise  # 412: someone wrote it meanwhile; the same bytes are fine
    return DataRef(purpose=purpose, id=uri, path=str(path), bytes=size)
