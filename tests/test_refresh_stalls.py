"""Stalls found by `refresh_all` (cron, dashboards, `finetune-hub refresh`), with no `wait()`
running: a job whose state and event log have not moved for `stall_after` is listed in
`result.stalled`, marked in the store as `wait()` marks it, warned about once, and cleared when it
moves again. Time is injected (`now=`): nothing waits or asserts on wall-clock time."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import finetune_hub as fh
from finetune_hub.dashboard.data import job_rows
from finetune_hub.jobs.guardrails import STALL_KEY, guardrail_mark
from finetune_hub.jobs.stalls import check_stall, last_move

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
HOUR = 3600.0


def submitted(store: fh.JobStore) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="fake",
        base_model="fake-base-1",
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=store,
    )
    job.submit()
    return job


def at(hours: float, store: fh.JobStore, job: fh.TuningJob):
    start = last_move(store, store.require(job.id))
    return lambda: start + dt.timedelta(hours=hours)


def test_a_stuck_job_is_listed_marked_and_warned_about_once(fake_provider, tmp_path, caplog):
    store = fh.JobStore(tmp_path / "store")
    job = submitted(store)
    fake_provider.stall()
    fh.refresh_all(store=store)  # whatever state it reached, it stays there from now on
    with caplog.at_level(logging.WARNING, logger="finetune_hub.guardrails"):
        early = fh.refresh_all(store=store, now=at(0.5, store, job))
        late = fh.refresh_all(store=store, now=at(2, store, job))
        later = fh.refresh_all(store=store, now=at(5, store, job))
    assert early.stalled == []
    assert [s.job_id for s in late.stalled] == [job.id] == [s.job_id for s in later.stalled]
    notice = late.stalled[0]
    assert notice.stall_after_s == HOUR and notice.stalled_for_s >= 2 * HOUR - 60
    assert "no state change and no new event for 2h" in str(notice)
    assert "finetune_hub.testing.FakeProvider" in str(notice)  # the rule's citation
    assert str(late).endswith(", 1 stalled")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per stall, not once per refresh
    rec = store.require(job.id)
    note = rec.extra[STALL_KEY]
    assert note["stall_after_s"] == HOUR and note["message"] == str(notice)
    mark = guardrail_mark(rec, now=at(2, store, job)())
    assert mark.startswith("stalled 2h")
    row = next(r for r in job_rows(store, now=at(2, store, job)()) if r["id"] == job.id)
    assert row["guardrail"].startswith("stalled 2h")


def test_the_mark_is_cleared_once_the_job_moves_again(fake_provider, tmp_path):
    store = fh.JobStore(tmp_path / "store")
    job = submitted(store)
    fake_provider.stall()
    fh.refresh_all(store=store)
    assert fh.refresh_all(store=store, now=at(3, store, job)).stalled
    assert STALL_KEY in store.require(job.id).extra
    fake_provider.stall(False)
    moved = fh.refresh_all(store=store)  # a state change or a new event: it moved
    assert moved.stalled == [] and STALL_KEY not in store.require(job.id).extra


def test_stall_after_overrides_the_rule_and_no_rule_means_no_stall(fake_provider, tmp_path):
    store = fh.JobStore(tmp_path / "store")
    job = submitted(store)
    fake_provider.stall()
    fh.refresh_all(store=store)
    assert fh.refresh_all(store=store, now=at(0.5, store, job), stall_after=600).stalled
    rec = store.require(job.id)
    assert "stall_after=10m (given to refresh_all())" in rec.extra[STALL_KEY]["message"]


def test_without_events_or_after_an_error_nothing_is_declared(fake_provider, tmp_path):
    store = fh.JobStore(tmp_path / "store")
    job = submitted(store)
    fake_provider.stall()
    fh.refresh_all(store=store)
    # events not fetched: the log may have moved unseen, so no stall is claimed
    assert fh.refresh_all(store=store, now=at(9, store, job), events=False).stalled == []
    # the provider refuses the question: that is an error, not a stall
    fake_provider.fail_next("get", status_code=403, message="denied")
    result = fh.refresh_all(store=store, now=at(9, store, job))
    assert result.stalled == [] and len(result.errors) == 1
    assert STALL_KEY not in store.require(job.id).extra


def test_finished_or_unsubmitted_jobs_are_never_stalled(fake_provider, tmp_path):
    store = fh.JobStore(tmp_path / "store")
    job = submitted(store)
    job.wait(poll_interval=0, progress=False)
    rec = store.require(job.id)
    assert rec.status.is_terminal
    far = rec.updated_at + dt.timedelta(days=30)
    assert check_stall(store, rec, now=far) is None


def test_the_refresh_command_prints_stalls_and_follow_changes_reports_each_once(
    fake_provider, tmp_path, capsys
):
    from finetune_hub.cli.main import main

    store = fh.JobStore(tmp_path / "cli")
    job = submitted(store)
    fake_provider.stall()
    fh.refresh_all(store=store)
    home = ["--home", str(tmp_path / "cli")]
    assert main(["refresh", *home, "--stall-after", "0.001"]) == 0  # a stall is not an error
    out = capsys.readouterr().out
    assert f"stalled: {job.id} on fake: no state change and no new event" in out
    assert "stall_after=0s (given to refresh_all())" in out and out.rstrip().endswith("1 stalled")
    seen: list = []
    changes = fh.follow_changes(
        store=store, rounds=3, sleep=lambda s: None, on_stall=seen.append, stall_after=0.001
    )
    assert list(changes) == []
    assert seen == []  # already noted by the command: not first seen again
    fake_provider.stall(False)
    fh.refresh_all(store=store)  # it moved: the mark goes
    fake_provider.stall()
    list(fh.follow_changes(store=store, rounds=3, sleep=lambda s: None, on_stall=seen.append,
                           stall_after=0.001))  # fmt: skip
    assert [s.job_id for s in seen] == [job.id]  # a new stall, reported once over three rounds


def test_a_spent_time_budget_is_noticed_by_a_refresh_even_while_the_job_moves(
    fake_provider, tmp_path, caplog
):
    from finetune_hub.jobs.guardrails import OVER_KEY

    fake_provider.states = ["queued", *["running"] * 50, "succeeded"]
    store = fh.JobStore(tmp_path / "store")
    job = fh.TuningJob(
        provider="fake", base_model="fake-base-1", training_file=SAMPLES / "chat_gozaru.jsonl",
        store=store,
    )  # fmt: skip
    job.submit(max_duration=2 * HOUR)
    deadline = dt.datetime.fromisoformat(store.require(job.id).extra["max_duration"]["deadline_at"])
    never_stalled = {"stall_after": 100 * HOUR}  # this test is about the budget alone
    early = fh.refresh_all(store=store, now=lambda: deadline - HOUR_DELTA / 60, **never_stalled)
    assert early.stalled == []
    with caplog.at_level(logging.WARNING, logger="finetune_hub.guardrails"):
        for _ in range(2):  # it moves each time (a new event), and is still over budget
            late = fh.refresh_all(store=store, now=lambda: deadline + HOUR_DELTA, **never_stalled)
            (notice,) = late.stalled
    assert notice.kind == "max_duration_exceeded" and not notice.cancelled
    assert "has run 3h, over its max_duration of 2h" in str(notice)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    rec = store.require(job.id)
    assert OVER_KEY in rec.extra and guardrail_mark(rec) == "over max_duration"
    assert fake_provider.count("cancel") == 0  # warn only, by default


HOUR_DELTA = dt.timedelta(hours=1)


def test_on_stall_cancel_cancels_and_records_why_for_a_cron_nobody_watches(
    fake_provider, tmp_path, capsys
):
    from finetune_hub.cli.main import main
    from finetune_hub.jobs.guardrails import CANCEL_KEY

    store = fh.JobStore(tmp_path / "cli")
    job = submitted(store)
    fake_provider.stall()
    fh.refresh_all(store=store)
    with_cancel = ["refresh", "--home", str(tmp_path / "cli"), "--stall-after", "0.001"]
    assert main([*with_cancel, "--on-stall", "cancel"]) == 0
    out = capsys.readouterr().out
    assert f"stalled: {job.id} on fake" in out and out.count("; cancelled by finetune_hub") == 1
    assert fake_provider.count("cancel") == 1
    rec = store.require(job.id)
    assert rec.status is fh.JobStatus.CANCELLED and rec.error_code == "stalled"
    assert "the fake bills nothing" in rec.extra[CANCEL_KEY]["charges"]
    assert guardrail_mark(rec) == "cancelled: stalled"
    assert main(with_cancel + ["--on-stall", "cancel"]) == 0  # nothing left: cancelled once
    assert fake_provider.count("cancel") == 1
    assert main([*with_cancel, "--on-stall", "stop"]) == 2  # argparse refuses it
