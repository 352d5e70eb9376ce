"""azure-foundry serverless endpoints end to end on the real azure-ai-ml against
FakeAzureFoundry: the hourly cost stated and confirmed, deploy, keys, chat, the before/after
check with fh.evaluate, idempotent delete, the store's list of billing deployments, and the
example script."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("azure.ai.ml")

import finetune_hub as fh  # noqa: E402
from finetune_hub.jobs.evaluation import ends_with, evaluate  # noqa: E402
from finetune_hub.jobs.model import TunedModel  # noqa: E402
from finetune_hub.status import DeploymentStatus  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHAT = EXAMPLES / "data" / "chat_gozaru.jsonl"
PHI = "Phi-4-mini-instruct"
PHI_ID = f"azureml://registries/azureml/models/{PHI}"

logging.getLogger("azure.ai.ml").setLevel(logging.ERROR)


def samurai(fake):
    """Tuned models answer in ござる, base models do not."""
    return lambda model_id, messages: (
        "承知いたしたでござる" if fake.is_tuned(model_id) else "承知しました"
    )


@pytest.fixture
def store(tmp_path):
    return fh.JobStore(tmp_path / "home")


@pytest.fixture
def model(fake_azure_foundry, store, tmp_path):
    """A tuned Phi-4-mini-instruct on the fake."""
    fake = fake_azure_foundry
    train, validation = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    fh.split(CHAT, train, validation, validation_size=4, seed=7)
    job = fh.TuningJob(
        provider="azure-foundry",
        base_model=PHI,
        training_file=train,
        validation_file=validation,
        hyperparameters={"epochs": 1},
        options=fake.options,
        store=store,
    )
    job.sleep = fake.advance
    job.submit()
    return job.wait(poll_interval=30, progress=False)


def test_deploy_states_the_hourly_cost_and_needs_confirmation(fake_azure_foundry, model):
    fake = fake_azure_foundry
    before = len(fake.requests)
    with pytest.raises(fh.CostConfirmationRequired) as refused:
        model.deploy()
    message = str(refused.value)
    assert "bills by the hour while it exists" in message
    assert "rate unknown to finetune_hub" in message and "confirm_cost=True" in message
    assert len(fake.requests) == before  # nothing was sent
    cost = model.deployment_cost()
    assert cost.hourly_usd is None and "region-availability-maas" in cost.source
    base = TunedModel(model.job, PHI_ID).deployment_cost()
    assert base.hourly_usd == 0.0 and "per token" in base.note


def test_deploy_chat_delete(fake_azure_foundry, model, store):
    fake = fake_azure_foundry
    fake.reply = samurai(fake)
    deployment = model.deploy(confirm_cost=True)
    assert deployment.kind == "serverless"
    assert deployment.status is DeploymentStatus.CREATING
    assert deployment.wait_ready(poll_interval=30) is DeploymentStatus.READY
    assert deployment.info.endpoint == f"https://{deployment.name}.eastus2.models.ai.azure.com"
    put = next(r for r in fake.requests if r.method == "PUT" and "serverless" in r.path)
    assert put.json["sku"] == {"name": "Consumption"}
    assert put.json["properties"]["modelSettings"]["modelId"] == model.id

    assert deployment.chat([{"role": "user", "content": "空は?"}]) == "承知いたしたでござる"
    assert fake.count("POST", r"/serverlessEndpoints/[^/]+/listKeys") == 1
    chat = [r for r in fake.requests if r.surface == "inference"][-1]
    assert chat.path == "/v1/chat/completions" and chat.headers["authorization"] == "<redacted>"

    (billing,) = store.list_deployments(active_only=True)
    assert billing.name == deployment.name and billing.hourly_cost_usd is None
    again = model.deploy(confirm_cost=True)  # same name: found, not created twice
    assert again.name == deployment.name
    assert fake.count("PUT", r"/serverlessEndpoints/[^/]+") == 1

    deployment.delete()
    deployment.delete()  # already going or gone: not an error
    assert deployment.status is DeploymentStatus.DELETED
    assert store.list_deployments(active_only=True) == []
    fake.advance(fake.delete_seconds)
    assert fake.endpoints[deployment.name.lower()].gone(fake.clock.now())


def test_faults_on_the_endpoint_are_retried_and_create_it_once(fake_azure_foundry, model):
    fake = fake_azure_foundry
    fake.inject("PUT", r"/serverlessEndpoints/[^/]+", "500", after=True)
    fake.inject("POST", "/v1/chat/completions", "429", retry_after=3)
    deployment = model.deploy(confirm_cost=True)
    deployment.wait_ready(poll_interval=30)
    assert len(fake.endpoints) == 1
    assert fake.count("PUT", r"/serverlessEndpoints/[^/]+") == 1  # the retry found it first
    assert deployment.chat([{"role": "user", "content": "hi"}]).startswith("[fine-tuned")


def test_evaluate_tells_the_tuned_model_from_its_base(fake_azure_foundry, model):
    fake = fake_azure_foundry
    fake.reply = samurai(fake)
    base = TunedModel(model.job, PHI_ID)
    with (
        model.deploy(confirm_cost=True, delete_on_exit=True) as tuned,
        base.deploy(confirm_cost=True, name="gozaru-base", delete_on_exit=True) as before,
    ):
        tuned.wait_ready(poll_interval=30)
        before.wait_ready(poll_interval=30)
        table = evaluate(
            tuned.chat, ["猫は?", "犬は?"], scorer=ends_with("ござる"), base=before.chat
        )
    assert (table.base_rate, table.tuned_rate) == (0.0, 1.0)
    assert "base 0% tuned 100% of 2 prompts" in str(table)
    assert tuned.status is before.status is DeploymentStatus.DELETED
    assert fake.count("DELETE", r"/serverlessEndpoints/[^/]+") == 2


def test_the_tuning_that_did_not_take_shows_in_the_table(fake_azure_foundry, model):
    fake = fake_azure_foundry
    fake.reply = lambda model_id, messages: "承知しました"  # tuned answers like the base
    with model.deploy(confirm_cost=True, delete_on_exit=True) as tuned:
        tuned.wait_ready(poll_interval=30)
        table = evaluate(tuned.chat, ["猫は?"], scorer=ends_with("ござる"))
    assert table.tuned_rate == 0.0


def test_example_runs_against_the_fake(fake_azure_foundry, store, monkeypatch, capsys):
    fake = fake_azure_foundry
    fake.reply = samurai(fake)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("azure_foundry_gozaru", None)
    import azure_foundry_gozaru

    table = azure_foundry_gozaru.main(
        options=fake.options, store=store, poll_interval=30, sleep=fake.advance
    )
    out = capsys.readouterr().out
    assert "tsuzumi2:" in out and "learning rate cannot be set" in out
    assert "bills by the hour" in out and "job completed" in out
    assert (table.base_rate, table.tuned_rate) == (0.0, 1.0)
    assert store.list_deployments(active_only=True) == []
    assert fake.count("DELETE", r"/serverlessEndpoints/[^/]+") == 2


def test_the_tuned_model_is_archived_once_its_endpoint_is_gone(fake_azure_foundry, model):
    fake = fake_azure_foundry
    deployment = model.deploy(confirm_cost=True)
    deployment.wait_ready(poll_interval=30)
    with pytest.raises(fh.ProviderError, match="delete the deployment first"):
        model.delete()
    deployment.delete()
    fake.advance(fake.delete_seconds)
    model.delete()
    (registered,) = fake.models.values()
    assert registered.archived
    assert fake.count("PUT", r"/models/[^/]+/versions/1") == 2


def test_the_contract_scenario_with_polls_that_do_not_sleep(fake_azure_foundry, store, tmp_path):
    """tests/test_contract.py's flow (sleeps are no-ops there): the fake's clock still moves
    with every job and endpoint GET, so waits end."""
    fake = fake_azure_foundry
    train, validation = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    fh.split(CHAT, train, validation, validation_size=4, seed=1)
    job = fh.TuningJob(
        provider="azure-foundry",
        base_model=PHI,
        training_file=train,
        validation_file=validation,
        hyperparameters={"epochs": 2},
        options=fake.options,
        store=store,
    )
    job.sleep = lambda seconds: None
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    assert job.events() and isinstance(job.metrics(), list)
    deployment = model.deploy(confirm_cost=True)
    assert model.deploy(confirm_cost=True).name == deployment.name
    assert deployment.wait_ready(poll_interval=0.01) is DeploymentStatus.READY
    assert deployment.chat([{"role": "user", "content": "hello"}])
    deployment.delete()
    deployment.delete()
    fake.advance(fake.delete_seconds)
    model.delete()
