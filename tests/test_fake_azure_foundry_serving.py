"""FakeAzureFoundry driven by the real azure-ai-ml: marketplace subscriptions, serverless
endpoints and their keys, chat on an endpoint, metrics (MLflow REST), the model registry, and
the OpenAI-compatible surface (FakeAzureOpenAI) for models Foundry tunes through that API."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("azure.ai.ml")

from azure.ai.ml import MLClient  # noqa: E402
from azure.ai.ml.entities import MarketplaceSubscription, ServerlessEndpoint  # noqa: E402
from azure.ai.ml.finetuning import create_finetuning_job  # noqa: E402
from azure.core import PipelineClient  # noqa: E402
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: E402
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy  # noqa: E402
from azure.core.rest import HttpRequest  # noqa: E402

PHI = "azureml://registries/azureml/models/Phi-4-mini-instruct"
LLAMA = "azureml://registries/azureml-meta/models/Meta-Llama-3.1-70B-Instruct"
CHAT = (
    b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
)

warnings.filterwarnings("ignore", message=".*experimental.*")


@pytest.fixture
def ml(fake_azure_foundry):
    return fake_azure_foundry.ml_client(show_progress=False)


def tuned_model(fake, ml, name="ft-1", base=PHI, prefix="phi-ft"):
    """Run a fine-tuning job to completion; the endpoint model id of its output."""
    data = fake.add_blob(f"ft/{name}.jsonl", CHAT)
    job = create_finetuning_job(
        model=f"{base}/versions/1",
        task="ChatCompletion",
        training_data=data,
        validation_data=data,
        output_model_name_prefix=prefix,
        hyperparameters={"num_train_epochs": "1"},
        name=name,
    )
    ml.jobs.create_or_update(job)
    fake.set_state(name, "Completed")
    version = ml.models.get(prefix, "1")
    return (
        f"azureml://locations/{fake.location}/workspaces/{fake.workspace_id}"
        f"/models/{version.name}/versions/{version.version}"
    )


def chat(fake, uri, key, text="hello", *, auth=None):
    client = PipelineClient(uri, transport=fake.transport, policies=[RetryPolicy()])
    headers = {"Authorization": key} if auth is None else auth
    request = HttpRequest(
        "POST",
        f"{uri}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": text}], "max_tokens": 50},
        headers=headers,
    )
    return client.send_request(request)


# --- marketplace subscriptions -----------------------------------------------------------------


def test_marketplace_subscription_lifecycle(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    created = ml.marketplace_subscriptions.begin_create_or_update(
        MarketplaceSubscription(model_id=LLAMA, name="llama-sub")
    ).result()
    assert created.marketplace_plan.publisher_id == "metagenai"
    assert created.status == "subscribed"
    assert created.provisioning_state == "succeeded"
    put = next(r for r in fake.requests if r.method == "PUT")
    assert (put.path, put.query["api-version"]) == (
        "/marketplaceSubscriptions/llama-sub",
        "2024-01-01-preview",
    )
    assert put.json == {"properties": {"modelId": LLAMA}}
    assert ml.marketplace_subscriptions.get("llama-sub").model_id == LLAMA
    assert [s.name for s in ml.marketplace_subscriptions.list()] == ["llama-sub"]
    again = ml.marketplace_subscriptions.begin_create_or_update(
        MarketplaceSubscription(model_id=LLAMA, name="llama-sub")
    ).result()
    assert again.name == "llama-sub" and len(fake.subscriptions) == 1
    ml.marketplace_subscriptions.begin_delete("llama-sub").result()
    ml.marketplace_subscriptions.begin_delete("llama-sub").result()
    with pytest.raises(ResourceNotFoundError):
        ml.marketplace_subscriptions.get("llama-sub")


def test_a_subscription_that_takes_time_and_one_that_is_not_needed(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.subscribe_seconds = 60
    poller = ml.marketplace_subscriptions.begin_create_or_update(
        MarketplaceSubscription(model_id=LLAMA, name="llama-sub")
    )
    assert poller.result().status == "subscribed"
    assert sum(fake.sleeps) >= 60
    with pytest.raises(HttpResponseError, match="does not need a marketplace subscription"):
        ml.marketplace_subscriptions.begin_create_or_update(
            MarketplaceSubscription(model_id=PHI, name="phi-sub")
        ).result()
    with pytest.raises(HttpResponseError, match="without a version"):
        ml.marketplace_subscriptions.begin_create_or_update(
            MarketplaceSubscription(model_id=f"{LLAMA}/versions/1", name="v-sub")
        ).result()


def test_a_llama_job_needs_the_subscription_first(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    with pytest.raises(HttpResponseError, match="create a marketplace subscription"):
        tuned_model(fake, ml, "ll-1", base=LLAMA, prefix="llama-ft")
    ml.marketplace_subscriptions.begin_create_or_update(
        MarketplaceSubscription(model_id=LLAMA, name="llama-sub")
    ).result()
    model_id = tuned_model(fake, ml, "ll-1", base=LLAMA, prefix="llama-ft")
    endpoint = ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="llama-ft-ep", model_id=model_id)
    ).result()
    assert endpoint.provisioning_state == "succeeded"


# --- serverless endpoints ------------------------------------------------------------------------


def test_serverless_endpoint_for_a_tuned_model(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    model_id = tuned_model(fake, ml)
    start = fake.clock.now()
    endpoint = ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="phi-ft-ep", model_id=model_id)
    ).result()
    assert endpoint.provisioning_state == "succeeded"
    assert endpoint.scoring_uri == f"https://phi-ft-ep.{fake.location}.models.ai.azure.com"
    assert fake.clock.now() - start >= fake.deploy_seconds  # the poller waited on the fake clock
    put = next(r for r in fake.requests if r.method == "PUT" and "serverless" in r.path)
    assert put.json["sku"] == {"name": "Consumption"}
    assert put.json["location"] == fake.location  # from the workspace GET before the PUT
    assert put.json["properties"]["modelSettings"]["modelId"] == model_id
    assert ml.serverless_endpoints.get("phi-ft-ep").model_id == model_id
    assert [e.name for e in ml.serverless_endpoints.list()] == ["phi-ft-ep"]
    keys = ml.serverless_endpoints.get_keys("phi-ft-ep")
    assert keys.primary_key and keys.primary_key != keys.secondary_key
    assert fake.endpoint_hours("phi-ft-ep") > 0


def test_delete_is_long_running_and_idempotent(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    model_id = tuned_model(fake, ml)
    ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="phi-ft-ep", model_id=model_id)
    ).result()
    fake.inject("GET", r".*/mfeOperationResults/.*", "503")  # one more poll, while deleting
    ml.serverless_endpoints.begin_delete("phi-ft-ep").result()
    assert fake.count("GET", r".*/mfeOperationResults/.*") >= 2
    with pytest.raises(ResourceNotFoundError):
        ml.serverless_endpoints.get("phi-ft-ep")
    ml.serverless_endpoints.begin_delete("phi-ft-ep").result()
    deletes = [r.status for r in fake.requests if r.method == "DELETE"]
    assert deletes == [202, 204]
    hours = fake.endpoint_hours("phi-ft-ep")
    fake.advance(3600)
    assert fake.endpoint_hours("phi-ft-ep") == hours  # billing stopped at the delete


def test_endpoint_validation(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    with pytest.raises(HttpResponseError, match="neither a catalog model nor a model registered"):
        ml.serverless_endpoints.begin_create_or_update(
            ServerlessEndpoint(
                name="nope-ep",
                model_id=f"azureml://locations/{fake.location}/workspaces/{fake.workspace_id}"
                "/models/missing/versions/1",
            )
        ).result()
    with pytest.raises(HttpResponseError, match="invalid"):
        ml.serverless_endpoints.begin_create_or_update(
            ServerlessEndpoint(name="9-bad_name", model_id=PHI)
        ).result()
    model_id = tuned_model(fake, ml)
    ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="phi-ep", model_id=model_id)
    ).result()
    with pytest.raises(HttpResponseError, match="cannot be changed"):
        ml.serverless_endpoints.begin_create_or_update(
            ServerlessEndpoint(name="phi-ep", model_id=PHI)
        ).result()


def test_endpoint_faults_429_and_500_after_create(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.inject("PUT", "/serverlessEndpoints/base-ep", "429", retry_after=3)
    fake.inject("PUT", "/serverlessEndpoints/base-ep", "500", after=True)
    endpoint = ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="base-ep", model_id=PHI)
    ).result()
    assert endpoint.provisioning_state == "succeeded"
    assert list(fake.endpoints) == ["base-ep"]
    assert fake.sleeps[0] == 3.0
    fake.inject("POST", "/serverlessEndpoints/base-ep/listKeys", "500", times=None)
    with pytest.raises(HttpResponseError):
        ml.serverless_endpoints.get_keys("base-ep")


# --- chat on an endpoint -------------------------------------------------------------------------


def test_chat_tells_the_tuned_model_from_the_base_model(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.reply = lambda model_id, messages: "はい、でござる" if fake.is_tuned(model_id) else "はい"
    endpoints = {
        "base-ep": PHI,
        "tuned-ep": tuned_model(fake, ml),
    }
    answers = {}
    for name, model_id in endpoints.items():
        endpoint = ml.serverless_endpoints.begin_create_or_update(
            ServerlessEndpoint(name=name, model_id=model_id)
        ).result()
        key = ml.serverless_endpoints.get_keys(name).primary_key
        response = chat(fake, endpoint.scoring_uri, key)
        assert response.status_code == 200
        answers[name] = response.json()["choices"][0]["message"]["content"]
    assert answers == {"base-ep": "はい", "tuned-ep": "はい、でござる"}
    assert fake.usage["tuned-ep"]["requests"] == 1
    chat_request = [r for r in fake.requests if r.surface == "inference"][-1]
    assert chat_request.headers["authorization"] == "<redacted>"


def test_chat_auth_and_default_reply(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    endpoint = ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="base-ep", model_id=PHI)
    ).result()
    keys = ml.serverless_endpoints.get_keys("base-ep")
    bearer = chat(
        fake, endpoint.scoring_uri, "", auth={"Authorization": f"Bearer {keys.secondary_key}"}
    )
    assert bearer.json()["choices"][0]["message"]["content"] == "[base Phi-4-mini-instruct] hello"
    assert (
        chat(fake, endpoint.scoring_uri, "", auth={"api-key": keys.primary_key}).status_code == 200
    )
    assert chat(fake, endpoint.scoring_uri, "wrong-key").status_code == 401
    ml.serverless_endpoints.begin_delete("base-ep").result()
    assert chat(fake, endpoint.scoring_uri, keys.primary_key).status_code == 404


def test_chat_faults(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    endpoint = ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="base-ep", model_id=PHI)
    ).result()
    key = ml.serverless_endpoints.get_keys("base-ep").primary_key
    fake.inject("POST", "/v1/chat/completions", "429", retry_after=2)
    response = chat(fake, endpoint.scoring_uri, key)
    assert response.status_code == 200  # azure-core's retry policy waited Retry-After
    assert fake.sleeps[-1] == 2.0


# --- metrics, registry ---------------------------------------------------------------------------


def test_metrics_through_the_mlflow_rest_api(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    tuned_model(fake, ml)  # forced to Completed before Running: no generated points
    data = fake.add_blob("ft/m.jsonl", CHAT)
    job = create_finetuning_job(
        model=f"{PHI}/versions/1",
        task="ChatCompletion",
        training_data=data,
        validation_data=data,
        output_model_name_prefix="m-ft",
        name="m-1",
    )
    ml.jobs.create_or_update(job)
    fake.advance(40 + 60)  # NotStarted 10 s, Queued 30 s, then 60 s of Running
    fake.log_metric("m-1", "custom_score", 0.75, step=6)
    workspace = ml.workspaces.get(fake.workspace)
    base = workspace.mlflow_tracking_uri.replace("azureml://", "https://")
    client = PipelineClient(
        base,
        transport=fake.transport,
        policies=[BearerTokenCredentialPolicy(fake.credential, "https://ml.azure.com/.default")],
    )
    run = client.send_request(
        HttpRequest("GET", f"{base}/api/2.0/mlflow/runs/get", params={"run_id": "m-1"})
    ).json()["run"]
    assert run["info"]["status"] == "RUNNING"
    latest = {m["key"]: m for m in run["data"]["metrics"]}
    assert latest["loss"]["step"] == 6 and latest["custom_score"]["value"] == 0.75
    assert {"epoch", "eval_loss"} <= set(latest)
    history = client.send_request(
        HttpRequest(
            "GET",
            f"{base}/api/2.0/mlflow/metrics/get-history",
            params={"run_id": "m-1", "metric_key": "loss"},
        )
    ).json()["metrics"]
    assert [p["step"] for p in history] == [1, 2, 3, 4, 5, 6]
    assert history[0]["value"] > history[-1]["value"]  # the loss goes down


def test_registry_client_finds_the_catalog_model(fake_azure_foundry):
    fake = fake_azure_foundry
    registry = MLClient(fake.credential, registry_name="azureml", transport=fake.transport)
    model = registry.models.get("Phi-4-mini-instruct", label="latest")
    assert model.id == f"{PHI}/versions/1"
    assert "eastus2" in model.tags["maas-finetuning-deploy-regions"]
    with pytest.raises(ResourceNotFoundError):
        registry.models.get("tsuzumi-7b", version="1")


# --- the OpenAI-compatible surface: FakeAzureOpenAI as is -----------------------------------------


def test_foundry_open_models_on_the_openai_compatible_surface(fake_azure_openai):
    """Foundry resources tune some open models (gpt-oss, Qwen, Llama 3.3) through the Azure
    OpenAI fine-tuning API and serve them on GlobalStandard deployments: FakeAzureOpenAI
    covers it once the model names are in its catalogue."""
    import httpx

    fake = fake_azure_openai
    fake.models |= {"gpt-oss-20b", "Qwen3-32B", "Llama-3.3-70B-Instruct"}
    client = fake.client()
    upload = client.files.create(file=("train.jsonl", CHAT * 10), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="gpt-oss-20b",
        training_file=upload.id,
        extra_body={"trainingType": "globalStandard"},
    )
    assert fake.requests[-1].json["trainingType"] == "globalStandard"
    fake.set_state(job.id, "succeeded")
    tuned = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
    assert tuned.startswith("gpt-oss-20b")
    response = httpx.put(
        fake.deployment_url("oss-ft"),
        headers=fake.management_headers(),
        json={
            "sku": {"name": "GlobalStandard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": tuned, "version": "1"}},
        },
    )
    assert response.status_code == 201


def test_models_archive_and_restore(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    tuned_model(fake, ml)
    ml.models.archive(name="phi-ft", version="1")
    assert fake.models[("phi-ft", "1")].archived
    assert list(ml.models.list(name="phi-ft")) == []
    ml.models.restore(name="phi-ft", version="1")
    assert [m.version for m in ml.models.list(name="phi-ft")] == ["1"]


def test_endpoint_gets_move_the_clock(fake_azure_foundry, ml):
    start = fake_azure_foundry.clock.now()
    ml.serverless_endpoints.begin_create_or_update(
        ServerlessEndpoint(name="base-ep", model_id=PHI), polling=False
    )
    states = {ml.serverless_endpoints.get("base-ep").provisioning_state for _ in range(15)}
    assert states == {"creating", "succeeded"}
    assert fake_azure_foundry.clock.now() - start == 15 * fake_azure_foundry.auto_advance
