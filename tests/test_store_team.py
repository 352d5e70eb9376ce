"""The store at team scale: chosen by URL, schema 2 stores upgraded, metrics and latest events,
provider-job lookups, deletes, a SQLite store copied into PostgreSQL and the JSON export."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from store_support import STORE_KINDS, fresh_store_url, job, postgres_database

from finetune_hub.errors import FinetuneHubError
from finetune_hub.status import JobEvent, JobStatus, MetricPoint
from finetune_hub.store import STORE_URL_ENV, DeploymentRecord, JobStore, default_url
from finetune_hub.store.database import redact_url, store_url_kind
from finetune_hub.store.sqlite import MIGRATIONS
from finetune_hub.store.tables import SCHEMA_VERSION
from finetune_hub.store.transfer import copy_store, export_store

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path):
    yield from fresh_store_url(request, tmp_path)


@pytest.fixture
def postgres_url(fh_postgres):
    yield from postgres_database(fh_postgres)


@pytest.fixture
def store(store_url: str):
    with JobStore(url=store_url) as s:
        yield s


def test_where_the_store_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_HUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    assert default_url() == f"sqlite:///{tmp_path / 'home' / 'jobs.sqlite3'}"
    monkeypatch.setenv(STORE_URL_ENV, f"sqlite:///{tmp_path / 'by-url.sqlite3'}")
    with JobStore() as s:
        assert s.path == tmp_path / "by-url.sqlite3" and s.kind == "sqlite"
    with JobStore(tmp_path / "explicit") as s:  # an explicit home beats the environment
        assert s.path == tmp_path / "explicit" / "jobs.sqlite3"
    with JobStore(url=f"sqlite:///{tmp_path / 'arg.sqlite3'}") as s:
        assert s.path == tmp_path / "arg.sqlite3"


def test_urls_are_checked_and_passwords_never_shown() -> None:
    assert store_url_kind("postgres://u@h/db") == "postgresql"
    assert store_url_kind("postgresql+psycopg://u@h/db") == "postgresql"
    assert redact_url("postgresql://fh:s3cret@db:5432/hub") == "postgresql://fh:***@db:5432/hub"
    with pytest.raises(FinetuneHubError, match="sqlite:///PATH") as info:
        JobStore(url="mysql://fh:s3cret@db/hub")
    assert "s3cret" not in str(info.value)
    with pytest.raises(FinetuneHubError, match="names a file"):
        JobStore(url="sqlite://")


def test_unreachable_postgres_names_the_store_without_its_password() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(FinetuneHubError, match="cannot reach the job store") as info:
        JobStore(url="postgresql://fh:s3cret@127.0.0.1:1/hub", timeout=1)
    assert "s3cret" not in str(info.value) and "fh:***@127.0.0.1:1" in str(info.value)


def _schema_2_store(path: Path) -> str:
    """A store as finetune_hub wrote it before schema 3, with one job, its events and a
    deployment."""
    db = sqlite3.connect(path)
    for version in (1, 2):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(
        "INSERT INTO jobs (id, provider, base_model, method, training_file, status, raw_status, "
        "created_at, updated_at, error_code) VALUES ('ftj_0123456789ab', 'openai', "
        "'gpt-4.1-mini', 'sft', 'train.jsonl', 'running', 'running', "
        "'2026-03-01T12:00:00.000000+00:00', '2026-03-01T12:05:00.000000+00:00', NULL)"
    )
    db.execute(
        "INSERT INTO transitions (job_id, status, raw_status, at) VALUES "
        "('ftj_0123456789ab', 'running', 'running', '2026-03-01T12:05:00.000000+00:00')"
    )
    db.execute(
        "INSERT INTO events (job_id, event_id, created_at, level, message) VALUES "
        "('ftj_0123456789ab', 'ev-1', '2026-03-01T12:05:00.000000+00:00', 'info', 'started')"
    )
    db.execute(
        "INSERT INTO deployments (id, provider, name, model, status, created_at, kind) VALUES "
        "('ftd_1', 'azure-openai', 'bot', 'm', 'ready', '2026-03-01T13:00:00.000000+00:00', "
        "'azure-deployment')"
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    return "ftj_0123456789ab"


def test_a_schema_2_store_is_upgraded_in_place(tmp_path: Path) -> None:
    job_id = _schema_2_store(tmp_path / "jobs.sqlite3")
    with JobStore(tmp_path) as store:
        assert store.db.schema_version() == SCHEMA_VERSION == 5
        record = store.require(job_id)
        assert record.status is JobStatus.RUNNING and record.checked_at is None
        assert [e.message for e in store.events(job_id)] == ["started"]
        assert store.add_metrics(job_id, [MetricPoint(step=1, train_loss=1.5)]) == 1
        store.mark_checked(job_id, at=T0)
        assert store.require(job_id).checked_at == T0
        assert [d.name for d in store.list_deployments()] == ["bot"]
    with JobStore(tmp_path) as again:  # reopening changes nothing
        assert again.require(job_id).checked_at == T0


def test_metrics_by_step_replaced_when_seen_again(store: JobStore) -> None:
    record = store.create(job())
    points = [MetricPoint(step=s, train_loss=2.0 / s, extra={"lr": 0.1}) for s in (2, 1, 3)]
    assert store.add_metrics(record.id, points) == 3
    store.add_metrics(record.id, [MetricPoint(step=3, train_loss=0.5, valid_loss=0.7)])
    got = store.metrics(record.id)
    assert [(m.step, m.train_loss) for m in got] == [(1, 2.0), (2, 1.0), (3, 0.5)]
    assert got[0].extra == {"lr": 0.1} and got[2].valid_loss == 0.7


def test_latest_events_in_one_query(store: JobStore) -> None:
    a, b, c = (store.create(job()).id for _ in range(3))
    for i in range(3):
        store.add_events(
            a, [JobEvent(id=f"a{i}", created_at=T0 + dt.timedelta(i), message=f"a{i}")]
        )
    store.add_events(b, [JobEvent(id="b0", created_at=T0, message="only")])
    latest = store.latest_events([a, b, c])
    assert {k: v.message for k, v in latest.items()} == {a: "a2", b: "only"}
    assert store.latest_events([]) == {}


def test_provider_jobs_known_and_adopted_once(store: JobStore) -> None:
    first, new = store.create_for_provider_job(job(provider_job_id="ftjob-1"))
    assert new
    again, new = store.create_for_provider_job(job(provider_job_id="ftjob-1"))
    assert not new and again.id == first.id
    other = store.create(job(provider="bedrock", provider_job_id="ftjob-1"))
    assert store.find_by_provider_job("openai", "ftjob-1").id == first.id
    assert store.find_by_provider_job("bedrock", "ftjob-1").id == other.id
    assert store.known_provider_jobs("openai", ["ftjob-1", "ftjob-2"]) == {"ftjob-1": first.id}
    with pytest.raises(ValueError, match="provider_job_id"):
        store.create_for_provider_job(job())


def test_time_filters_and_deletes(store: JobStore) -> None:
    old = store.create(job(created_at=T0, updated_at=T0))
    new = store.create(job())
    store.add_events(old.id, [JobEvent(id="e", created_at=T0, message="m")])
    store.add_metrics(old.id, [MetricPoint(step=1)])
    cutoff = T0 + dt.timedelta(days=1)
    assert [r.id for r in store.list(created_before=cutoff)] == [old.id]
    assert [r.id for r in store.list(updated_before=cutoff)] == [old.id]
    assert store.delete_jobs([old.id, "ftj_missing"]) == 1
    assert [r.id for r in store.list()] == [new.id]
    assert store.events(old.id) == [] and store.metrics(old.id) == []
    assert store.transitions(old.id) == []
    assert store.delete_jobs([]) == 0


def test_a_sqlite_store_is_copied_into_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with JobStore(tmp_path) as mine:
        records = [mine.create(job(created_at=T0 + dt.timedelta(minutes=i))) for i in range(3)]
        first = records[0].id
        mine.record_status(first, JobStatus.RUNNING, "running", at=T0 + dt.timedelta(hours=1))
        mine.add_events(first, [JobEvent(id="e1", created_at=T0, message="hello", data={"x": 1})])
        mine.add_metrics(first, [MetricPoint(step=1, train_loss=1.0)])
        mine.save_deployment(
            DeploymentRecord(provider="fake", name="d", model="m", hourly_cost_usd=1.5)
        )
        with JobStore(url=postgres_url) as team:
            summary = copy_store(mine, team)
            assert (summary.jobs_copied, summary.deployments_copied) == (3, 1)
            assert "3 jobs" in str(summary) and "postgresql" in str(summary)
            assert [r.id for r in team.list()] == [r.id for r in mine.list()]
            assert team.require(first) == mine.require(first)
            assert team.transitions(first) == mine.transitions(first)
            assert team.events(first) == mine.events(first)
            assert team.metrics(first) == mine.metrics(first)
            assert team.list_deployments() == mine.list_deployments()
            again = copy_store(mine, team)  # safe to repeat: nothing doubled
            assert (again.jobs_copied, again.jobs_skipped, again.deployments_skipped) == (0, 3, 1)
            assert len(team.transitions(first)) == 2


def test_export_is_json_with_every_job_and_its_history(store: JobStore) -> None:
    record = store.create(job())
    store.add_events(record.id, [JobEvent(id="e1", created_at=T0, message="hello")])
    store.add_metrics(record.id, [MetricPoint(step=1, train_loss=1.0)])
    store.save_deployment(DeploymentRecord(provider="fake", name="d", model="m"))
    data = json.loads(json.dumps(export_store(store)))
    assert data["schema_version"] == SCHEMA_VERSION
    (exported,) = data["jobs"]
    assert exported["id"] == record.id and exported["events"][0]["message"] == "hello"
    assert exported["metrics"][0]["train_loss"] == 1.0
    assert [t["status"] for t in exported["transitions"]] == ["pending"]
    assert [d["name"] for d in data["deployments"]] == ["d"]


def test_cli_store_migrate_info_and_export(
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from finetune_hub.cli import main

    monkeypatch.setenv("FINETUNE_HUB_HOME", str(tmp_path))
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    with JobStore() as mine:
        ids = {mine.create(job()).id for _ in range(2)}
    assert main(["store", "migrate", "--to", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "copied 2 jobs" in out and "FINETUNE_HUB_STORE_URL" in out
    with JobStore(url=postgres_url) as team:
        assert {r.id for r in team.list()} == ids
    assert main(["store", "migrate", "--to", postgres_url]) == 0
    assert "copied 0 jobs (2 already there)" in capsys.readouterr().out
    monkeypatch.setenv(STORE_URL_ENV, postgres_url)
    assert main(["store", "info"]) == 0
    assert f"kind: postgresql, schema {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["store", "export", "--output", str(tmp_path / "out.json")]) == 0
    assert {j["id"] for j in json.loads((tmp_path / "out.json").read_text())["jobs"]} == ids
