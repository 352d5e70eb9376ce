"""Housekeeping: prune plans (orphan PENDING jobs, deleted models, jobs the provider lost, old
finished jobs; never a job that may still run), the dry run, deployments still billing with their
accumulated cost, and the jobs table's age and last-updated columns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.cli import main
from finetune_hub.jobs.housekeeping import billing_deployments, plan_prune, prune
from finetune_hub.store import DeploymentRecord, JobRecord

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
CHAT = Path(__file__).resolve().parents[1] / "examples" / "data" / "chat_gozaru.jsonl"


def record(**fields: Any) -> JobRecord:
    base = {"provider": "openai", "base_model": "m", "training_file": "t.jsonl"}
    return JobRecord(**{**base, **fields})


@pytest.fixture
def store(tmp_path: Path) -> fh.JobStore:
    return fh.JobStore(tmp_path / "store")


def test_prune_plan_names_each_job_and_why(store: fh.JobStore) -> None:
    days = lambda n: NOW - dt.timedelta(days=n)  # noqa: E731
    orphan = store.create(record(created_at=days(3), updated_at=days(3)))
    fresh_pending = store.create(record(created_at=NOW - dt.timedelta(hours=2)))
    old_done = store.create(
        record(
            status=fh.JobStatus.SUCCEEDED,
            provider_job_id="a",
            created_at=days(200),
            updated_at=days(100),
        )
    )
    old_running = store.create(
        record(
            status=fh.JobStatus.RUNNING,
            provider_job_id="b",
            created_at=days(200),
            updated_at=days(100),
        )
    )
    recent_done = store.create(
        record(
            status=fh.JobStatus.FAILED, provider_job_id="c", created_at=days(5), updated_at=days(5)
        )
    )
    deleted = store.create(
        record(status=fh.JobStatus.SUCCEEDED, provider_job_id="d", fine_tuned_model="ft:x",
               extra={"model_deleted_at": "2026-05-01T00:00:00+00:00"})
    )  # fmt: skip
    gone = store.create(record(provider_job_id="e", extra={"gone_at": "2026-05-02T00:00:00+00:00"}))

    plan = {item.job.id: item.reason for item in plan_prune(store, older_than_days=90, now=NOW)}
    assert set(plan) == {orphan.id, old_done.id, deleted.id, gone.id}
    assert plan[orphan.id].startswith("orphan: pending for 3d")
    assert plan[old_done.id] == "succeeded, unchanged for 100d 0h"
    assert "ft:x was deleted" in plan[deleted.id] and "no longer has job e" in plan[gone.id]
    assert {i.job.id for i in plan_prune(store, now=NOW)} == {orphan.id, deleted.id, gone.id}

    assert prune(store, plan_prune(store, older_than_days=90, now=NOW)) == 4
    left = {r.id for r in store.list()}
    assert left == {fresh_pending.id, old_running.id, recent_done.id}


def test_a_deleted_model_marks_its_job(fake_provider: Any, store: fh.JobStore) -> None:
    job = fh.TuningJob(provider="fake", base_model="fake-base-1", training_file=CHAT, store=store)
    job.submit()
    model = job.wait(poll_interval=0, progress=False)
    model.delete()
    (item,) = plan_prune(store)
    assert item.job.id == job.id and "was deleted" in item.reason


def test_billing_deployments_and_their_accumulated_cost(store: fh.JobStore) -> None:
    created = NOW - dt.timedelta(hours=10)
    store.save_deployment(
        DeploymentRecord(provider="fake", name="paid", model="m", status="ready",
                         hourly_cost_usd=1.25, created_at=created)
    )  # fmt: skip
    store.save_deployment(
        DeploymentRecord(provider="fake", name="unknown-price", model="m", status="creating",
                         created_at=created)
    )  # fmt: skip
    store.save_deployment(
        DeploymentRecord(provider="fake", name="failed", model="m", status="failed",
                         hourly_cost_usd=9.0, created_at=created)
    )  # fmt: skip
    store.save_deployment(
        DeploymentRecord(provider="fake", name="gone", model="m", status="deleted",
                         hourly_cost_usd=9.0, created_at=created, deleted_at=NOW)
    )  # fmt: skip
    billing = {d.record.name: d for d in billing_deployments(store, now=NOW)}
    assert set(billing) == {"paid", "unknown-price"}
    assert billing["paid"].hours == 10 and billing["paid"].accumulated_usd == 12.5
    assert billing["unknown-price"].accumulated_usd is None


def test_cli_prune_is_a_dry_run_first(tmp_path: Path, capsys) -> None:
    home = str(tmp_path / "cli")
    store = fh.JobStore(home)
    old = NOW - dt.timedelta(days=400)
    orphan = store.create(record(created_at=old, updated_at=old))
    assert main(["jobs", "prune", "--home", home]) == 0
    out = capsys.readouterr().out
    assert orphan.id in out and "dry run: 1 jobs would be removed" in out
    assert store.get(orphan.id) is not None
    assert main(["jobs", "prune", "--home", home, "--yes"]) == 0
    assert "removed 1 jobs" in capsys.readouterr().out and store.get(orphan.id) is None
    assert main(["jobs", "prune", "--home", home]) == 0
    assert "nothing to prune" in capsys.readouterr().out


def test_cli_jobs_shows_age_updated_and_latest_event(
    fake_provider: Any, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    home = str(tmp_path / "cli")
    store = fh.JobStore(home)
    job = fh.TuningJob(provider="fake", base_model="fake-base-1", training_file=CHAT, store=store)
    job.submit()
    job.refresh()
    job.events()
    assert main(["jobs", "--home", home]) == 0
    out = capsys.readouterr().out
    for header in ("age", "updated", "latest event"):
        assert header in out
    assert job.id in out and "state running" in out and " ago" in out


def test_cli_deployments_with_costs(tmp_path: Path, capsys) -> None:
    home = str(tmp_path / "cli")
    store = fh.JobStore(home)
    assert main(["deployments", "--home", home]) == 0
    assert "no deployment is billing" in capsys.readouterr().out
    store.save_deployment(
        DeploymentRecord(provider="fake", name="paid", model="m", status="ready",
                         hourly_cost_usd=2.0, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    )  # fmt: skip
    assert main(["deployments", "--home", home]) == 0
    out = capsys.readouterr().out
    assert "paid" in out and "$2.00" in out and "$6.00" in out
    assert main(["deployments", "--home", home, "--json"]) == 0
    assert '"accumulated_usd": 6.0' in capsys.readouterr().out
