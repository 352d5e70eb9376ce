"""JobStore: round trips, transitions, events, filters, deployments, the no-secrets rule, and
several threads and twenty processes writing at once, each against SQLite (a file under
tmp_path) and a real PostgreSQL server started on 127.0.0.1 for the session (`fh_postgres`)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from store_support import STORE_KINDS, fresh_store_url

from finetune_hub.errors import FinetuneHubError
from finetune_hub.status import JobEvent, JobStatus
from finetune_hub.store import (
    DeploymentNotFound,
    DeploymentRecord,
    JobExists,
    JobNotFound,
    JobRecord,
    JobStore,
    SecretRefusedError,
    default_home,
    is_secret_key,
    new_job_id,
)
from finetune_hub.store.sqlite import DEPLOYMENT_COLUMNS, JOB_COLUMNS, SCHEMA_VERSION

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
FAKE_KEY = "sk-SECRET-123"


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path):
    yield from fresh_store_url(request, tmp_path)


@pytest.fixture
def store(store_url: str):
    with JobStore(url=store_url) as s:
        yield s


def all_text(store: JobStore) -> str:
    """Every value of every table, as text (to look for what must never be stored)."""
    tables = ("jobs", "transitions", "events", "deployments", "metrics")
    with store.db.reading() as s:
        return repr([s.all(f"SELECT * FROM {t}") for t in tables])


def columns(store: JobStore, table: str) -> list[str]:
    with store.db.reading() as s:
        if store.kind == "sqlite":
            return [r["name"] for r in s.all(f"PRAGMA table_info({table})")]
        rows = s.all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
            "ORDER BY ordinal_position",
            {"t": table},
        )
    return [r["column_name"] for r in rows if r["column_name"] != "seq"]


def job(**fields) -> JobRecord:
    base = {"provider": "openai", "base_model": "gpt-4.1-mini", "training_file": "train.jsonl"}
    return JobRecord(**{**base, **fields})


def event(i: int, **fields) -> JobEvent:
    return JobEvent(
        id=f"ev-{i}", created_at=T0 + dt.timedelta(seconds=i), message=f"step {i}", **fields
    )


# --- records and the file --------------------------------------------------------------------


def test_round_trip_of_every_field(store: JobStore) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    record = JobRecord(
        id=new_job_id(),
        provider="bedrock",
        base_model="amazon.titan-text-lite-v1",
        method="continued-pretraining",
        training_file=Path("data/train.jsonl"),
        validation_file="data/valid.jsonl",
        hyperparameters={"epochs": 3, "learning_rate": 1e-5, "batch_size": 2},
        suffix="support-bot",
        options={"region": "us-east-1", "role_arn": "arn:aws:iam::1:role/ft", "tags": ["a", "b"]},
        credentials={"aws": "profile:dev", "api_key": "env:OPENAI_API_KEY"},
        provider_job_id="arn:aws:bedrock:us-east-1:1:model-customization-job/abc",
        status=JobStatus.RUNNING,
        raw_status="InProgress",
        fine_tuned_model="arn:aws:bedrock:us-east-1:1:custom-model/xyz",
        error="none yet",
        data_refs={"training": "s3://bucket/prefix/train.jsonl", "sizes": [1, 2]},
        submitted_at=dt.datetime(2026, 3, 1, 13, 30, 5, 123456, tzinfo=cet),
        created_at=T0,
        updated_at=T0 + dt.timedelta(minutes=5),
        extra={"client_request_token": "ftj-abc", "nested": {"depth": [1, {"x": None}]}},
    )
    store.create(record)
    got = store.require(record.id)
    assert got == record
    assert got.model_dump() == record.model_dump()
    assert got.training_file == "data/train.jsonl"
    assert got.submitted_at == dt.datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=dt.UTC)
    assert got.submitted_at.tzinfo == dt.UTC
    assert list(got.hyperparameters) == ["epochs", "learning_rate", "batch_size"]  # order kept


def test_defaults_and_naive_datetimes_are_utc(store: JobStore) -> None:
    record = store.create(job(created_at=dt.datetime(2026, 1, 1, 9, 0)))
    got = store.require(record.id)
    assert got.status is JobStatus.PENDING and got.method == "sft"
    assert got.id.startswith("ftj_") and len(got.id) == 16
    assert got.created_at == dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)


def test_tables_match_the_records(store: JobStore) -> None:
    assert columns(store, "jobs") == JOB_COLUMNS
    assert columns(store, "deployments") == DEPLOYMENT_COLUMNS
    assert store.db.schema_version() == SCHEMA_VERSION


def test_home_from_environment_and_argument(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINETUNE_HUB_HOME", str(tmp_path / "from-env"))
    assert default_home() == tmp_path / "from-env"
    with JobStore() as s:
        assert s.path == tmp_path / "from-env" / "jobs.sqlite3"
        assert s.path.exists()
    with JobStore(tmp_path / "from-arg") as s:
        assert s.path == tmp_path / "from-arg" / "jobs.sqlite3"
    monkeypatch.delenv("FINETUNE_HUB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_home() == tmp_path / "user" / ".finetune_hub"


def test_wal_pragmas_and_schema_version(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    connection = store.db.connection
    assert connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert connection.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    store.close()


def test_reopening_is_idempotent_and_keeps_data(store_url: str) -> None:
    with JobStore(url=store_url) as first:
        record = first.create(job())
    with JobStore(url=store_url) as again, JobStore(url=store_url) as third:
        assert again.require(record.id) == record == third.require(record.id)


def test_store_from_a_newer_version_is_refused(store_url: str) -> None:
    with JobStore(url=store_url) as store, store.db.writing() as s:
        if store.kind == "sqlite":
            s.run("PRAGMA user_version = 99")
        else:
            s.run("UPDATE finetune_hub_schema SET version = 99")
    with pytest.raises(FinetuneHubError, match="newer finetune_hub"):
        JobStore(url=store_url)


def test_repr_shows_only_the_location(store: JobStore, tmp_path: Path) -> None:
    if store.kind == "sqlite":
        assert repr(store) == f"JobStore({str(store.path)!r})"
    else:
        assert repr(store) == f"JobStore({store.location!r})"
    with JobStore(tmp_path / "other") as plain:
        assert repr(plain) == f"JobStore({str(tmp_path / 'other' / 'jobs.sqlite3')!r})"


# --- jobs ------------------------------------------------------------------------------------


def test_duplicate_id_is_refused(store: JobStore) -> None:
    record = store.create(job())
    with pytest.raises(JobExists, match=record.id):
        store.create(job(id=record.id))


def test_job_not_found_says_how_to_list_jobs(store: JobStore) -> None:
    assert store.get("ftj_000000000000") is None
    with pytest.raises(JobNotFound) as info:
        store.require("ftj_000000000000")
    assert isinstance(info.value, FinetuneHubError)
    assert "ftj_000000000000" in str(info.value)
    assert "finetune-hub jobs" in str(info.value)
    for call in (
        lambda: store.update("ftj_000000000000", error="x"),
        lambda: store.record_status("ftj_000000000000", JobStatus.RUNNING),
        lambda: store.add_events("ftj_000000000000", [event(1)]),
    ):
        with pytest.raises(JobNotFound):
            call()


def test_update_changes_known_fields_only(store: JobStore) -> None:
    record = store.create(job(created_at=T0, updated_at=T0))
    updated = store.update(record.id, provider_job_id="ftjob-1", data_refs={"training": "file-1"})
    assert updated.provider_job_id == "ftjob-1" and updated.updated_at > T0
    assert store.require(record.id) == updated
    with pytest.raises(TypeError, match="colour"):
        store.update(record.id, colour="red")
    with pytest.raises(TypeError, match="'id'"):
        store.update(record.id, id="ftj_other")


def test_status_transitions_are_recorded_only_on_change(store: JobStore) -> None:
    record = store.create(job())
    at = T0 + dt.timedelta(hours=1)
    assert store.record_status(record.id, JobStatus.QUEUED, "queued", at=at, message="accepted")
    assert not store.record_status(record.id, "queued", "queued")
    assert store.record_status(record.id, JobStatus.RUNNING, "running")
    assert not store.record_status(record.id, JobStatus.RUNNING, "running")
    assert store.record_status(record.id, JobStatus.RUNNING, "running_epoch_2")  # raw changed
    store.update(record.id, error=None)  # no status change: no transition
    store.update(record.id, status=JobStatus.SUCCEEDED, raw_status="succeeded")

    history = store.transitions(record.id)
    assert [(t.status, t.raw_status) for t in history] == [
        (JobStatus.PENDING, None),
        (JobStatus.QUEUED, "queued"),
        (JobStatus.RUNNING, "running"),
        (JobStatus.RUNNING, "running_epoch_2"),
        (JobStatus.SUCCEEDED, "succeeded"),
    ]
    assert history[1].at == at and history[1].message == "accepted"
    current = store.require(record.id)
    assert (current.status, current.raw_status) == (JobStatus.SUCCEEDED, "succeeded")


def test_events_are_deduplicated_and_oldest_first(store: JobStore) -> None:
    record = store.create(job())
    assert store.add_events(record.id, [event(3), event(1), event(2, level="warning")]) == 3
    assert store.add_events(record.id, [event(2), event(3), event(4, data={"loss": 0.5})]) == 1
    assert store.add_events(record.id, []) == 0
    got = store.events(record.id)
    assert [e.id for e in got] == ["ev-1", "ev-2", "ev-3", "ev-4"]
    assert got[1].level == "warning" and got[3].data == {"loss": 0.5}
    assert got[0] == event(1)


def test_list_filters_newest_first(store: JobStore) -> None:
    specs = [
        ("openai", JobStatus.RUNNING),
        ("bedrock", JobStatus.RUNNING),
        ("openai", JobStatus.QUEUED),
        ("openai", JobStatus.SUCCEEDED),
        ("openai", JobStatus.PENDING),
        ("vertex", JobStatus.PENDING),
    ]
    ids = []
    for i, (provider, status) in enumerate(specs):
        r = job(provider=provider, status=status, created_at=T0 + dt.timedelta(minutes=i))
        ids.append(store.create(r).id)

    def listed(**kw) -> list[str]:
        return [r.id for r in store.list(**kw)]

    assert listed() == ids[::-1]
    assert listed(provider="openai") == [ids[4], ids[3], ids[2], ids[0]]
    assert listed(provider="openai", status="running") == [ids[0]]
    assert listed(status=JobStatus.RUNNING) == [ids[1], ids[0]]
    assert listed(status=["queued", JobStatus.RUNNING]) == [ids[2], ids[1], ids[0]]
    assert listed(provider="openai", status={JobStatus.QUEUED, JobStatus.SUCCEEDED}) == [
        ids[3],
        ids[2],
    ]
    assert listed(limit=2) == [ids[5], ids[4]]
    assert [r.id for r in store.find_pending("openai")] == [ids[4]]
    assert [r.id for r in store.find_pending()] == [ids[5], ids[4]]
    with pytest.raises(ValueError):
        store.list(status="teleporting")


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"options": {"api_key": FAKE_KEY}}, "options['api_key']"),
        ({"options": {"OpenAIApiKey": FAKE_KEY}}, "options['OpenAIApiKey']"),
        ({"options": {"credential": FAKE_KEY}}, "options['credential']"),
        ({"extra": {"auth": {"Token": FAKE_KEY}}}, "extra['auth']['Token']"),
        ({"extra": {"headers": [{"Authorization": FAKE_KEY}]}}, "extra['headers'][0]"),
        ({"extra": {"aws": {"SecretAccessKey": FAKE_KEY}}}, "SecretAccessKey"),
        ({"extra": {"storage_connection_string": FAKE_KEY}}, "storage_connection_string"),
        ({"extra": {"sas": FAKE_KEY}}, "extra['sas']"),
        ({"credentials": {"api_key": FAKE_KEY}}, "credentials['api_key']"),
        ({"credentials": {"azure": {"key": FAKE_KEY}}}, "credentials['azure']['key']"),
        ({"credentials": {"api_key": 12345}}, "credentials['api_key']"),
        (
            {
                "data_refs": {
                    "training": f"https://a.blob.core.windows.net/c/t.jsonl?sv=1&sig={FAKE_KEY}"
                }
            },
            "data_refs['training']",
        ),
        ({"training_file": f"https://user:{FAKE_KEY}@example.com/train.jsonl"}, "training_file"),
    ],
)
def test_secrets_are_refused(store: JobStore, fields: dict, named: str) -> None:
    with pytest.raises(ValueError) as info:
        store.create(job(**fields))
    assert isinstance(info.value, SecretRefusedError)
    assert named in str(info.value)
    assert FAKE_KEY not in str(info.value)
    assert store.list() == []

    record = store.create(job())
    with pytest.raises(SecretRefusedError, match=named.split("[")[0]):
        store.update(record.id, **fields)
    assert store.require(record.id) == record


def test_credential_descriptions_and_plain_options_are_stored(store: JobStore) -> None:
    credentials = {
        "api_key": "env:OPENAI_API_KEY",
        "aws": "profile:dev",
        "vertex": "file:~/.config/gcloud/application_default_credentials.json",
        "google": "default-chain",
        "azure": {"credential": "azure-identity:DefaultAzureCredential"},
        "passed": "explicit",
    }
    options = {"region": "us-east-1", "base_url": "http://127.0.0.1:8080/v1", "max_tokens": 10}
    extra = {"idempotency_key": "ftj_1", "client_request_token": "ftj_1", "key_id": "k1"}
    record = store.create(job(credentials=credentials, options=options, extra=extra))
    got = store.require(record.id)
    assert (got.credentials, got.options, got.extra) == (credentials, options, extra)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("aws_session_token", True),
        ("db_password", True),
        ("AccountKey", True),
        ("credentials", True),
        ("region", False),
        ("subscription_id", False),
        ("max_tokens", False),
        ("keywords", False),
        ("idempotency_key", False),
        ("clientRequestToken", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_refused_secret_never_reaches_the_database(store_url: str) -> None:
    store = JobStore(url=store_url)
    record = store.create(job(options={"region": "eu-west-1"}))
    store.add_events(record.id, [event(1)])
    attempts = [
        lambda: store.create(job(options={"api_key": FAKE_KEY})),
        lambda: store.create(job(extra={"deep": [{"secret": FAKE_KEY}]})),
        lambda: store.create(job(credentials={"api_key": FAKE_KEY})),
        lambda: store.update(record.id, options={"token": FAKE_KEY}),
        lambda: store.update(record.id, credentials={"api_key": FAKE_KEY}),
        lambda: store.save_deployment(
            DeploymentRecord(provider="openai", name="d", model="m", extra={"key": FAKE_KEY})
        ),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError) as info:
            attempt()
        assert "sk-SECRET" not in str(info.value)
    store.record_status(record.id, JobStatus.RUNNING, "running")
    assert record.id in all_text(store) and "sk-SECRET" not in all_text(store)
    store.close()
    if store.path is not None:
        files = [p for p in store.path.parent.iterdir() if p.name.startswith("jobs.sqlite3")]
        assert store.path in files
        for path in files:
            assert b"sk-SECRET" not in path.read_bytes(), path


# --- deployments -----------------------------------------------------------------------------


def test_deployments(store: JobStore) -> None:
    tuned = store.create(job())
    first = DeploymentRecord(
        job_id=tuned.id,
        provider="azure-openai",
        name="support-bot",
        model="gpt-4.1-mini.ft-abc",
        status="succeeded",
        endpoint="https://res.openai.azure.com/openai/deployments/support-bot",
        hourly_cost_usd=1.7,
        created_at=T0,
        extra={"sku": "Standard"},
    )
    store.save_deployment(first)
    other = store.save_deployment(
        DeploymentRecord(
            provider="local", name="try", model="/runs/x", created_at=T0 + dt.timedelta(1)
        )
    )
    assert store.get_deployment(first.id) == first
    assert store.get_deployment("ftd_missing") is None
    assert [d.id for d in store.list_deployments()] == [other.id, first.id]
    assert [d.id for d in store.list_deployments(job_id=tuned.id)] == [first.id]

    gone = store.update_deployment(first.id, status="deleted", deleted_at=T0 + dt.timedelta(2))
    assert gone.deleted_at == T0 + dt.timedelta(2)
    assert [d.id for d in store.list_deployments()] == [other.id]
    assert [d.id for d in store.list_deployments(active_only=False)] == [other.id, first.id]

    store.save_deployment(other.model_copy(update={"status": "running"}))  # upsert
    assert store.get_deployment(other.id).status == "running"
    with pytest.raises(DeploymentNotFound):
        store.update_deployment("ftd_missing", status="x")
    with pytest.raises(SecretRefusedError):
        store.update_deployment(other.id, endpoint=f"https://h/score?api_key={FAKE_KEY}")
    with pytest.raises(TypeError):
        store.update_deployment(other.id, colour="red")


# --- threads and processes -------------------------------------------------------------------

N = 200


def _check_share(store: JobStore, job_id: str, n: int = N) -> None:
    assert len(store.transitions(job_id)) == n + 1  # + the state it was created in
    assert [e.id for e in store.events(job_id)] == [f"ev-{i}" for i in range(-1, n)]
    assert store.require(job_id).raw_status == f"raw-{n - 1}"


WRITERS, ROUNDS, REMOTE_JOBS = 20, 15, 6


def _writer(url: str, me: int, own: str, shared: str, barrier, results) -> None:
    """One of twenty processes: its own job, a job every writer changes, events every writer
    sends (the same ids), and the same provider jobs every writer adopts."""
    new_shared_events = adopted = 0
    with JobStore(url=url, timeout=120) as store:
        barrier.wait()
        for k in range(ROUNDS):
            status = JobStatus.RUNNING if k % 2 else JobStatus.QUEUED
            assert store.record_status(own, status, raw_status=f"raw-{k}")
            store.add_events(own, [event(k), event(k - 1)])  # one new, one seen
            assert store.record_status(shared, JobStatus.RUNNING, raw_status=f"w{me}-{k}")
            new_shared_events += store.add_events(shared, [event(k)])
            store.create(job(provider=f"w{me}"))
            if k < REMOTE_JOBS:
                remote = job(provider="remote", provider_job_id=f"remote-{k}")
                adopted += store.create_for_provider_job(remote)[1]
    results.put((me, new_shared_events, adopted))


def test_twenty_processes_write_at_once(store_url: str) -> None:
    with JobStore(url=store_url) as store:
        own = [store.create(job(provider=f"w{i}")).id for i in range(WRITERS)]
        shared = store.create(job(provider="shared")).id
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(store_url, i, own[i], shared, barrier, results))
        for i in range(WRITERS)
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    assert sorted(r[0] for r in reports) == list(range(WRITERS))
    with JobStore(url=store_url) as store:
        for job_id in own:
            _check_share(store, job_id, ROUNDS)
        # nothing lost: every writer's change of the shared job is there, in one sequence
        assert len(store.transitions(shared)) == 1 + WRITERS * ROUNDS
        raws = {t.raw_status for t in store.transitions(shared)[1:]}
        assert raws == {f"w{i}-{k}" for i in range(WRITERS) for k in range(ROUNDS)}
        # no duplicate: each event stored once, and counted as new by exactly one writer
        assert [e.id for e in store.events(shared)] == [f"ev-{k}" for k in range(ROUNDS)]
        assert sum(r[1] for r in reports) == ROUNDS
        # every writer's new jobs, each once
        for i in range(WRITERS):
            assert len(store.list(provider=f"w{i}")) == 1 + ROUNDS
        # each provider job adopted once, whoever got there first
        remote = store.list(provider="remote")
        assert sorted(r.provider_job_id for r in remote) == [
            f"remote-{k}" for k in range(REMOTE_JOBS)
        ]
        assert sum(r[2] for r in reports) == REMOTE_JOBS


def test_threads_share_one_store(store: JobStore) -> None:
    ids = [store.create(job()).id for _ in range(4)]
    barrier = threading.Barrier(len(ids))
    errors: list[BaseException] = []

    def work(job_id: str) -> None:
        try:
            barrier.wait()
            for i in range(N):
                store.record_status(job_id, JobStatus.RUNNING, raw_status=f"raw-{i}")
                store.add_events(job_id, [event(i), event(i - 1)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for job_id in ids:
        _check_share(store, job_id)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_opens_its_own_connection(store: JobStore) -> None:
    record = store.create(job())
    assert store.require(record.id).status is JobStatus.PENDING  # the parent's connection is used
    proc = multiprocessing.get_context("fork").Process(
        target=store.record_status, args=(record.id, JobStatus.RUNNING, "running")
    )
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert store.require(record.id).status is JobStatus.RUNNING
