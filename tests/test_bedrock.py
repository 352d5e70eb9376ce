"""TuningJob on Amazon Bedrock: the real boto3 client over HTTP to moto's server (with
finetune_hub.testing's extension), through the whole lifecycle, both serving modes, faults,
planted SDK exceptions, credentials and refusals."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

pytest.importorskip("moto")

import finetune_hub as fh  # noqa: E402
from finetune_hub.jobs.deployment import Deployment  # noqa: E402
from finetune_hub.providers.bedrock import BedrockBackend  # noqa: E402
from finetune_hub.providers.bedrock_connection import BedrockConnection  # noqa: E402
from finetune_hub.providers.bedrock_wire import (  # noqa: E402
    JOB_NAME_RE,
    MODEL_NAME_RE,
    TOKEN_RE,
    job_status,
    merge_metrics_csv,
    to_converse,
)
from finetune_hub.status import DeploymentStatus, JobStatus  # noqa: E402
from finetune_hub.store.secret_policy import check_credentials  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "data"
TITAN = "amazon.titan-text-lite-v1:0:4k"
NOVA = "amazon.nova-lite-v1:0:300k"
LLAMA32 = "meta.llama3-2-1b-instruct-v1:0:128k"
PT, ON_DEMAND = "provisioned-throughput", "on-demand"


@pytest.fixture
def store(tmp_path):
    return fh.JobStore(tmp_path / "home")


def options(fake, **extra):
    return {"role_arn": fake.role_arn, "s3_uri": fake.s3_uri, **extra}


def make_job(
    fake,
    store,
    *,
    base_model=TITAN,
    training_file=SAMPLES / "prompt_completion_ja.jsonl",
    opts=None,
    **kw,
) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="bedrock",
        base_model=base_model,
        training_file=training_file,
        options=opts if opts is not None else options(fake),
        store=store,
        **kw,
    )
    job.sleep = lambda seconds: None
    return job


def conversation_file(tmp_path: Path, copies: int = 5) -> Path:
    conv = tmp_path / "conv.jsonl"
    fh.convert(SAMPLES / "chat_gozaru.jsonl", conv, to="bedrock_conversation")
    lines = conv.read_text(encoding="utf-8").splitlines() * copies
    conv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conv


def tuned_model(fake, store, **kw) -> fh.TunedModel:
    job = make_job(fake, store, **kw)
    job.submit()
    fake.complete(job.provider_job_id)
    return job.wait(poll_interval=0.01, progress=False)


# -- the lifecycle ---------------------------------------------------------------------------------
def test_titan_lite_full_lifecycle(fake_bedrock, store):
    fake_bedrock.auto_complete_after = 4
    job = make_job(
        fake_bedrock,
        store,
        hyperparameters={"epochs": 2, "batch_size": 1, "learning_rate": 0.00001},
    )
    assert job.validate().ok
    job.submit()
    assert isinstance(job.backend, BedrockBackend)
    assert job.provider_job_id.startswith(
        "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/fh-"
    )
    (created,) = fake_bedrock.jobs()
    assert created.hyper_parameters == {
        "epochCount": "2",
        "batchSize": "1",
        "learningRate": "1e-05",
    }
    assert created.base_model_identifier == TITAN and created.role_arn == fake_bedrock.role_arn
    assert created.customization_type == "FINE_TUNING"
    # the data lands under the local job id, one object per purpose
    assert created.training_data_config["s3Uri"] == f"{fake_bedrock.s3_uri}{job.id}/training.jsonl"
    assert created.output_data_config["s3Uri"] == f"{fake_bedrock.s3_uri}{job.id}/output/"
    assert created.client_request_token.startswith("fh-ftj-")

    model = job.wait(poll_interval=0.01, progress=False)
    assert job.status is JobStatus.SUCCEEDED
    assert (
        model.id
        == f"arn:aws:bedrock:us-east-1:123456789012:custom-model/{created.custom_model_name}"
    )
    seen = [t.status for t in store.transitions(job.id)]
    assert {JobStatus.VALIDATING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED} <= set(
        seen
    )

    metrics = job.metrics()
    assert [m.step for m in metrics] == [0, 1, 2, 3, 4]
    assert (
        metrics[0].train_loss == 2.0
        and "perplexity" in metrics[0].extra
        and metrics[-1].epoch == 2.0
    )
    assert [e.id for e in job.events()][-1] == "job:Completed"

    # Provisioned Throughput is the default serving mode; its cost is stated and confirmed
    assert model.deployer().kind == PT
    with pytest.raises(fh.CostConfirmationRequired, match=r"\$7\.10 per hour"):
        model.deploy()
    cost = model.deployment_cost(PT, model_units=2, commitment="OneMonth")
    assert "2 model unit(s) × $6.40/h = $12.80 per hour" in cost.note
    assert "cannot be deleted before" in cost.note and cost.hourly_usd == pytest.approx(12.80)
    assert cost.source and cost.as_of
    with pytest.raises(fh.CostConfirmationRequired, match="confirm_commitment"):
        model.deploy(confirm_cost=True, commitment="SixMonths")
    assert fake_bedrock.provisioned_throughputs() == []
    with pytest.raises(fh.UnsupportedOperation, match="provisioned-throughput"):
        model.deploy(ON_DEMAND, confirm_cost=True)  # a Titan model has no on-demand mode

    deployment = model.deploy(confirm_cost=True, name="fh-titan-pt", model_units=1)
    assert deployment.kind == PT and deployment.record.kind == PT
    (pt,) = fake_bedrock.provisioned_throughputs()
    assert pt["modelArn"] == model.id and pt["modelUnits"] == 1 and pt["commitmentDuration"] is None
    assert pt["clientRequestToken"].startswith("fh-fh-titan-pt-")
    assert deployment.record.hourly_cost_usd == pytest.approx(7.10)
    assert deployment.wait_ready(poll_interval=0) is DeploymentStatus.READY
    assert deployment.info.raw_status == "InService"
    assert store.get_deployment(deployment.record.id).status == "ready"
    # a repeated deploy finds the deployment instead of buying a second one
    again = model.deploy(confirm_cost=True, name="fh-titan-pt", model_units=1)
    assert again.name == deployment.name and len(fake_bedrock.provisioned_throughputs()) == 1
    assert fake_bedrock.count("CreateProvisionedModelThroughput") == 1
    assert (
        deployment.chat(
            [{"role": "system", "content": "丁寧に"}, {"role": "user", "content": "こんにちは"}]
        )
        == "Echo: こんにちは"
    )
    assert fake_bedrock.chats[-1]["modelId"] == pt["provisionedModelArn"]
    assert fake_bedrock.chats[-1]["system"] == [{"text": "丁寧に"}]
    deployment.delete()
    deployment.delete()  # idempotent
    assert fake_bedrock.provisioned_throughputs() == []
    assert deployment.refresh() is DeploymentStatus.DELETED
    model.delete()
    model.delete()  # already gone: no error
    assert created.custom_model_name not in fake_bedrock.backend.custom_models


def test_llama32_conversation_job(fake_bedrock, store, tmp_path):
    conv = conversation_file(tmp_path, copies=5)
    job = make_job(
        fake_bedrock,
        store,
        base_model=LLAMA32,
        training_file=conv,
        validation_file=conv,
        hyperparameters={"epochs": 1},
    )
    job.submit()
    (created,) = fake_bedrock.jobs()
    assert created.base_model_identifier == LLAMA32
    assert created.hyper_parameters["epochCount"] == "1" and all(
        isinstance(v, str) for v in created.hyper_parameters.values()
    )
    assert created.validation_data_config == {
        "validators": [
            {
                "s3Uri": created.training_data_config["s3Uri"].replace(
                    "training.jsonl", "validation.jsonl"
                )
            }
        ]
    }
    body = fake_bedrock.read_object(created.training_data_config["s3Uri"]).decode()
    assert json.loads(body.splitlines()[0])["schemaVersion"] == "bedrock-conversation-2024"
    fake_bedrock.complete(job.provider_job_id)
    job.wait(poll_interval=0.01, progress=False)
    metrics = job.metrics()
    assert metrics[0].valid_loss is not None and metrics[0].train_loss is not None


def test_nova_on_demand_deployment(fake_bedrock, store, tmp_path):
    model = tuned_model(
        fake_bedrock, store, base_model=NOVA, training_file=conversation_file(tmp_path, copies=1)
    )
    cost = model.deployment_cost(ON_DEMAND)
    assert cost.hourly_usd == 0.0 and "billed per token, no hourly fee" in cost.note
    with pytest.raises(fh.CostConfirmationRequired, match="billed per token, no hourly fee"):
        model.deploy(ON_DEMAND)
    deployment = model.deploy(ON_DEMAND, confirm_cost=True, name="fh-nova")
    assert deployment.kind == ON_DEMAND and deployment.record.kind == ON_DEMAND
    assert fake_bedrock.count("CreateCustomModelDeployment") == 1
    assert deployment.wait_ready(poll_interval=0) is DeploymentStatus.READY
    assert deployment.info.raw_status == "Active"
    assert deployment.chat([{"role": "user", "content": "やあ"}]) == "Echo: やあ"
    assert fake_bedrock.chats[-1]["modelId"] == deployment.info.endpoint
    # after a restart: the deployment comes back from the store with its kind and is deleted
    (record,) = model.job.store.list_deployments(active_only=True)
    restored = Deployment.from_record(fh.TuningJob.attach(model.job.id, store=store), record)
    assert restored.kind == ON_DEMAND
    restored.delete()
    restored.delete()
    assert fake_bedrock.count("DeleteCustomModelDeployment") == 2
    assert model.job.store.list_deployments(active_only=True) == []


def test_deploy_options_belong_to_their_serving_mode(fake_bedrock, store, tmp_path):
    model = tuned_model(
        fake_bedrock, store, base_model=NOVA, training_file=conversation_file(tmp_path, copies=1)
    )
    with pytest.raises(fh.OptionsError, match="did you mean 'model_units'"):
        model.deploy(PT, confirm_cost=True, model_unit=2)
    with pytest.raises(fh.OptionsError, match="model_units"):
        model.deploy(ON_DEMAND, confirm_cost=True, model_units=2)  # a PT option
    with pytest.raises(fh.OptionsError, match="commitment"):
        model.deploy(PT, confirm_cost=True, commitment="forever")
    with pytest.raises(fh.UnsupportedOperation, match="serverless"):
        model.deploy("serverless", confirm_cost=True)
    assert fake_bedrock.count("CreateProvisionedModelThroughput") == 0


# -- connection, credentials -----------------------------------------------------------------------
def test_client_reached_through_aws_endpoint_url_only(fake_bedrock, store):
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == fake_bedrock.url
    job = make_job(fake_bedrock, store)
    assert "endpoint_url" not in job.spec.options
    job.submit()
    assert fake_bedrock.count("CreateModelCustomizationJob") == 1
    assert job.record.options == {"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri}
    assert job.record.credentials == {"aws": "env:AWS_ACCESS_KEY_ID"}


def _record_auth(connection: BedrockConnection, seen: list[dict[str, str]]) -> None:
    """Log the Authorization and session-token headers of every request the clients send."""

    def text(value) -> str:
        return value.decode() if isinstance(value, bytes) else str(value or "")

    def hook(request, **kwargs):
        headers = request.headers
        seen.append(
            {
                "auth": text(headers.get("Authorization")),
                "token": text(headers.get("X-Amz-Security-Token")),
            }
        )

    for service in ("s3", "bedrock", "bedrock-runtime"):
        connection.client(service).meta.events.register("before-send", hook)


def test_credentials_in_options_are_used_and_never_stored(fake_bedrock, store, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    key_id, secret, token = "AKIAFHEXPLICIT00001", "fh-secret-value-9c1e", "fh-session-token-77aa"
    opts = options(
        fake_bedrock,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    job = make_job(fake_bedrock, store, opts=opts)
    seen: list[dict[str, str]] = []
    _record_auth(job.backend.connection, seen)
    job.submit()
    assert seen and all(f"Credential={key_id}/" in s["auth"] for s in seen)
    assert all(s["token"] == token for s in seen)
    rec = store.get(job.id)
    assert rec.credentials == {"aws": "explicit"}
    assert rec.options == {"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri}
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    for value in (key_id, secret, token):
        assert value.encode() not in raw
    assert secret not in repr(job.backend.options) and token not in repr(job.backend.options)


@pytest.mark.parametrize("via", ["AWS_PROFILE", "options"])
def test_a_named_profile_is_used_and_recorded(fake_bedrock, store, tmp_path, monkeypatch, via):
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("[profile fh-test]\nregion = us-east-1\n", encoding="utf-8")
    credentials.write_text(
        "[fh-test]\naws_access_key_id = AKIAFHPROFILE000001\n"
        "aws_secret_access_key = profile-secret\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    if via == "AWS_PROFILE":
        monkeypatch.setenv("AWS_PROFILE", "fh-test")
        opts = options(fake_bedrock)
    else:
        opts = options(fake_bedrock, profile="fh-test")
    job = make_job(fake_bedrock, store, opts=opts)
    seen: list[dict[str, str]] = []
    _record_auth(job.backend.connection, seen)
    job.submit()  # the store accepts the source (it refused "boto3 default chain")
    assert job.record.credentials == {"aws": "profile:fh-test"}
    assert seen and all("Credential=AKIAFHPROFILE000001/" in s["auth"] for s in seen)
    assert fake_bedrock.count("CreateModelCustomizationJob") == 1


def test_credentials_sources_are_all_storable(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    cases = {
        "default-chain": {},
        "explicit": {"aws_access_key_id": "AKIA", "aws_secret_access_key": "s"},
        "profile:dev": {"profile": "dev"},
    }
    for expected, opts in cases.items():
        source = BedrockConnection(opts).credentials_source()
        assert source == {"aws": expected}
        check_credentials(source)  # what the store does before writing


def test_no_credentials_says_how_to_configure_them(fake_bedrock, store, tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    job = make_job(fake_bedrock, store)
    assert job.record is None
    with pytest.raises(fh.ProviderError, match="aws configure") as info:
        job.submit()
    assert not info.value.retryable and info.value.operation == "upload"
    assert store.get(job.id).credentials == {"aws": "default-chain"}
    assert "aws configure" in store.get(job.id).error


def test_unknown_options_are_refused_with_a_suggestion(fake_bedrock, store):
    with pytest.raises(fh.OptionsError, match="did you mean 'region'"):
        BedrockBackend.from_options({"regoin": "us-west-2"})
    job = make_job(fake_bedrock, store, opts=options(fake_bedrock, regoin="us-west-2"))
    with pytest.raises(fh.ValidationError, match="did you mean 'region'"):
        job.submit()
    with pytest.raises(fh.OptionsError, match="'timeout'"):
        BedrockBackend.from_options({"timeout": "soon"})
    assert fake_bedrock.requests == []


# -- retries, faults and planted SDK exceptions ----------------------------------------------------
def test_500_after_create_leaves_exactly_one_job(fake_bedrock, store):
    fake_bedrock.inject("CreateModelCustomizationJob", "500", after=True)
    fake_bedrock.inject("ListModelCustomizationJobs", "throttle")
    job = make_job(fake_bedrock, store)
    job.submit()
    assert len(fake_bedrock.jobs()) == 1
    assert (
        fake_bedrock.count("CreateModelCustomizationJob") == 1
    )  # the retry found it (list) instead
    assert job.provider_job_id.endswith(fake_bedrock.jobs()[0].job_name)
    job.submit()
    assert len(fake_bedrock.jobs()) == 1


def test_throttled_get_is_retried(fake_bedrock, store):
    job = make_job(fake_bedrock, store)
    job.submit()
    fake_bedrock.inject("GetModelCustomizationJob", "throttle", times=2)
    assert job.refresh() in (JobStatus.VALIDATING, JobStatus.QUEUED, JobStatus.RUNNING)


def test_provider_error_carries_status_code_and_request_id(fake_bedrock):
    backend = BedrockBackend.from_options(options(fake_bedrock))
    fake_bedrock.inject("GetModelCustomizationJob", "500")
    with pytest.raises(fh.ProviderError) as info:
        backend.get("nope")
    assert (
        info.value.status_code == 500
        and info.value.retryable
        and info.value.request_id == "fake-req-500"
    )
    with pytest.raises(fh.ProviderError) as info:
        backend.get("nope")
    assert info.value.code == "ResourceNotFoundException" and not info.value.retryable


def test_a_missing_bucket_is_a_provider_error_recorded_on_the_job(fake_bedrock, store):
    job = make_job(
        fake_bedrock, store, opts=options(fake_bedrock, s3_uri="s3://no-such-fh-bucket/ft/")
    )
    with pytest.raises(fh.ProviderError, match="'no-such-fh-bucket' does not exist") as info:
        job.submit()
    assert info.value.code == "NoSuchBucket" and not info.value.retryable
    assert info.value.operation == "upload"
    shown = "".join(traceback.format_exception(info.value))
    assert "S3UploadFailedError" not in shown and "botocore" not in shown
    rec = store.get(job.id)
    assert "no-such-fh-bucket" in rec.error and rec.error_code == "NoSuchBucket"
    assert rec.status is JobStatus.PENDING and fake_bedrock.jobs() == []


def _client_error(code: str, status: int, operation: str):
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": f"planted {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "planted-req"},
    }
    return ClientError(response, operation)


def _planted(name: str):
    """The SDK exception planted for one case (each kind the connection translates)."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        ConnectionClosedError,
        EndpointConnectionError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
    )

    return {
        "S3UploadFailedError": S3UploadFailedError("Failed to upload a to b/k: planted"),
        "AccessDenied": _client_error("AccessDeniedException", 403, "CreateModelCustomizationJob"),
        "EndpointConnectionError": EndpointConnectionError(endpoint_url="https://bedrock.x"),
        "ReadTimeoutError": ReadTimeoutError(endpoint_url="https://bedrock.x"),
        "ConnectionClosedError": ConnectionClosedError(endpoint_url="https://s3.x"),
        "NoCredentialsError": NoCredentialsError(),
        "Quota": _client_error("ServiceQuotaExceededException", 400, "CreatePT"),
        "ParamValidationError": ParamValidationError(report="planted"),
        "KeyError": KeyError("planted"),
    }[name]


# (operation, client, method, exception, what the user does, what the message says)
PLANTED = [
    ("upload", "s3", "upload_file", "S3UploadFailedError", "submit", "planted"),
    ("create", "bedrock", "create_model_customization_job", "AccessDenied", "submit", "Access"),
    ("get", "bedrock", "get_model_customization_job", "EndpointConnectionError", "refresh", "conn"),
    ("events", "bedrock", "get_model_customization_job", "ReadTimeoutError", "events", "timed"),
    ("metrics", "s3", "list_objects_v2", "ConnectionClosedError", "metrics", "connection"),
    ("cancel", "bedrock", "stop_model_customization_job", "NoCredentialsError", "cancel", "aws"),
    ("deploy", "bedrock", "create_provisioned_model_throughput", "Quota", "deploy", "Quota"),
    (
        "undeploy",
        "bedrock",
        "delete_provisioned_model_throughput",
        "ParamValidationError",
        "undeploy",
        "Param",
    ),
    ("chat", "bedrock-runtime", "converse", "KeyError", "chat", "KeyError"),
]


@pytest.mark.parametrize(("operation", "service", "method", "planted", "action", "says"), PLANTED)
def test_planted_sdk_exceptions_reach_the_user_as_provider_errors(
    fake_bedrock, store, monkeypatch, operation, service, method, planted, action, says
):
    job = make_job(fake_bedrock, store)
    deployment = None
    if action in ("metrics", "deploy", "undeploy", "chat"):
        job.submit()
        fake_bedrock.complete(job.provider_job_id)
        job.wait(poll_interval=0.01, progress=False)
        if action in ("undeploy", "chat"):
            deployment = job.result.deploy(confirm_cost=True)
    elif action != "submit":
        job.submit()

    def raise_planted(*args, **kwargs):
        raise _planted(planted)

    monkeypatch.setattr(job.backend.connection.client(service), method, raise_planted)
    act = {
        "submit": job.submit,
        "refresh": job.refresh,
        "events": job.events,
        "metrics": job.metrics,
        "cancel": job.cancel,
        "deploy": lambda: job.result.deploy(confirm_cost=True),
        "undeploy": lambda: deployment.delete(),
        "chat": lambda: deployment.chat([{"role": "user", "content": "hi"}]),
    }[action]
    with pytest.raises(fh.ProviderError) as info:
        act()
    error = info.value
    assert error.provider == "bedrock" and error.operation == operation
    assert says.lower() in error.message.lower()
    assert error.__suppress_context__ and error.__cause__ is None  # no SDK traceback shown
    if action == "submit":
        rec = store.get(job.id)
        assert rec.error == error.message and rec.error_code == (error.code or operation)
        assert rec.provider_job_id is None


# -- refusals before anything is sent --------------------------------------------------------------
@pytest.mark.parametrize(
    "case",
    ["bad_data", "unknown_hyperparameter", "out_of_range", "titan_batch_over_budget"],
)
def test_refused_before_any_s3_call(fake_bedrock, store, tmp_path, case):
    training = SAMPLES / "prompt_completion_ja.jsonl"
    hyper: dict = {"epochs": 2}
    if case == "bad_data":
        bad = tmp_path / "bad.jsonl"
        lines = training.read_text(encoding="utf-8").splitlines()
        lines[3] = '{"prompt": }'
        bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
        training = bad
    elif case == "unknown_hyperparameter":
        hyper["n_epochs_typo"] = 3
    elif case == "out_of_range":
        hyper["epochs"] = 11  # Titan Lite: 1-10
    else:
        big = tmp_path / "big.jsonl"
        lines = training.read_text(encoding="utf-8").splitlines()
        lines.append(
            json.dumps({"prompt": "x" * 9000, "completion": "y" * 9000})
        )  # ~3,000 tokens at 6 chars/token
        big.write_text("\n".join(lines) + "\n", encoding="utf-8")
        training = big
        hyper["batch_size"] = 3  # budget 2,048 tokens per record at batch 3-6
    job = make_job(fake_bedrock, store, training_file=training, hyperparameters=hyper)
    with pytest.raises(fh.ValidationError) as info:
        job.submit()
    expected = {
        "bad_data": "invalid_json",
        "unknown_hyperparameter": "unknown_hyperparameter",
        "out_of_range": "hyperparameter_out_of_range",
        "titan_batch_over_budget": "too_many_tokens",
    }[case]
    codes = {i.code for i in info.value.report.errors}
    assert expected in codes, codes
    assert [r for r in fake_bedrock.requests if r.service == "s3"] == []
    assert fake_bedrock.s3_writes() == [] and fake_bedrock.jobs() == []


@pytest.mark.parametrize(
    ("opts", "code"),
    [
        ({"role_arn": "not-an-arn"}, "invalid_role_arn"),
        ({"role_arn": None}, "missing_role_arn"),
        ({"s3_uri": None}, "missing_s3_uri"),
        ({"s3_uri": "bucket/x"}, "invalid_s3_uri"),
        ({"job_name": "bad name!"}, "invalid_job_name"),
        ({"custom_model_name": "x" * 64}, "invalid_custom_model_name"),
        ({"customization_type": "MAGIC"}, "invalid_customization_type"),
    ],
)
def test_bad_options_fail_validation(fake_bedrock, store, opts, code):
    merged = {k: v for k, v in {**options(fake_bedrock), **opts}.items() if v is not None}
    job = make_job(fake_bedrock, store, opts=merged)
    report = job.validate()
    assert code in {i.code for i in report.errors}
    with pytest.raises(fh.ValidationError):
        job.submit()
    assert fake_bedrock.requests == []


def test_titan_budget_follows_batch_size(fake_bedrock, store, tmp_path):
    big = tmp_path / "big.jsonl"
    lines = (SAMPLES / "prompt_completion_ja.jsonl").read_text(encoding="utf-8").splitlines()
    lines.append(json.dumps({"prompt": "x" * 9000, "completion": "y" * 9000}))
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ok = make_job(fake_bedrock, store, training_file=big, hyperparameters={"batch_size": 1})
    assert ok.validate().ok  # ~3,000 tokens fit the 4,096 budget of batch 1-2
    too_big = make_job(fake_bedrock, store, training_file=big, hyperparameters={"batch_size": 3})
    assert "too_many_tokens" in {i.code for i in too_big.validate().errors}


# -- upload ----------------------------------------------------------------------------------------
def test_never_overwrites_a_different_object(fake_bedrock, tmp_path):
    backend = BedrockBackend.from_options(options(fake_bedrock))
    first = tmp_path / "a.jsonl"
    first.write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    ref = backend.upload(str(first), "training", "ftj_same")
    again = backend.upload(str(first), "training", "ftj_same")
    assert again.id == ref.id and len(fake_bedrock.s3_writes()) == 1  # same content: reused
    first.write_text('{"prompt": "other", "completion": "b"}\n', encoding="utf-8")
    with pytest.raises(fh.ProviderError, match="different content") as info:
        backend.upload(str(first), "training", "ftj_same")
    assert not info.value.retryable and len(fake_bedrock.s3_writes()) == 1


def test_large_upload_is_multipart_with_checksum(fake_bedrock, tmp_path):
    backend = BedrockBackend.from_options(
        options(fake_bedrock, multipart_threshold=5 * 1024 * 1024)
    )
    big = tmp_path / "big.jsonl"
    line = json.dumps({"prompt": "p" * 1000, "completion": "c" * 1000}) + "\n"
    big.write_text(line * 6000, encoding="utf-8")  # ~12 MB
    ref = backend.upload(str(big), "training", "ftj_big")
    assert ref.bytes == big.stat().st_size
    assert fake_bedrock.count("s3:POST") >= 2  # create + complete multipart
    head = fake_bedrock.client("s3").head_object(
        Bucket=fake_bedrock.bucket, Key=ref.id.split("/", 3)[-1]
    )
    assert len(head["Metadata"]["sha256"]) == 64


def test_gz_training_file_is_uploaded_decompressed(fake_bedrock, store, tmp_path):
    import gzip

    plain = (SAMPLES / "prompt_completion_ja.jsonl").read_bytes()
    gz = tmp_path / "train.jsonl.gz"
    gz.write_bytes(gzip.compress(plain))
    job = make_job(fake_bedrock, store, training_file=gz)
    job.submit()
    (created,) = fake_bedrock.jobs()
    assert fake_bedrock.read_object(created.training_data_config["s3Uri"]) == plain


# -- states, cancel, other customization types -----------------------------------------------------
def test_failure_raises_job_failed_with_message(fake_bedrock, store):
    job = make_job(fake_bedrock, store)
    job.submit()
    fake_bedrock.fail(
        job.provider_job_id, "Maximum input token count 4919 exceeds limit of 4096 for train data"
    )
    with pytest.raises(fh.JobFailed, match="4919 exceeds limit of 4096"):
        job.wait(poll_interval=0.01, progress=False)
    assert job.status is JobStatus.FAILED
    assert "4919" in store.get(job.id).error


def test_cancel_goes_stopping_then_cancelled(fake_bedrock, store):
    job = make_job(fake_bedrock, store)
    job.submit()
    job.cancel()
    assert fake_bedrock.count("StopModelCustomizationJob") == 1
    assert job.refresh() is JobStatus.CANCELLED
    with pytest.raises(fh.JobFailed):
        job.wait(poll_interval=0.01, progress=False)


def test_continued_pretraining_and_distillation_types(fake_bedrock, store, tmp_path):
    cpt = tmp_path / "cpt.jsonl"
    cpt.write_text(
        "\n".join(json.dumps({"input": f"テキスト {i}"}) for i in range(5)) + "\n", encoding="utf-8"
    )
    job = make_job(fake_bedrock, store, training_file=cpt, method="continued-pretraining")
    job.submit()
    assert fake_bedrock.jobs()[-1].customization_type == "CONTINUED_PRE_TRAINING"
    distill = make_job(
        fake_bedrock,
        store,
        base_model=NOVA,
        training_file=conversation_file(tmp_path, 1),
        method="distillation",
    )
    assert "missing_teacher_model" in {i.code for i in distill.validate().errors}
    teacher = "amazon.nova-pro-v1:0"
    distill = make_job(
        fake_bedrock,
        store,
        base_model=NOVA,
        training_file=conversation_file(tmp_path, 1),
        method="distillation",
        opts=options(fake_bedrock, teacher_model=teacher, max_response_length=500),
    )
    sent: list[dict] = []
    distill.backend.client("bedrock").meta.events.register(
        "before-parameter-build.bedrock.CreateModelCustomizationJob",
        lambda params, **kw: sent.append(params),
    )
    distill.submit()
    assert fake_bedrock.jobs()[-1].customization_type == "DISTILLATION"
    config = sent[-1]["customizationConfig"]
    assert config["distillationConfig"]["teacherModelConfig"] == {
        "teacherModelIdentifier": teacher,
        "maxResponseLengthForInference": 500,
    }


def test_names_and_tokens_are_valid_for_bedrock():
    backend = BedrockBackend.from_options({})
    job_name, model_name, token = backend.names("ftj_0123456789ab", suffix="my bot/日本_v2")
    assert JOB_NAME_RE.match(job_name) and MODEL_NAME_RE.match(model_name) and TOKEN_RE.match(token)
    assert 1 <= len(job_name) <= 63 and 1 <= len(model_name) <= 63


def test_status_mapping_and_helpers():
    d = {"validationDetails": {"status": "InProgress"}, "trainingDetails": {"status": "NotStarted"}}
    assert job_status("InProgress", d) is JobStatus.VALIDATING
    d["validationDetails"]["status"] = "Completed"
    assert job_status("InProgress", d) is JobStatus.QUEUED
    d["trainingDetails"]["status"] = "InProgress"
    assert job_status("InProgress", d) is JobStatus.RUNNING
    assert job_status("InProgress", None) is JobStatus.RUNNING
    assert job_status("Stopping", None) is JobStatus.CANCELLING
    assert job_status("Completed", None) is JobStatus.SUCCEEDED
    assert job_status("Teleporting", None) is JobStatus.UNKNOWN
    points: dict = {}
    merge_metrics_csv(points, "step_number,epoch_number,training_loss,perplexity\n0,0,1.5,4.4\n")
    merge_metrics_csv(
        points,
        "step_number,epoch_number,validation_loss,perplexity\n0,0,1.7,5.4\n",
        validation=True,
    )
    assert (
        points[0]["train_loss"] == 1.5
        and points[0]["valid_loss"] == 1.7
        and points[0]["extra"] == {"perplexity": 4.4, "validation_perplexity": 5.4}
    )
    system, turns = to_converse(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ]
    )
    assert system == [{"text": "s"}] and turns == [
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}]}
    ]


def test_deployment_state_maps():
    from finetune_hub.providers.bedrock_deploy import OnDemandDeployer as OD
    from finetune_hub.providers.bedrock_deploy import ProvisionedThroughputDeployer as PTD

    assert [PTD.state_map(s) for s in ("Creating", "InService", "Updating", "Failed")] == [
        DeploymentStatus.CREATING,
        DeploymentStatus.READY,
        DeploymentStatus.UPDATING,
        DeploymentStatus.FAILED,
    ]
    assert [OD.state_map(s) for s in ("Creating", "Active", "Failed", "Melting")] == [
        DeploymentStatus.CREATING,
        DeploymentStatus.READY,
        DeploymentStatus.FAILED,
        DeploymentStatus.UNKNOWN,
    ]


def test_tunable_models_come_from_list_foundation_models(fake_bedrock):
    backend = BedrockBackend.from_options(options(fake_bedrock))
    tunable = backend.tunable_models()
    assert tunable == sorted(set(tunable))
    assert {TITAN, NOVA, "anthropic.claude-3-haiku-20240307-v1:0:200k"} <= set(tunable)
    assert "amazon.nova-lite-v1:0" not in tunable  # listed, but takes no customization


def test_the_aws_extra_alone_loads_bedrock():
    """`pip install "finetune-hub[aws]"` has no openai: the provider must not need it."""
    code = textwrap.dedent(
        """
        import sys
        for blocked in ("openai", "azure", "google", "torch"):
            sys.modules[blocked] = None
        from finetune_hub import registry
        entry = registry.entry("bedrock")
        backend = entry.load(entry.backend)
        for target in entry.deployers.values():
            entry.load(target)
        print(backend.__name__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "BedrockBackend"


# -- examples --------------------------------------------------------------------------------------
def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "expected"),
    [("bedrock_titan_dolly", ("per hour", "Echo:")), ("bedrock_nova_conversation", ("Echo:",))],
)
def test_examples_run_against_the_fake(fake_bedrock, store, tmp_path, capsys, name, expected):
    example = _load_example(name)
    fake_bedrock.auto_complete_after = 3
    example.main(
        tmp_path,
        options=options(fake_bedrock),
        store=store,
        poll_interval=0.01,
        sleep=lambda s: None,
    )
    out = capsys.readouterr().out
    assert all(text in out for text in expected)
    assert fake_bedrock.provisioned_throughputs() == []
