"""Migration: a retired model's job runs again on its replacement in one call, the data
re-validated (and converted where the successor takes another format), the hyperparameters it
still takes carried over and the others named, and both records linked in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main
from finetune_hub.jobs.migrate import FROM_KEY, TO_KEY, MigrationError
from finetune_hub.store import JobRecord

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"


def test_a_retired_models_job_migrates_to_its_replacement_with_linked_records(
    fake_azure_openai, tmp_path, monkeypatch
):
    monkeypatch.setenv("FINETUNE_HUB_TODAY", "2026-11-30")  # the job was made while it lived
    store = fh.JobStore(tmp_path / "store")
    old = fh.TuningJob(
        provider="azure-openai",
        base_model="gpt-4o-mini-2024-07-18",
        training_file=CHAT,
        hyperparameters={"epochs": 2, "batch_size": 4},
        suffix="gozaru",
        store=store,
    )
    old.sleep = lambda s: None
    old.submit()
    monkeypatch.setenv("FINETUNE_HUB_TODAY", "2027-10-02")  # retired the day before
    assert "model_shutdown" in {i.code for i in old.validate().errors}

    new = fh.TuningJob.attach(old.id, store=store).migrate()
    plan = new.migration
    assert plan.to_model == "gpt-4.1-mini" and plan.proposed_by == "the rules' replacement"
    assert plan.kept == {"epochs": 2, "batch_size": 4} and plan.dropped == {}
    assert plan.converted == []  # the successor takes chat records as they are
    assert new.provider_job_id and new.provider_job_id != old.provider_job_id
    assert new.spec.suffix == "gozaru" and new.spec.training_file == str(CHAT)
    made = [j.model for j in fake_azure_openai.jobs.values()]
    assert len(made) == 2 and made[-1].startswith("gpt-4.1-mini")
    new_rec, old_rec = store.require(new.id), store.require(old.id)
    assert new_rec.extra[FROM_KEY]["from_job"] == old.id
    assert new_rec.extra[FROM_KEY]["from_model"] == "gpt-4o-mini-2024-07-18"
    assert (
        old_rec.extra[TO_KEY]["job"] == new.id
        and old_rec.extra[TO_KEY]["to_model"] == "gpt-4.1-mini"
    )
    assert new_rec.hyperparameters == {"epochs": 2, "batch_size": 4}


@pytest.fixture
def successor_rules(fake_provider, tmp_path):
    """In the fake's rules: fake-old-1 (retired; chat or prompt/completion, epochs and
    learning_rate_multiplier) replaced by fake-new-1 (prompt/completion only, epochs <= 10)."""
    rules = tmp_path / "successor.toml"
    rules.write_text(
        """
[provider]
name = "fake"

[blocks.pc_only]
extends = "base"
formats = ["prompt_completion"]
hyperparameters = "epochs_only"
source = "fake"
as_of = 2026-11-30

[hyperparameters.epochs_only.epochs]
provider_name = "n_epochs"
type = "int"
min = 1
max = 10
source = "fake"
as_of = 2026-11-30

[[models]]
id = "fake-old-1"
methods = { sft = "sft" }
retired_on = 2026-01-01
replacement = "fake-new-1"
source = "fake"
as_of = 2026-11-30

[[models]]
id = "fake-new-1"
methods = { sft = "pc_only" }
source = "fake"
as_of = 2026-11-30
""",
        encoding="utf-8",
    )
    fh.rules.load(rules)
    return fake_provider


def old_record(store, **hp) -> JobRecord:
    return store.create(
        JobRecord(
            provider="fake",
            base_model="fake-old-1",
            training_file=str(CHAT),
            hyperparameters=hp,
            provider_job_id="fakejob-old",
            status=fh.JobStatus.SUCCEEDED,
            fine_tuned_model="fake:fake-old-1:fakejob-old",
        )
    )


def test_the_data_are_converted_and_dropped_hyperparameters_named(successor_rules, tmp_path):
    store = fh.JobStore(tmp_path / "store")
    rec = old_record(store, epochs=3, learning_rate_multiplier=0.5)
    old = fh.TuningJob.attach(rec.id, store=store)
    assert "model_shutdown" in {i.code for i in old.validate().errors}
    new = old.migrate()
    plan = new.migration
    assert plan.to_model == "fake-new-1" and plan.kept == {"epochs": 3}
    assert list(plan.dropped) == ["learning_rate_multiplier"]
    assert "learning_rate_multiplier" in plan.dropped["learning_rate_multiplier"]
    assert len(plan.converted) == 1 and "chat" in plan.converted[0]
    assert "prompt_completion" in plan.converted[0]
    uploaded = successor_rules.files[f"file-{new.id}-training"].decode().splitlines()
    assert {"prompt", "completion"} <= set(json.loads(uploaded[0]))  # converted before upload
    assert Path(new.spec.training_file).is_file() and new.spec.training_file != str(CHAT)
    job = next(j for j in successor_rules.jobs.values() if j.job.job_id == new.id)
    assert job.job.model_id == "fake-new-1" and job.job.hyperparameters == {"n_epochs": 3}
    assert store.require(rec.id).extra[TO_KEY]["job"] == new.id


def test_a_value_the_successor_refuses_is_dropped_and_no_successor_is_an_error(
    successor_rules, tmp_path
):
    store = fh.JobStore(tmp_path / "store")
    old = fh.TuningJob.attach(old_record(store, epochs=20).id, store=store)
    new = old.migrate(submit=False)
    assert new.migration.kept == {} and "10" in new.migration.dropped["epochs"]
    assert new.record is None and new.report is not None  # validated, nothing sent
    other = fh.TuningJob(provider="fake", base_model="fake-new-1", training_file=CHAT, store=store)
    with pytest.raises(MigrationError, match="no replacement"):
        other.migrate()
    with pytest.raises(MigrationError, match="does not support method"):
        fh.TuningJob(provider="fake", base_model="fake-new-1", training_file=CHAT, method="dpo",
                     store=store).migrate(to="fake-new-1")  # fmt: skip


def test_the_cli_plans_then_migrates(successor_rules, tmp_path, capsys):
    home = tmp_path / "store"
    rec = old_record(fh.JobStore(home), epochs=3, learning_rate_multiplier=0.5)
    assert main(["migrate", rec.id, "--home", str(home), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "fake-new-1" in out and "dropped learning_rate_multiplier" in out
    assert "not submitted" in out and not successor_rules.jobs
    assert main(["migrate", rec.id, "--home", str(home), "--yes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["submitted"] and data["job"]["extra"][FROM_KEY]["from_job"] == rec.id
    assert len(successor_rules.jobs) == 1


def test_the_cli_names_its_own_flag_when_the_rules_have_no_replacement(
    successor_rules, tmp_path, capsys
):
    home = tmp_path / "store"
    store = fh.JobStore(home)
    rec = store.create(
        JobRecord(provider="fake", base_model="fake-new-1", training_file=str(CHAT),
                  provider_job_id="fakejob-new", status=fh.JobStatus.SUCCEEDED)
    )  # fmt: skip
    assert main(["migrate", rec.id, "--home", str(home), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "no replacement" in err and "--to MODEL" in err and "to=" not in err
