"""FakeAzureFoundry driven by the real azure-ai-ml: fine-tuning jobs, uploads, faults.

Every test goes through `MLClient(..., transport=fake.transport)`, so the SDK builds its real
requests (paths, api-versions, bodies, retries, long-running polls) and the fake answers them.
"""

from __future__ import annotations

import base64
import json
import warnings

import pytest

pytest.importorskip("azure.ai.ml")

from azure.ai.ml.entities import Data, MarketplaceSubscription  # noqa: E402
from azure.ai.ml.finetuning import FineTuningTaskType, create_finetuning_job  # noqa: E402
from azure.core.exceptions import (  # noqa: E402
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from finetune_hub.testing import FakeAzureCredential  # noqa: E402

PHI = "azureml://registries/azureml/models/Phi-4-mini-instruct/versions/1"
TSUZUMI2 = "azureml://registries/azureml-nttdata/models/tsuzumi2/versions/1"
CHAT = (
    b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
)
TERMINAL = ("Completed", "Failed", "Canceled")

warnings.filterwarnings("ignore", message=".*experimental.*")


@pytest.fixture
def ml(fake_azure_foundry):
    return fake_azure_foundry.ml_client(show_progress=False)


def make_job(fake, name="ft-1", *, model=PHI, hyper=None, validation=True, prefix="phi-ft"):
    train = fake.add_blob(f"ft/{name}/train.jsonl", CHAT)
    val = fake.add_blob(f"ft/{name}/val.jsonl", CHAT) if validation else None
    return create_finetuning_job(
        model=model,
        task=FineTuningTaskType.CHAT_COMPLETION,
        training_data=train,
        validation_data=val,
        output_model_name_prefix=prefix,
        hyperparameters={"num_train_epochs": "1"} if hyper is None else hyper,
        name=name,
    )


def wait(ml, name, limit=50):
    for _ in range(limit):
        job = ml.jobs.get(name)
        if job.status in TERMINAL:
            return job
    raise AssertionError(f"{name} never ended")


# --- jobs ---------------------------------------------------------------------------------------


def test_job_runs_through_its_states_and_registers_its_model(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    created = ml.jobs.create_or_update(make_job(fake))
    assert created.status == "NotStarted"
    seen = [created.status]  # each job GET moves the fake clock 10 s (jobs.get makes two)
    for _ in range(30):
        status = str(ml.jobs.get("ft-1").status.value)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "Completed":
            break
    assert seen == ["NotStarted", "Queued", "Running", "Completed"]
    done = ml.jobs.get("ft-1")
    assert done.outputs["registered_model"]["name"] == "phi-ft"
    model = ml.models.get("phi-ft", "1")
    assert model.job_name == "ft-1"
    assert (
        fake.models[("phi-ft", "1")]
        .asset_id(fake)
        .endswith(f"/workspaces/{fake.workspace_id}/models/phi-ft/versions/1")
    )


def test_requests_have_the_sdk_paths_api_versions_and_body(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(
        make_job(fake, hyper={"num_train_epochs": "2", "learning_rate": "0.0002"})
    )
    ml.jobs.get("ft-1")
    put, get_old, get_new = fake.requests[-3:]
    assert (put.method, put.surface, put.path) == ("PUT", "arm", "/jobs/ft-1")
    assert put.query["api-version"] == "2024-10-01-preview"
    assert [get_old.query["api-version"], get_new.query["api-version"]] == [
        "2024-01-01-preview",
        "2024-10-01-preview",
    ]
    properties = put.json["properties"]
    assert properties["jobType"] == "FineTuning"
    details = properties["fineTuningDetails"]
    assert details["taskType"] == "chatCompletion"
    assert details["model"] == {"uri": PHI, "jobInputType": "mlflow_model"}
    assert details["hyperParameters"] == {"num_train_epochs": "2", "learning_rate": "0.0002"}
    assert properties["outputs"]["registered_model"]["assetName"] == "phi-ft"
    assert put.headers["authorization"] == "<redacted>"


def test_list_pages_through_every_job(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.page_size = 2
    for name in ("a-1", "a-2", "a-3"):
        ml.jobs.create_or_update(make_job(fake, name))
    assert sorted(j.name for j in ml.jobs.list()) == ["a-1", "a-2", "a-3"]
    assert fake.count("GET", "/jobs") == 2


def test_cancel_is_accepted_then_the_job_ends_canceled(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(make_job(fake))
    ml.jobs.begin_cancel("ft-1").result()
    assert fake.count("POST", "/jobs/ft-1/cancel") == 1
    assert ml.jobs.get("ft-1").status == "Canceled"
    assert fake.sleeps and all(s == 10.0 for s in fake.sleeps)  # polls moved the fake clock
    with pytest.raises(HttpResponseError, match="already ended"):
        ml.jobs.begin_cancel("ft-1").result()


def test_a_failed_job_shows_its_message_in_run_history(fake_azure_foundry, ml, capsys):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(make_job(fake))
    fake.fail_job("ft-1", "Line 3 of the training data is not valid JSON.", immediately=True)
    assert ml.jobs.get("ft-1").status == "Failed"
    details = ml.jobs._runs_operations.get_run_details("ft-1")
    assert details.error.error.message == "Line 3 of the training data is not valid JSON."
    with pytest.raises(Exception, match="not valid JSON"):
        ml.jobs.stream("ft-1")
    capsys.readouterr()


def test_fail_job_at_the_next_transition_and_forced_states(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(make_job(fake))
    fake.fail_job("ft-1")
    assert wait(ml, "ft-1").status == "Failed"
    ml.jobs.create_or_update(make_job(fake, "ft-2", prefix="other"))
    fake.set_state("ft-2", "Paused")
    assert ml.jobs.get("ft-2").status == "Paused"
    fake.set_state("ft-2", "SomethingNew", allow_unknown=True)
    assert fake.job_status("ft-2") == "SomethingNew"
    with pytest.raises(ValueError, match="unknown job status"):
        fake.set_state("ft-2", "Bogus")


def test_the_same_create_twice_makes_one_job_and_different_details_are_refused(
    fake_azure_foundry, ml
):
    fake = fake_azure_foundry
    job = make_job(fake)
    ml.jobs.create_or_update(job)
    ml.jobs.create_or_update(make_job(fake))
    assert list(fake.jobs) == ["ft-1"]
    with pytest.raises(HttpResponseError, match="already exists with different"):
        ml.jobs.create_or_update(make_job(fake, hyper={"num_train_epochs": "3"}))


def test_what_the_fake_refuses_on_create(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    with pytest.raises(HttpResponseError, match="create a marketplace subscription"):
        ml.jobs.create_or_update(make_job(fake, "t-1", model=TSUZUMI2))
    ml.marketplace_subscriptions.begin_create_or_update(
        MarketplaceSubscription(model_id=TSUZUMI2.rsplit("/versions/", 1)[0], name="tsuzumi2-sub")
    ).result()
    with pytest.raises(HttpResponseError, match="does not accept hyperparameter.*learning_rate"):
        ml.jobs.create_or_update(
            make_job(fake, "t-1", model=TSUZUMI2, hyper={"learning_rate": "0.0001"})
        )
    with pytest.raises(HttpResponseError, match="must be strings"):
        ml.jobs.create_or_update(make_job(fake, "p-1", hyper={"num_train_epochs": 2}))
    with pytest.raises(ResourceNotFoundError, match="not found or cannot be fine-tuned"):
        ml.jobs.create_or_update(
            make_job(fake, "r-1", model="azureml://registries/azureml/models/tsuzumi-7b/versions/1")
        )
    missing = create_finetuning_job(
        model=PHI,
        task="ChatCompletion",
        training_data="azureml://datastores/workspaceblobstore/paths/nowhere.jsonl",
        validation_data="azureml://datastores/workspaceblobstore/paths/nowhere.jsonl",
        output_model_name_prefix="x",
        name="m-1",
    )
    with pytest.raises(HttpResponseError, match="was not found in the workspace"):
        ml.jobs.create_or_update(missing)
    assert fake.jobs == {}


def test_omitting_validation_data_hits_the_sdk_bug_and_the_entity_works_without_it(
    fake_azure_foundry, ml
):
    """azure-ai-ml 1.35.2: create_finetuning_job(validation_data=None) raises UnboundLocalError.
    If this starts passing, the SDK fixed it and the provider's workaround can go."""
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import CustomModelFineTuningJob

    fake = fake_azure_foundry
    with pytest.raises(UnboundLocalError):
        make_job(fake, validation=False)
    job = CustomModelFineTuningJob(
        task="ChatCompletion",
        model=Input(type="mlflow_model", path=PHI),
        training_data=Input(type="uri_file", path=fake.add_blob("t.jsonl", CHAT)),
        validation_data=None,
        hyperparameters={"num_train_epochs": "1"},
        outputs={"registered_model": Output(type="mlflow_model", name="phi-ft")},
        name="nv-1",
    )
    ml.jobs.create_or_update(job)
    assert "validationData" not in fake.requests[-1].json["properties"]["fineTuningDetails"]


# --- uploads ------------------------------------------------------------------------------------


def test_the_sdk_uploads_a_local_file_as_a_data_asset(fake_azure_foundry, ml, tmp_path):
    fake = fake_azure_foundry
    local = tmp_path / "train.jsonl"
    local.write_bytes(CHAT * 3)
    asset = ml.data.create_or_update(
        Data(path=str(local), type="uri_file", name="train", version="1")
    )
    assert asset.path.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert fake.blob_data(asset.path) == CHAT * 3
    assert fake.count("POST", "/datastores/workspaceblobstore/listSecrets") == 1
    assert fake.requests[-1].path == "/data/train/versions/1"
    job = create_finetuning_job(
        model=PHI,
        task="ChatCompletion",
        training_data=str(local),  # a local path: the SDK uploads it while creating the job
        validation_data=asset.id,
        output_model_name_prefix="phi-ft",
        name="up-1",
    )
    created = ml.jobs.create_or_update(job)
    assert created.training_data.path == asset.path  # same content hash, uploaded once
    assert created.validation_data.path == asset.id


def test_azure_storage_blob_uploads_in_blocks_and_never_overwrites(fake_azure_foundry):
    from azure.storage.blob import BlobClient

    fake = fake_azure_foundry
    data = b"".join(b'{"n": %d}\n' % i for i in range(5000))
    blob = BlobClient(
        f"https://{fake.storage_account}.blob.core.windows.net",
        fake.container,
        "finetune_hub/abc/train.jsonl",
        credential=fake.credential,
        transport=fake.transport,
        max_single_put_size=4 * 1024,
        max_block_size=8 * 1024,
    )
    blob.upload_blob(data, overwrite=False)
    assert fake.count("PUT", rf"/{fake.container}/finetune_hub/abc/train\.jsonl") > 3
    assert blob.download_blob().readall() == data
    assert fake.blob_data("finetune_hub/abc/train.jsonl") == data
    with pytest.raises(ResourceExistsError):
        blob.upload_blob(b"other", overwrite=False)
    assert blob.exists()


# --- faults -------------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after_on_the_fake_clock(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.inject("PUT", r"/jobs/[^/]+", "429", retry_after=7)
    before = fake.clock.now()
    ml.jobs.create_or_update(make_job(fake))
    assert fake.count("PUT", "/jobs/ft-1") == 2
    assert fake.sleeps[0] == 7.0
    assert fake.clock.now() - before >= 7.0
    assert [r.status for r in fake.requests if r.method == "PUT" and r.surface == "arm"] == [
        429,
        201,
    ]


def test_a_500_after_the_create_took_effect_leaves_one_job(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.inject("PUT", "/jobs/ft-1", "500", after=True)
    created = ml.jobs.create_or_update(make_job(fake))
    assert created.name == "ft-1"
    assert fake.count("PUT", "/jobs/ft-1") == 2  # the SDK re-sent the same PUT: an upsert
    assert list(fake.jobs) == ["ft-1"]


def test_persistent_500_and_503_surface_as_errors(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    fake.inject("PUT", "/jobs/ft-1", "500", times=None)
    with pytest.raises(HttpResponseError) as err:
        ml.jobs.create_or_update(make_job(fake))
    assert err.value.status_code == 500
    assert fake.count("PUT", "/jobs/ft-1") == 4  # one try and three retries
    assert fake.jobs == {}
    fake.faults.clear()
    ml.jobs.create_or_update(make_job(fake))
    fake.inject("GET", "/jobs/ft-1", "503", times=2)
    assert ml.jobs.get("ft-1").status  # retried through
    assert len([r for r in fake.requests if r.status == 503]) == 2


def test_a_dropped_connection_is_retried_or_raised(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(make_job(fake))
    fake.inject("GET", "/jobs/ft-1", "drop")
    assert ml.jobs.get("ft-1").name == "ft-1"
    fake.inject("*", r"/jobs/ft-1", "drop", times=None)
    with pytest.raises(ServiceRequestError):
        ml.jobs.get("ft-1")


def test_faults_on_blob_and_data_plane_routes(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(make_job(fake))
    fake.inject("GET", r".*/runs/ft-1/details", "500", times=None)
    with pytest.raises(HttpResponseError):
        ml.jobs._runs_operations.get_run_details("ft-1")
    fake.faults.clear()
    fake.inject("PUT", rf"/{fake.container}/.*", "503")
    fake.add_blob("x", b"")
    with fake.route_storage_clients():
        from azure.storage.blob import ContainerClient

        container = ContainerClient(
            f"https://{fake.storage_account}.blob.core.windows.net",
            fake.container,
            credential=fake.credential,
        )
        container.upload_blob("retry.jsonl", CHAT)
    assert fake.blob_data("retry.jsonl") == CHAT
    assert [r.status for r in fake.requests if r.surface == "blob"] == [503, 201]
    assert fake.sleeps[-1] >= 10  # storage's first backoff (15 s +- 3) went to the fake clock


# --- plumbing -----------------------------------------------------------------------------------


def test_credential_tokens_are_jwt_shaped_and_the_fixture_options_are_complete(fake_azure_foundry):
    fake = fake_azure_foundry
    token = FakeAzureCredential().get_token("https://ml.azure.com/.default").token
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == "https://ml.azure.com"
    assert claims["tid"]
    assert set(fake.options) == {
        "subscription_id",
        "resource_group",
        "workspace",
        "credential",
        "transport",
    }
    assert fake.options["transport"] is fake.transport


def test_reset_forgets_resources_and_the_log(fake_azure_foundry, ml):
    fake = fake_azure_foundry
    ml.jobs.create_or_update(make_job(fake))
    fake.inject("GET", "/jobs", "500")
    fake.reset()
    assert (fake.jobs, fake.requests, fake.faults, fake.sleeps) == ({}, [], [], [])
    assert [j.name for j in ml.jobs.list()] == []


def test_unknown_hosts_and_other_workspaces_are_404(fake_azure_foundry):
    from azure.ai.ml import MLClient

    fake = fake_azure_foundry
    other = MLClient(
        fake.credential,
        fake.subscription_id,
        fake.resource_group,
        "elsewhere",
        transport=fake.transport,
    )
    with pytest.raises(ResourceNotFoundError, match="serves one workspace"):
        other.jobs.get("x")
