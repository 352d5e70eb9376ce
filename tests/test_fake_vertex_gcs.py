"""FakeVertex's Cloud Storage JSON API, driven by the real google-cloud-storage client through
STORAGE_EMULATOR_HOST (set by the fake_vertex fixture)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest

storage = pytest.importorskip("google.cloud.storage")
from google.api_core import exceptions  # noqa: E402
from google.cloud.storage import Client  # noqa: E402
from google.cloud.storage.retry import DEFAULT_RETRY  # noqa: E402

from finetune_hub.testing.gcs_fake import crc32c_b64  # noqa: E402


@pytest.fixture
def bucket(fake_vertex):
    return Client(project=fake_vertex.project).bucket(fake_vertex.bucket)


def test_small_upload_is_multipart_with_checksums(fake_vertex, bucket):
    blob = bucket.blob("finetune-hub/small.jsonl")
    blob.upload_from_string(b'{"a": 1}\n', content_type="application/jsonl", if_generation_match=0)
    inserts = fake_vertex.sent("POST", "storage.objects.insert")
    assert [r.query.get("uploadType") for r in inserts] == ["multipart"], fake_vertex.requests
    meta = bucket.get_blob("finetune-hub/small.jsonl")
    assert meta.size == 9 and meta.content_type == "application/jsonl"
    assert meta.crc32c == crc32c_b64(b'{"a": 1}\n') and meta.md5_hash
    assert fake_vertex.storage.get(f"gs://{fake_vertex.bucket}/finetune-hub/small.jsonl") == (
        b'{"a": 1}\n'
    )


def test_overwrite_is_refused_with_412(bucket):
    bucket.blob("x.jsonl").upload_from_string(b"one", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed) as err:
        bucket.blob("x.jsonl").upload_from_string(b"two", if_generation_match=0)
    assert err.value.code == 412
    assert bucket.blob("x.jsonl").download_as_bytes() == b"one"
    current = bucket.get_blob("x.jsonl").generation
    bucket.blob("x.jsonl").upload_from_string(b"three", if_generation_match=current)
    assert bucket.blob("x.jsonl").download_as_bytes() == b"three"


def test_large_upload_is_resumable_and_crc32c_checked(fake_vertex, bucket, tmp_path):
    data = os.urandom(8 * 1024 * 1024 + 4096)  # just over the 8 MiB multipart limit
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    blob = bucket.blob("finetune-hub/big.bin")
    blob.upload_from_filename(str(path), if_generation_match=0)
    uploads = [r for r in fake_vertex.requests if r.operation.startswith("storage.objects.")]
    ops = [(r.method, r.operation, r.query.get("uploadType")) for r in uploads]
    assert ops == [
        ("POST", "storage.objects.insert", "resumable"),
        ("PUT", "storage.objects.upload_chunk", "resumable"),
    ]
    assert uploads[-1].headers["x-goog-hash"] == f"crc32c={crc32c_b64(data)}"
    assert blob.crc32c == crc32c_b64(data)  # the client checked it against its own
    assert blob.download_as_bytes() == data  # download verifies x-goog-hash too


def test_chunked_resumable_upload_answers_308_until_the_end(fake_vertex, bucket, tmp_path):
    data = os.urandom(8 * 1024 * 1024 + 17)  # resumable only above 8 MiB, whatever chunk_size
    path = tmp_path / "chunks.bin"
    path.write_bytes(data)
    bucket.blob("chunks.bin", chunk_size=4 * 1024 * 1024).upload_from_filename(str(path))
    statuses = [r.status for r in fake_vertex.requests if r.method == "PUT"]
    assert statuses == [308, 308, 200]
    assert fake_vertex.storage.get(f"gs://{fake_vertex.bucket}/chunks.bin") == data


def test_a_resumable_session_refuses_an_existing_object_at_start(bucket, tmp_path):
    bucket.blob("taken.bin").upload_from_string(b"x")
    path = tmp_path / "big.bin"
    path.write_bytes(b"y" * (8 * 1024 * 1024 + 1))
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("taken.bin").upload_from_filename(str(path), if_generation_match=0)


def test_checksum_mismatch_is_a_400(fake_vertex):
    url = f"{fake_vertex.url}/upload/storage/v1/b/{fake_vertex.bucket}/o?uploadType=resumable"
    start = urllib.request.Request(
        url,
        data=json.dumps({"name": "bad.bin", "crc32c": "AAAAAA=="}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    location = urllib.request.urlopen(start).headers["location"]
    put = urllib.request.Request(
        location, data=b"abc", headers={"content-range": "bytes 0-2/3"}, method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(put)
    assert err.value.code == 400 and "CRC32C" in json.loads(err.value.read())["error"]["message"]
    assert not fake_vertex.storage.exists(f"gs://{fake_vertex.bucket}/bad.bin")


def test_list_download_range_delete_and_missing_objects(fake_vertex, bucket):
    client = fake_vertex.storage_client()  # the explicit client works the same as the env one
    for name in ("p/a.jsonl", "p/b.jsonl", "p/sub/c.jsonl", "q.jsonl"):
        bucket.blob(name).upload_from_string(name.encode())
    assert [b.name for b in client.list_blobs(fake_vertex.bucket, prefix="p/")] == [
        "p/a.jsonl",
        "p/b.jsonl",
        "p/sub/c.jsonl",
    ]
    pages = client.list_blobs(fake_vertex.bucket, prefix="p/", delimiter="/", page_size=1)
    assert [b.name for b in pages] == ["p/a.jsonl", "p/b.jsonl"] and pages.prefixes == {"p/sub/"}
    assert bucket.blob("q.jsonl").download_as_bytes(start=2, end=5) == b"json"
    bucket.blob("q.jsonl").delete()
    assert not bucket.blob("q.jsonl").exists()
    with pytest.raises(exceptions.NotFound):
        bucket.blob("q.jsonl").download_as_bytes()
    assert not client.bucket("no-such-bucket").exists()


def test_storage_faults(fake_vertex, bucket):
    bucket.blob("f.txt").upload_from_string(b"f")
    fake_vertex.inject("GET", "storage.objects.get", "503")
    fast = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.01)
    assert bucket.get_blob("f.txt", retry=fast).size == 1  # the client retries a 503 GET
    assert fake_vertex.count("GET", "storage.objects.get") == 2
    fake_vertex.inject("POST", "storage.objects.insert", "429", retry_after=0)
    bucket.blob("g.txt").upload_from_string(b"g", if_generation_match=0, retry=fast)
    tries = fake_vertex.sent("POST", "storage.objects.insert")[-2:]
    assert [r.status for r in tries] == [429, 200]
    fake_vertex.inject("POST", "storage.buckets.insert", "500", times=None)
    with pytest.raises(exceptions.InternalServerError):
        Client(project="p").create_bucket("new-bucket", retry=None)
