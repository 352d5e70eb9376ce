"""Training files to the project's default datastore (Azure Blob Storage), with azure-storage-blob.

The blob is `finetune_hub/<job id>/<purpose>.jsonl` in the workspace's default blob datastore,
written with `If-None-Match: *` and the file's SHA-256 in its metadata: an identical file already
there is reused, a different one is never overwritten. Large files go up in blocks (Put Block +
Put Block List). The job then reads it as `azureml://datastores/<datastore>/paths/<blob>`.

Why not `ml.data.create_or_update(Data(path=...))`, the path Azure's samples use: azure-ai-ml
builds that blob client itself, without the `MLClient`'s transport or retry settings, so it can
be neither pointed elsewhere (the fakes) nor kept from retrying on its own.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import DataRef

if TYPE_CHECKING:
    from finetune_hub.providers.azure_foundry import AzureFoundryConnection

__all__ = ["blob_path", "upload_file"]

SHA_KEY = "finetune_hub_sha256"
#: single Put Blob up to this size, blocks of `BLOCK_BYTES` above it
SINGLE_PUT_BYTES = 64 * 1024 * 1024
BLOCK_BYTES = 8 * 1024 * 1024


def blob_path(job_id: str, purpose: str) -> str:
    """Where a job's file goes in the datastore.

    >>> blob_path("ftj_1a2b", "training")
    'finetune_hub/ftj_1a2b/training.jsonl'
    """
    return f"finetune_hub/{job_id}/{purpose}.jsonl"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_file(
    connection: AzureFoundryConnection, path: str, purpose: str, job_id: str
) -> DataRef:
    """Upload `path` (plain JSONL) for `job_id`; returns the `azureml://datastores/...` ref."""
    from azure.storage.blob import ContentSettings

    size = os.path.getsize(path)
    digest = sha256_of(path)
    name = blob_path(job_id, purpose)
    datastore = connection.call(
        "upload", lambda: connection.ml.datastores.get_default(include_secrets=True)
    )
    blob = _blob_client(connection, datastore, name)
    uri = f"azureml://datastores/{datastore.name}/paths/{name}"

    seconds = connection.options.timeout
    timeouts = {"connection_timeout": seconds, "read_timeout": seconds}

    def put() -> None:
        with open(path, "rb") as f:
            blob.upload_blob(
                f,
                length=size,
                overwrite=False,
                metadata={SHA_KEY: digest},
                content_settings=ContentSettings(content_type="application/jsonl"),
                **timeouts,
            )

    try:
        connection.call("upload", put)
    except ProviderError as exc:
        if exc.status_code != 409:
            raise
        existing = connection.call("upload", lambda: blob.get_blob_properties(**timeouts))
        if (existing.metadata or {}).get(SHA_KEY) != digest:
            raise ProviderError(
                connection.provider,
                "upload",
                f"{uri} already holds a different file; finetune_hub never overwrites it "
                "(delete that blob, or submit under a new job)",
                status_code=409,
                retryable=False,
            ) from None
    return DataRef(purpose=purpose, id=uri, path=str(path), bytes=size)


def _blob_client(connection: AzureFoundryConnection, datastore: Any, name: str) -> Any:
    from azure.storage.blob import BlobClient

    protocol = getattr(datastore, "protocol", None) or "https"
    endpoint = getattr(datastore, "endpoint", None) or "core.windows.net"
    account_url = f"{protocol}://{datastore.account_name}.blob.{endpoint}"
    kwargs: dict[str, Any] = {
        "max_single_put_size": SINGLE_PUT_BYTES,
        "max_block_size": BLOCK_BYTES,
        "retry_total": 0,  # the job layer retries the whole upload
    }
    if connection.options.transport is not None:
        kwargs["transport"] = connection.options.transport
    return BlobClient(
        account_url,
        datastore.container_name,
        name,
        credential=_storage_credential(connection, datastore),
        **kwargs,
    )


def _storage_credential(connection: AzureFoundryConnection, datastore: Any) -> Any:
    """The datastore's SAS token or account key, else the Entra ID credential (identity-based
    datastores)."""
    creds = getattr(datastore, "credentials", None)
    sas = getattr(creds, "sas_token", None)
    if sas:
        return sas
    key = getattr(creds, "account_key", None)
    if key:
        return {"account_name": datastore.account_name, "account_key": key}
    return connection.credential()
