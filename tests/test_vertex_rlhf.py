"""Vertex RLHF with three data sets: checks, the stated cost, the pipeline through
google-cloud-aiplatform (GAPIC over REST) on FakeVertex, its two phases, and the endpoint
deployer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.status import JobStatus
from finetune_hub.testing.vertex_fake_rlhf import rlhf_template

pytest.importorskip("google.cloud.aiplatform_v1")

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
PROMPTS = SAMPLES / "vertex_rlhf_prompts.jsonl"
PREFS = SAMPLES / "vertex_rlhf_preferences.jsonl"
STEPS = {
    "reward_model_train_steps": 10,
    "reward_model_learning_rate_multiplier": 1.0,
    "reinforcement_learning_train_steps": 20,
    "reinforcement_learning_rate_multiplier": 0.5,
    "kl_coeff": 0.1,
}


@pytest.fixture
def options(fake_vertex) -> dict:
    template = f"gs://{fake_vertex.bucket}/templates/rlhf-train-template.json"
    fake_vertex.storage.put(template, json.dumps(rlhf_template()))
    fake_vertex.auto_advance = 120
    return {**fake_vertex.options, "rlhf_template": template, "confirm_cost": True}


def rlhf_job(tmp_path, options, **kw) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="vertex",
        base_model=kw.pop("base_model", "t5-small"),
        method="rlhf",
        training_file=kw.pop("training_file", PREFS),
        datasets=kw.pop("datasets", {"prompt": PROMPTS}),
        hyperparameters=kw.pop("hyperparameters", STEPS),
        options=options,
        store=fh.JobStore(tmp_path / "store"),
        **kw,
    )
    job.sleep = lambda seconds: None
    return job


def codes(report) -> set[str]:
    return {i.code for i in [*report.errors, *report.warnings]}


def test_the_cost_is_stated_and_must_be_confirmed(tmp_path, options):
    job = rlhf_job(tmp_path, {**options, "confirm_cost": False})
    report = job.validate()
    (issue,) = [i for i in report.errors if i.code == "cost_confirmation_required"]
    assert "8 x NVIDIA A100 80GB" in issue.message and "$45.80 per hour" in issue.message
    assert "confirm_cost" in issue.message
    with pytest.raises(fh.ValidationError):
        job.submit()
    confirmed = rlhf_job(tmp_path, options).validate()
    assert confirmed.ok and "pipeline_cost" in codes(confirmed)


def test_each_data_set_is_checked_and_across(tmp_path, options):
    prefs = tmp_path / "prefs.jsonl"
    lines = PREFS.read_text(encoding="utf-8").splitlines()
    same = json.loads(lines[2])
    same["candidate_1"] = same["candidate_0"]
    prefs.write_text("\n".join([*lines[:2], json.dumps(same), *lines[3:]]) + "\n")
    evals = tmp_path / "eval.jsonl"
    evals.write_text(lines[0].split(', "candidate_0"')[0] + "}\n" + '{"input_text": "new one"}\n')
    bad_prompts = tmp_path / "prompts.jsonl"
    bad_prompts.write_text('{"input_text": "a"}\n{"text": "no input_text"}\n')
    report = rlhf_job(
        tmp_path,
        options,
        training_file=prefs,
        datasets={"prompt": bad_prompts, "eval": evals},
    ).validate()
    issues = {i.code: i for i in [*report.errors, *report.warnings]}
    assert issues["identical_candidates"].line == 3
    assert issues["eval_overlaps_training"].line == 1 and not report.ok
    assert any(i.file == str(bad_prompts) for i in report.errors)

    missing = rlhf_job(tmp_path, options, datasets={}).validate()
    assert "missing_dataset" in codes(missing)
    named = rlhf_job(
        tmp_path, options, training_file=PROMPTS, datasets={"preference": PREFS, "prompt": PROMPTS}
    ).validate()
    assert named.ok, named.errors


def test_rlhf_on_a_retired_palm_model_is_refused_naming_todays_way(tmp_path, options):
    for model in ("text-bison@001", "text-bison@002", "chat-bison@001"):
        report = rlhf_job(tmp_path, options, base_model=model).validate()
        (issue,) = [e for e in report.errors if e.code == "model_shutdown"]
        assert f"{model} was retired on 2025-04-09" in issue.message
        assert "Gemini preference tuning (method='dpo' on gemini-2.5-flash" in issue.message
        assert "migrate-palm-to-gemini" in issue.message  # the source says so
    # today's way runs: the same preferences, method="dpo" on the named model
    dpo = fh.TuningJob(
        provider="vertex",
        base_model="gemini-2.5-flash",
        method="dpo",
        training_file=PREFS,
        hyperparameters={"beta": 0.1},
        options=options,
        store=fh.JobStore(tmp_path / "store"),
    ).validate()
    assert dpo.ok, dpo.errors


def test_the_pipeline_runs_both_phases_and_its_model_deploys(fake_vertex, tmp_path, options):
    job = rlhf_job(tmp_path, options, suffix="taglines")
    fake_vertex.inject("POST", "pipelineJobs.create", "500", after=True)
    job.submit()
    assert len(fake_vertex.pipeline_jobs) == 1  # found by its id, not created twice
    assert job.provider_job_id.endswith(f"/pipelineJobs/fh-{job.id.replace('_', '-')}")
    sent = next(r.json for r in fake_vertex.requests if r.operation == "pipelineJobs.create")
    params = sent["runtimeConfig"]["parameterValues"]
    assert params["large_model_reference"] == "t5-small"
    assert params["reward_model_train_steps"] == 10 and params["kl_coeff"] == 0.1
    assert params["preference_dataset"].endswith(f"{job.id}/training.jsonl")
    assert params["prompt_dataset"].endswith(f"{job.id}/prompt.jsonl")
    assert params["model_display_name"] == "taglines" and params["deploy_model"] is False

    model = job.wait(poll_interval=0.01, progress=False)
    assert job.status is JobStatus.SUCCEEDED and "/models/" in model.id
    phases = [e for e in job.events() if e.type == "phase"]
    assert [(e.data["phase"], e.message.split()[-1]) for e in phases] == [
        ("reward model", "started"),
        ("reward model", "succeeded"),
        ("reinforcement learning", "started"),
        ("reinforcement learning", "succeeded"),
    ]

    with pytest.raises(fh.CostConfirmationRequired, match=r"\$45.80 per hour"):
        model.deploy(
            machine_type="a2-ultragpu-8g", accelerator_type="NVIDIA_A100_80GB", accelerator_count=8
        )
    deployment = model.deploy(confirm_cost=True)
    assert model.deploy(confirm_cost=True).name == deployment.name
    assert len(fake_vertex.serving.endpoints) == 1
    assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY
    assert deployment.chat([{"role": "user", "content": "a tagline?"}]) == "Tuned echo: a tagline?"
    assert model.chat([{"role": "user", "content": "again"}]) == "Tuned echo: again"
    deployment.delete()
    deployment.delete()
    assert fake_vertex.serving.endpoints == {}
    model.delete()
    assert fake_vertex.serving.models == {}


def test_cancel_a_pipeline(fake_vertex, tmp_path, options):
    fake_vertex.auto_advance = 0
    job = rlhf_job(tmp_path, options)
    job.submit()
    assert job.cancel() is JobStatus.CANCELLING
    fake_vertex.advance(30)
    assert job.refresh() is JobStatus.CANCELLED


def test_a_failed_phase_fails_the_job(fake_vertex, tmp_path, options):
    fake_vertex.fail_next_pipeline("reward-model-trainer", "Reward model diverged.")
    job = rlhf_job(tmp_path, options)
    job.submit()
    with pytest.raises(fh.JobFailed, match="Reward model diverged"):
        job.wait(poll_interval=0.01, progress=False)
    assert any(e.level == "error" and "reward model" in e.message for e in job.events())


def test_a_job_file_names_the_data_sets_and_the_cli_states_the_cost(
    fake_vertex, tmp_path, options, capsys
):
    import shutil

    from finetune_hub.cli.main import main as cli

    for src in (PROMPTS, PREFS):
        shutil.copy(src, tmp_path / src.name)
    job_file = tmp_path / "rlhf.yaml"
    job_file.write_text(
        "provider: vertex\nbase_model: t5-small\nmethod: rlhf\n"
        "training_file: vertex_rlhf_preferences.jsonl\n"
        "datasets: {prompt: vertex_rlhf_prompts.jsonl}\n"
        "hyperparameters: {reward_model_train_steps: 10, kl_coeff: 0.2}\n"
        f"options: {{project: {fake_vertex.project}, gcs_uri: '{fake_vertex.gcs_uri}',"
        f" rlhf_template: '{options['rlhf_template']}'}}\n",
        encoding="utf-8",
    )
    job = fh.TuningJob.from_file(job_file, store=fh.JobStore(tmp_path / "store"))
    assert job.spec.datasets == {"prompt": str(tmp_path / "vertex_rlhf_prompts.jsonl")}
    assert "cost_confirmation_required" in codes(job.validate())
    code = cli(["submit", str(job_file), "--home", str(tmp_path / "cli-home")])
    out = capsys.readouterr().out
    assert code != 0 and "8 x NVIDIA A100 80GB" in out and "nothing was uploaded" in out
    assert fake_vertex.requests == []


def test_the_cli_takes_named_data_sets(fake_vertex, tmp_path, options, monkeypatch, capsys):
    """`finetune-hub submit --dataset prompt=... --dataset preference=...`: each set goes up
    under its own name and the pipeline gets each where the template wants it."""
    import google.auth

    from finetune_hub.cli.main import main as cli

    # the CLI cannot pass a credentials object: it takes the default chain, here the fake's token
    creds = fake_vertex.options["credentials"]
    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (creds, fake_vertex.project))
    flags = [
        f"--option={k}={options[k]}"
        for k in ("project", "gcs_uri", "api_endpoint", "rlhf_template")
    ]
    argv = [
        "submit",
        "--provider=vertex",
        "--model=t5-small",
        "--method=rlhf",
        f"--dataset=prompt={PROMPTS}",
        f"--dataset=preference={PREFS}",
        "--hp=reward_model_train_steps=10",
        "--option=confirm_cost=true",
        "--yes",
        *flags,
        "--home",
        str(tmp_path / "cli-home"),
    ]
    assert cli(argv) == 0, capsys.readouterr().out
    (job,) = fh.JobStore(tmp_path / "cli-home").list()
    assert job.datasets == {"prompt": str(PROMPTS), "preference": str(PREFS)}
    sent = next(r.json for r in fake_vertex.requests if r.operation == "pipelineJobs.create")
    params = sent["runtimeConfig"]["parameterValues"]
    assert params["prompt_dataset"].endswith(f"{job.id}/prompt.jsonl")
    assert params["preference_dataset"].endswith(f"{job.id}/preference.jsonl")
    assert params["reward_model_train_steps"] == 10
    assert cli(["submit", "--provider=vertex", "--dataset=prompt", "--home", "x"]) != 0
