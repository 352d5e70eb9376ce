"""Bulk refresh on the in-memory FakeProvider: what changed, errors per job collected (never
raised), the concurrency bound, per-provider rate limits (counted on a fake clock, not timed),
the change feed and the command."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.cli import main
from finetune_hub.jobs.refresh import RateLimiter
from finetune_hub.store import JobRecord
from finetune_hub.testing.fake_provider import FakeBackend

CHAT = Path(__file__).resolve().parents[1] / "examples" / "data" / "chat_gozaru.jsonl"


@pytest.fixture
def store(tmp_path: Path) -> fh.JobStore:
    return fh.JobStore(tmp_path / "store")


def submit(store: fh.JobStore, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        job = fh.TuningJob(
            provider="fake", base_model="fake-base-1", training_file=CHAT, store=store
        )
        ids.append(job.submit().id)
    return ids


def test_every_unfinished_job_is_refreshed_and_changes_returned(
    fake_provider: Any, store: fh.JobStore
) -> None:
    ids = submit(store, 4)
    seen: list[tuple[str, str]] = []

    def on_change(change: fh.JobChange) -> None:
        seen.append((change.job_id, threading.current_thread().name))

    first = fh.refresh_all(store=store, on_change=on_change)
    assert first.checked == 4 and first.errors == []
    assert {c.job_id for c in first.changed} == set(ids)
    assert {(c.old_status, c.new_status) for c in first.changed} == {
        (fh.JobStatus.QUEUED, fh.JobStatus.RUNNING)
    }
    assert sorted(j for j, _ in seen) == sorted(ids)
    assert {t for _, t in seen} == {threading.current_thread().name}  # the caller's thread
    assert all(store.require(i).checked_at is not None for i in ids)
    assert first.new_events > 0 and all(store.events(i) for i in ids)
    assert all(store.metrics(i) for i in ids)  # running: metrics kept for the loss chart

    second = fh.refresh_all(store=store)
    assert {c.new_status for c in second.changed} == {fh.JobStatus.SUCCEEDED}
    assert all(c.fine_tuned_model for c in second.changed)
    assert fh.refresh_all(store=store).checked == 0  # nothing unfinished is left


def test_errors_are_collected_per_job_never_raised(fake_provider: Any, store: fh.JobStore) -> None:
    ids = submit(store, 3)
    fake_provider.fail_next("get", status_code=400, message="bad request for one job")
    gone = fake_provider.jobs.pop(store.require(ids[0]).provider_job_id)
    orphan = store.create(
        JobRecord(provider="nope", base_model="m", training_file="t.jsonl", provider_job_id="x")
    )
    result = fh.refresh_all(store=store, concurrency=1)
    assert result.checked == 4
    assert len(result.errors) == 3 and len(result.changed) == 1
    by_job = {e.job_id: e for e in result.errors}
    assert by_job[orphan.id].error_type == "UnknownProviderError"
    assert "no job" in by_job[ids[0]].message and gone.id in by_job[ids[0]].message
    assert "gone_at" in store.require(ids[0]).extra  # prune can clear it
    assert "bad request" in by_job[ids[2]].message  # newest first: the first get met the fault
    assert [c.job_id for c in result.changed] == [ids[1]]


def test_concurrency_is_bounded(fake_provider: Any, store: fh.JobStore, monkeypatch) -> None:
    submit(store, 6)
    inflight, most = 0, 0
    lock = threading.Lock()
    original = FakeBackend.get

    def counting_get(self: Any, provider_job_id: str) -> Any:
        nonlocal inflight, most
        with lock:
            inflight += 1
            most = max(most, inflight)
        try:
            time.sleep(0.02)  # hold the slot so that others would overlap
            return original(self, provider_job_id)
        finally:
            with lock:
                inflight -= 1

    monkeypatch.setattr(FakeBackend, "get", counting_get)
    result = fh.refresh_all(store=store, concurrency=2, events=False, metrics=False)
    assert result.checked == 6 and not result.errors
    assert 1 <= most <= 2


def test_rate_limits_per_provider_on_a_fake_clock(fake_provider: Any, store: fh.JobStore) -> None:
    submit(store, 4)
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    fh.refresh_all(
        store=store, concurrency=1, rate_limits={"fake": 2.0}, events=False, metrics=False,
        sleep=sleep, clock=lambda: now[0],
    )  # fmt: skip
    assert pauses == [0.5, 0.5, 0.5]  # 2 calls a second: 4 calls take 1.5 s of waiting
    limiter = RateLimiter(4.0, clock=lambda: 10.0, sleep=lambda s: None)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.25, 0.5]
    with pytest.raises(ValueError, match="above 0"):
        RateLimiter(0)


def test_follow_changes_yields_until_every_job_ends(fake_provider: Any, store: fh.JobStore) -> None:
    ids = submit(store, 2)
    slept: list[float] = []
    changes = list(fh.follow_changes(store=store, interval=7, sleep=slept.append))
    assert [c.new_status for c in changes].count(fh.JobStatus.SUCCEEDED) == 2
    assert {c.job_id for c in changes} == set(ids)
    assert slept.count(7) == 1  # two rounds, one pause between them
    assert list(fh.follow_changes(store=store, sleep=slept.append)) == []


def test_refresh_command(fake_provider: Any, tmp_path: Path, capsys) -> None:
    store = fh.JobStore(tmp_path / "cli")
    ids = submit(store, 2)
    assert main(["refresh", "--home", str(tmp_path / "cli"), "--rate", "fake=100"]) == 0
    out = capsys.readouterr().out
    assert all(f"{i} on fake: queued -> running" in out for i in ids)
    assert "checked 2 jobs: 2 changed, 0 errors" in out
    fake_provider.fail_next("get", status_code=400, message="nope")
    assert main(["refresh", "--home", str(tmp_path / "cli")]) == 1
    assert "nope" in capsys.readouterr().out
