"""Never a second paid job or deployment, waits that outlast outages, no secret in reprs.

The look-up window is measured on an injected clock that the test's sleep advances, so nothing
here waits in real time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_job(provider: str, tmp_path: Path, clock: Clock, **kw) -> fh.TuningJob:
    job = fh.TuningJob(
        provider=provider,
        base_model=kw.pop("base_model", "fake-base-1"),
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path / "store"),
        **kw,
    )
    job.sleep, job.clock = clock.sleep, lambda: clock.now
    return job


def test_a_slow_create_seen_late_by_the_look_up_makes_one_job(fake_provider, tmp_path):
    clock = Clock()
    fake_provider.fail_next("create", status_code=None, message="read timeout", hidden_for=4)
    job = make_job("fake", tmp_path, clock)
    job.submit()
    assert len(fake_provider.jobs) == 1 and fake_provider.count("create") == 1
    assert job.provider_job_id == next(iter(fake_provider.jobs))
    assert sum(clock.slept) < job.lookup_window  # found inside the window, not after it


def test_a_create_refused_before_taking_effect_is_sent_again_after_the_window(
    fake_provider, tmp_path
):
    clock = Clock()
    fake_provider.fail_next("create", status_code=503)
    job = make_job("fake", tmp_path, clock)
    job.submit()
    assert fake_provider.count("create") == 2 and len(fake_provider.jobs) == 1
    assert sum(clock.slept) >= job.lookup_window - 1e-6  # the second create waited the window


def test_a_definite_refusal_needs_no_window(fake_provider, tmp_path):
    clock = Clock()
    fake_provider.fail_next("create", status_code=400, message="bad model")
    job = make_job("fake", tmp_path, clock)
    with pytest.raises(fh.ProviderError, match="bad model"):
        job.submit()
    assert "create_attempted_at" not in job.store.get(job.id).extra
    job.submit()  # a later submit creates at once
    assert len(fake_provider.jobs) == 1 and sum(clock.slept) < job.lookup_window


def test_a_window_without_answers_stops_instead_of_creating_again(
    fake_provider, tmp_path, monkeypatch
):
    clock = Clock()
    fake_provider.fail_next(
        "create", status_code=None, message="connection dropped", hidden_for=1000
    )
    job = make_job("fake", tmp_path, clock)
    backend_find = type(job.backend).find

    def find_down_after_first(self, job_id):
        if fake_provider.count("create"):
            raise fh.ProviderError("fake", "find", "service unavailable", status_code=503)
        return backend_find(self, job_id)

    monkeypatch.setattr(type(job.backend), "find", find_down_after_first)
    with pytest.raises(fh.ProviderError, match="may have taken effect.*finetune-hub status"):
        job.submit()
    assert fake_provider.count("create") == 1
    rec = job.store.get(job.id)
    assert rec.provider_job_id is None and rec.error and "create_attempted_at" in rec.extra


def test_a_killed_submit_resumes_without_a_second_job(fake_provider, tmp_path):
    """The process died right after sending the create (the server made the job, slowly): the
    store holds the attempt; a new process attaches and waits for the look-up instead of
    creating again."""
    clock = Clock()
    first = make_job("fake", tmp_path, clock)
    first.validate()
    original = type(first.backend).create

    class Killed(BaseException):
        pass

    def create_then_die(self, job, refs):
        made = original(self, job, refs)
        fake_provider.hidden[made.id] = 5
        raise Killed

    type(first.backend).create = create_then_die
    try:
        with pytest.raises(Killed):
            first.submit()
    finally:
        type(first.backend).create = original
    assert first.store.get(first.id).extra.get("create_attempted_at")

    again = fh.TuningJob.attach(first.id, store=first.store)
    again.sleep, again.clock = clock.sleep, lambda: clock.now
    again.submit()
    assert len(fake_provider.jobs) == 1 and fake_provider.count("create") == 1
    assert again.provider_job_id == next(iter(fake_provider.jobs))


def test_an_ambiguous_deploy_makes_one_deployment(fake_provider, tmp_path):
    clock = Clock()
    job = make_job("fake", tmp_path, clock)
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    fake_provider.fail_next("deploy", status_code=502, hidden_for=3)
    deployment = model.deploy(confirm_cost=True)
    assert fake_provider.deployments_made == 1 and list(fake_provider.deployments) == [
        deployment.name
    ]
    assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY


def test_waits_outlast_an_outage_of_status_polls(fake_openai, tmp_path):
    clock = Clock()
    job = make_job("openai", tmp_path, clock, base_model="gpt-4.1-mini-2025-04-14")
    job.submit()
    fake_openai.inject("GET", r"/fine_tuning/jobs/[^/]+", "503", times=40)
    model = job.wait(poll_interval=1, max_interval=5, progress=False)
    assert model.id.startswith("ft:")
    assert sum(clock.slept) > 60  # many retried polls: far past the ~5 s that used to end it


def test_a_wait_ends_on_a_non_retryable_error(fake_openai, tmp_path):
    clock = Clock()
    job = make_job("openai", tmp_path, clock, base_model="gpt-4.1-mini-2025-04-14")
    job.submit()
    fake_openai.inject("GET", r"/fine_tuning/jobs/[^/]+", 404 if False else "500", times=2)
    fake_openai.inject("GET", r"/fine_tuning/jobs/[^/]+", "drop", times=1)
    assert job.wait(poll_interval=1, progress=False).id  # transient: rides out
    job2 = make_job("openai", tmp_path, clock, base_model="gpt-4.1-mini-2025-04-14")
    job2.submit()
    job2.store.update(job2.id, provider_job_id="ftjob-does-not-exist")
    with pytest.raises(fh.ProviderError) as caught:
        job2.wait(poll_interval=1, progress=False)
    assert caught.value.status_code == 404


def test_a_wait_timeout_still_applies_during_an_outage(fake_openai, tmp_path):
    clock = Clock()
    job = make_job("openai", tmp_path, clock, base_model="gpt-4.1-mini-2025-04-14")
    job.submit()
    fake_openai.inject("GET", r"/fine_tuning/jobs/[^/]+", "503", times=None)
    with pytest.raises(fh.WaitTimeout):
        job.wait(timeout=120, poll_interval=1, progress=False)


def test_secrets_never_show_in_a_job_description():
    spec = fh.JobSpec(
        provider="azure-openai",
        base_model="gpt-4.1-mini",
        training_file="t.jsonl",
        options={
            "api_key": "sk-TOPSECRET",
            "management_token": "tok-TOPSECRET",
            "endpoint": "https://x",
        },
    )
    for shown in (repr(spec), str(spec), spec.model_dump_json(), json.dumps(spec.shown())):
        assert "TOPSECRET" not in shown and "https://x" in shown
    assert spec.options["api_key"] == "sk-TOPSECRET"  # still usable by the connection
    job = fh.TuningJob(spec=spec, store=fh.JobStore(Path("/tmp/unused-fh-store")))
    assert "TOPSECRET" not in repr(job.backend.options) and "TOPSECRET" not in repr(job.spec)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"hyperparameters": [1, 2]}, "hyperparameters"),
        ({"suffix": 5}, "suffix"),
        ({"options": "region=x"}, "options"),
        ({"base_model": None}, "base_model"),
    ],
)
def test_wrong_argument_types_name_the_argument(kwargs, argument):
    args = {
        "provider": "openai",
        "base_model": "gpt-4.1-mini",
        "training_file": "t.jsonl",
        **kwargs,
    }
    with pytest.raises(fh.JobSpecError, match=argument):
        fh.TuningJob(**args)


def test_a_deployment_wait_outlasts_an_outage(fake_provider, tmp_path):
    clock = Clock()
    job = make_job("fake", tmp_path, clock)
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    deployment = model.deploy(confirm_cost=True)
    for _ in range(8):  # more than the 5 attempts of one retried call
        fake_provider.fail_next("get_deployment", status_code=503)
    assert deployment.wait_ready(poll_interval=1) is fh.DeploymentStatus.READY


def test_attach_keeps_the_data_format_and_the_column_mapping(fake_provider, tmp_path):
    data = tmp_path / "instructions.jsonl"
    data.write_text(
        '{"ID": 1, "text": "Say hi", "output": "Hi, gozaru!"}\n'
        '{"ID": 2, "text": "Say bye", "output": "Bye, gozaru!"}\n',
        encoding="utf-8",
    )
    clock = Clock()
    job = fh.TuningJob(
        provider="fake",
        base_model="fake-base-1",
        training_file=data,
        mapping={"prompt": "text", "completion": "output"},
        format="prompt_completion",
        store=fh.JobStore(tmp_path / "store"),
    )
    job.sleep, job.clock = clock.sleep, lambda: clock.now
    assert job.validate().ok
    job.submit()
    again = fh.TuningJob.attach(job.id, store=job.store)
    assert again.spec.mapping == {"prompt": "text", "completion": "output"}
    assert again.spec.format == "prompt_completion"
    assert again.validate().ok  # the raw columns still read as the mapped fields


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("suffix", 5, "suffix must be a string or None, found int (5)"),
        ("hyperparameters", [1], "hyperparameters must be a mapping of names to values"),
        ("validation_file", 3, "validation_file must be a path (str or os.PathLike) or None"),
        ("mapping", "text", "mapping must be a mapping of field names to column names"),
    ],
)
def test_fh_validate_and_tuning_job_word_a_wrong_argument_alike(tmp_path, name, value, expected):
    """One table (checks/arguments.py) words a wrong type, whichever door the user came in by."""
    data = tmp_path / "t.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n', encoding="utf-8")
    common = {"provider": "openai", "base_model": "gpt-4.1-mini", name: value}
    with pytest.raises(fh.JobSpecError) as by_validate:
        fh.validate(data, **common)
    with pytest.raises(fh.JobSpecError) as by_job:
        fh.TuningJob(training_file=data, **common)
    where, said = str(by_validate.value).split(": ", 1)
    assert where == "fh.validate" and expected in said
    assert str(by_job.value) == f"TuningJob: {said}"
