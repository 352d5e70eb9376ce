"""Time budgets and stalls: a job stuck in one state is reported stalled (progress line, log,
store) and, when asked, cancelled with the reason and what the provider still charges for.

Time is an injected clock that the job's sleep advances (the Clock pattern of
test_reliability.py): nothing here waits in real time or asserts on it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main
from finetune_hub.jobs.guardrails import (
    BUDGET_KEY,
    CANCEL_KEY,
    STALL_KEY,
    cancel_charges,
    guardrail_mark,
    stall_rule,
)
from finetune_hub.rules import providers

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.hooks: list = []

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in self.hooks:
            hook(self.now)


def make_job(tmp_path: Path, clock: Clock, **kw) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="fake",
        base_model="fake-base-1",
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path / "store"),
        **kw,
    )
    job.sleep, job.clock = clock.sleep, lambda: clock.now
    return job


# -- the rules data ---------------------------------------------------------------------------
@pytest.mark.parametrize("provider", providers())
def test_every_provider_has_a_stall_default_and_a_cancel_statement_with_a_source(provider):
    rule = stall_rule(provider)
    assert rule.value and rule.value > 0
    assert "source:" in rule.cite
    charges = cancel_charges(provider)
    assert "source:" in charges and "unknown to finetune_hub" not in charges


def test_the_defaults_say_whose_figure_they_are():
    assert "finetune_hub's own default" in stall_rule("openai").cite
    assert stall_rule("bedrock").value == 24 * HOUR
    bedrock = cancel_charges("bedrock")
    assert "tokens it used to train" in bedrock and "model-customization-stop" in bedrock
    assert cancel_charges("openai").startswith("unknown") and "UNCONFIRMED" in cancel_charges(
        "openai"
    )


# -- wait() -------------------------------------------------------------------------------------
def test_a_stalled_job_is_warned_about_then_moves_on(fake_provider, tmp_path, caplog):
    clock = Clock()
    job = make_job(tmp_path, clock)
    job.submit()
    fake_provider.stall()
    seen: dict[str, object] = {}

    def unstall_later(now: float) -> None:
        rec = job.store.require(job.id)
        if STALL_KEY in rec.extra and "mark" not in seen:
            seen["mark"] = guardrail_mark(rec)
            seen["note"] = rec.extra[STALL_KEY]
            fake_provider.stall(False)

    clock.hooks.append(unstall_later)
    with caplog.at_level(logging.WARNING, logger="finetune_hub.guardrails"):
        model = job.wait(poll_interval=60, max_interval=300, progress=False)
    assert model.id.startswith("fake:")
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no state change and no new event" in warnings[0]
    assert "stall_after=1h" in warnings[0] and "finetune_hub.testing.FakeProvider" in warnings[0]
    assert str(seen["mark"]).startswith("stalled 1h")
    assert seen["note"]["stall_after_s"] == HOUR
    rec = job.store.require(job.id)
    assert STALL_KEY not in rec.extra and CANCEL_KEY not in rec.extra  # it moved, nothing cancelled
    assert fake_provider.count("cancel") == 0


def test_a_stalled_job_is_cancelled_when_asked_with_the_reason_recorded(fake_provider, tmp_path):
    clock = Clock()
    job = make_job(tmp_path, clock)
    job.submit()
    fake_provider.stall()
    with pytest.raises(fh.JobFailed) as failed:
        job.wait(poll_interval=60, max_interval=300, progress=False, on_stall="cancel",
                 stall_after=2 * HOUR)  # fmt: skip
    assert failed.value.code == "stalled" and failed.value.status == "cancelled"
    assert "no state change and no new event for 2h" in str(failed.value)
    assert "the fake bills nothing" in str(failed.value)  # what it still costs, from the rules
    assert fake_provider.count("cancel") == 1
    fake_job = next(iter(fake_provider.jobs.values()))
    assert fake_job.state == "cancelled"
    rec = job.store.require(job.id)
    assert rec.status is fh.JobStatus.CANCELLED and rec.error_code == "stalled"
    note = rec.extra[CANCEL_KEY]
    assert note["kind"] == "stalled" and "given to wait()" in note["reason"]
    assert "the fake bills nothing" in note["charges"]
    assert guardrail_mark(rec) == "cancelled: stalled"


def test_a_job_over_its_max_duration_is_cancelled_even_while_it_moves(fake_provider, tmp_path):
    fake_provider.states = ["queued", *["running"] * 200, "succeeded"]
    clock = Clock()
    job = make_job(tmp_path, clock)
    job.submit(max_duration=3 * HOUR)
    budget = job.store.require(job.id).extra[BUDGET_KEY]
    assert budget["seconds"] == 3 * HOUR and budget["deadline"] == clock.now + 3 * HOUR
    with pytest.raises(fh.JobFailed) as failed:
        job.wait(poll_interval=600, max_interval=600, progress=False, on_stall="cancel")
    assert failed.value.code == "max_duration_exceeded"
    assert "over its max_duration of 3h" in str(failed.value)
    assert fake_provider.count("cancel") == 1
    assert job.store.require(job.id).extra[CANCEL_KEY]["kind"] == "max_duration_exceeded"


def test_a_bad_budget_or_mode_is_refused_before_anything_is_sent(fake_provider, tmp_path):
    job = make_job(tmp_path, Clock())
    with pytest.raises(ValueError, match="max_duration"):
        job.submit(max_duration=-5)
    assert fake_provider.count("upload") == 0 and fake_provider.count("create") == 0
    job.submit()
    with pytest.raises(ValueError, match="on_stall"):
        job.wait(on_stall="panic")


def test_a_job_that_ends_as_the_cancel_arrives_gives_its_model(
    fake_provider, tmp_path, monkeypatch
):
    clock = Clock()
    job = make_job(tmp_path, clock)
    job.submit()
    fake_provider.stall()
    backend = type(job.backend)

    def finishes_instead(self, provider_job_id):
        fake = fake_provider.jobs[provider_job_id]
        fake.states[fake.position] = "succeeded"

    monkeypatch.setattr(backend, "cancel", finishes_instead)
    model = job.wait(poll_interval=60, progress=False, on_stall="cancel", stall_after=HOUR)
    assert model.id.startswith("fake:") and job.status is fh.JobStatus.SUCCEEDED


# -- the CLI --------------------------------------------------------------------------------------
def test_watch_cancels_a_stalled_job_and_jobs_marks_it(
    fake_provider, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "300")
    home = tmp_path / "store"
    clock = Clock()
    job = make_job(tmp_path, clock)
    job.submit()
    fake_provider.stall()
    code = main(["watch", job.id, "--home", str(home), "--poll-interval", "0.01",
                 "--stall-after", "0.02", "--on-stall", "cancel"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "no state change and no new event" in out and "the fake bills nothing" in out
    assert main(["jobs", "--home", str(home)]) == 0
    assert "cancelled: stalled" in capsys.readouterr().out


def test_jobs_marks_a_job_while_it_is_stalled(fake_provider, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    home = tmp_path / "store"
    clock = Clock()
    job = make_job(tmp_path, clock)
    job.submit()
    fake_provider.stall()
    listed: list[str] = []

    def list_when_stalled(now: float) -> None:
        if STALL_KEY in job.store.require(job.id).extra and not listed:
            capsys.readouterr()
            main(["jobs", "--home", str(home)])
            listed.append(capsys.readouterr().out)
            fake_provider.stall(False)

    clock.hooks.append(list_when_stalled)
    job.wait(poll_interval=60, max_interval=300, progress=False)
    assert listed and "stalled 1h" in listed[0]


def test_wait_all_holds_each_job_to_its_guardrails_and_the_others_go_on(fake_provider, tmp_path):
    store = fh.JobStore(tmp_path / "store")
    train = SAMPLES / "chat_gozaru.jsonl"
    fake_provider.states = ["queued", *["running"] * 100_000, "succeeded"]  # never ends by itself
    endless = fh.TuningJob(
        provider="fake", base_model="fake-base-1", training_file=train, store=store
    )
    endless.submit(max_duration=0.2)  # seconds, on the real clock: the wait polls every 10 ms
    fake_provider.states = ["queued", "running", "succeeded"]
    quick = fh.TuningJob(
        provider="fake", base_model="fake-base-1", training_file=train, store=store
    )
    quick.submit()
    over, done = fh.wait_all(
        [endless, quick], poll_interval=0.01, max_interval=0.01, on_stall="cancel"
    )
    assert isinstance(over, fh.JobFailed) and over.code == "max_duration_exceeded"
    assert isinstance(done, fh.TunedModel)
    assert store.require(endless.id).status is fh.JobStatus.CANCELLED
    assert fake_provider.count("cancel") == 1
