"""What Vertex AI can answer before any upload (`VertexBackend.preflight`): the Cloud Storage
bucket of `gcs_uri` is there and this caller may read it (`buckets.get`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue, Severity

if TYPE_CHECKING:
    from finetune_hub.providers.base import PreparedJob
    from finetune_hub.providers.vertex import VertexBackend


def preflight(backend: VertexBackend, job: PreparedJob) -> list[Issue]:
    """The bucket reachable; a missing `gcs_uri` is left to `check()`."""
    connection = backend.connection
    if not backend.options.gcs_uri:
        return []
    try:
        bucket, _prefix = connection.gcs_prefix()
    except ProviderError:
        return []  # a malformed gcs_uri: check() and the upload say so
    try:
        client = connection.storage
        backend.call(
            "preflight:buckets.get",
            lambda: client.get_bucket(bucket, timeout=backend.options.timeout, retry=None),
        )
    except ProviderError as exc:
        if exc.status_code == 404:
            what, code = f"the Cloud Storage bucket {bucket!r} does not exist", "bucket_not_found"
        elif exc.status_code in (401, 403):
            what, code = f"this caller may not read the bucket {bucket!r}", "bucket_access_denied"
        else:
            return [
                Issue(
                    code="preflight_not_checked",
                    field="options.gcs_uri",
                    severity=Severity.WARNING,
                    message=f"could not check the bucket of {backend.options.gcs_uri} ({exc.message})",
                )
            ]
        return [
            Issue(
                code=code,
                field="options.gcs_uri",
                message=f"{what} ({exc.status_code}: {exc.message}); the upload would fail. Fix: "
                "create it (gcloud storage buckets create gs://NAME --location REGION), grant the "
                "caller storage.objects.create on it, or set options['gcs_uri']",
            )
        ]
    return []
