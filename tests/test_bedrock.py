"""TuningJob on Amazon Bedrock: the real boto3 client over HTTP to moto's server (with
finetune_hub.testing's extension), through the whole lifecycle, faults and refusals."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("moto")

import finetune_hub as fh  # noqa: E402
from finetune_hub.errors import CostConfirmationRequired  # noqa: E402
from finetune_hub.providers.base import ProviderError  # noqa: E402
from finetune_hub.providers.bedrock import BedrockProvider, job_status, merge_metrics_csv  # noqa: E402
from finetune_hub.providers.bedrock_deploy import to_converse  # noqa: E402
from finetune_hub.status import JobStatus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "data"
TITAN = "amazon.titan-text-lite-v1:0:4k"
NOVA = "amazon.nova-lite-v1:0:300k"
LLAMA32 = "meta.llama3-2-1b-instruct-v1:0:128k"


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


def test_titan_lite_full_lifecycle(fake_bedrock, store):
    fake_bedrock.auto_complete_after = 4
    job = make_job(
        fake_bedrock,
        store,
        hyperparameters={"epochs": 2, "batch_size": 1, "learning_rate": 0.00001},
    )
    assert job.validate().ok
    job.submit()
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
    # data lands under a content-addressed folder (the provider's upload() is not told the job id)
    assert re.fullmatch(
        re.escape(fake_bedrock.s3_uri) + r"[0-9a-f]{16}/training\.jsonl",
        created.training_data_config["s3Uri"],
    )
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

    with pytest.raises(CostConfirmationRequired, match=r"\$7\.10 per hour"):
        model.deploy()
    provider = job.provider
    assert isinstance(provider, BedrockProvider)
    note = provider.cost_note(model.id, {"model_units": 2, "commitment": "OneMonth"})
    assert (
        "2 model unit(s) × $6.40/h = $12.80 per hour" in note and "cannot be deleted before" in note
    )
    with pytest.raises(ProviderError, match="confirm_commitment"):
        model.deploy(confirm_cost=True, commitment="SixMonths")

    deployment = model.deploy(confirm_cost=True, name="fh-titan-pt", model_units=1)
    (pt,) = fake_bedrock.provisioned_throughputs()
    assert pt["modelArn"] == model.id and pt["modelUnits"] == 1 and pt["commitmentDuration"] is None
    assert deployment.record.hourly_cost_usd == pytest.approx(7.10)
    assert deployment.wait_ready(poll_interval=0) == "InService"
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
    assert deployment.refresh() == "deleted"
    model.delete()
    model.delete()  # already gone: no error
    assert (
        fake_bedrock.backend.custom_models == {}
        or created.custom_model_name not in fake_bedrock.backend.custom_models
    )


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
    job = make_job(
        fake_bedrock, store, base_model=NOVA, training_file=conversation_file(tmp_path, copies=1)
    )
    job.submit()
    fake_bedrock.complete(job.provider_job_id)
    model = job.wait(poll_interval=0.01, progress=False)
    assert model.hourly_cost(mode="on-demand") is None
    deployment = model.deploy(confirm_cost=True, mode="on-demand", name="fh-nova")
    assert deployment.wait_ready(poll_interval=0) == "Active"
    assert deployment.chat([{"role": "user", "content": "やあ"}]) == "Echo: やあ"
    deployment.delete()
    deployment.delete()
    assert fake_bedrock.count("DeleteCustomModelDeployment") == 2


def test_client_reached_through_aws_endpoint_url_only(fake_bedrock, store, monkeypatch):
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == fake_bedrock.url
    job = make_job(fake_bedrock, store)
    assert "endpoint_url" not in job.spec.options
    job.submit()
    assert fake_bedrock.count("CreateModelCustomizationJob") == 1
    assert job.record.options == {"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri}
    assert job.record.credentials == {"aws": "env:AWS_ACCESS_KEY_ID"}


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
    provider = BedrockProvider(options(fake_bedrock))
    fake_bedrock.inject("GetModelCustomizationJob", "500")
    with pytest.raises(ProviderError) as info:
        provider.get("nope")
    assert (
        info.value.status_code == 500
        and info.value.retryable
        and info.value.request_id == "fake-req-500"
    )
    with pytest.raises(ProviderError) as info:
        provider.get("nope")
    assert info.value.code == "ResourceNotFoundException" and not info.value.retryable


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


def test_never_overwrites_a_different_object(fake_bedrock, tmp_path):
    provider = BedrockProvider(options(fake_bedrock))
    first = tmp_path / "a.jsonl"
    first.write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    ref = provider.upload(str(first), "training", job_id="ftj_same")
    again = provider.upload(str(first), "training", job_id="ftj_same")
    assert again.id == ref.id and len(fake_bedrock.s3_writes()) == 1  # same content: reused
    first.write_text('{"prompt": "other", "completion": "b"}\n', encoding="utf-8")
    with pytest.raises(ProviderError, match="different content") as info:
        provider.upload(str(first), "training", job_id="ftj_same")
    assert not info.value.retryable and len(fake_bedrock.s3_writes()) == 1


def test_large_upload_is_multipart_with_checksum(fake_bedrock, tmp_path):
    provider = BedrockProvider(options(fake_bedrock, multipart_threshold=5 * 1024 * 1024))
    big = tmp_path / "big.jsonl"
    line = json.dumps({"prompt": "p" * 1000, "completion": "c" * 1000}) + "\n"
    big.write_text(line * 6000, encoding="utf-8")  # ~12 MB
    ref = provider.upload(str(big), "training", job_id="ftj_big")
    assert ref.bytes == big.stat().st_size
    assert fake_bedrock.count("s3:POST") >= 2  # create + complete multipart
    head = fake_bedrock.client("s3").head_object(
        Bucket=fake_bedrock.bucket, Key=ref.id.split("/", 3)[-1]
    )
    assert len(head["Metadata"]["sha256"]) == 64


def test_gz_training_file_is_uploaded_decompressed(fake_bedrock, tmp_path):
    import gzip

    gz = tmp_path / "train.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"prompt": "a", "completion": "b"}\n'))
    ref = BedrockProvider(options(fake_bedrock)).upload(str(gz), "training", job_id="ftj_gz")
    assert fake_bedrock.read_object(ref.id) == b'{"prompt": "a", "completion": "b"}\n'


def test_failure_raises_job_failed_with_message(fake_bedrock, store):
    job = make_job(fake_bedrock, store)
    job.submit()
    fake_bedrock.fail(
        job.provider_job_id, "Maximum input token count 4919 exceeds limit of 4096 for train data"
    )
    with pytest.raises(fh.JobFailed, match="4919 exceeds limit of 4096"):
        job.wait(poll_interval=0.01, progress=False)
    assert job.status is JobStatus.FAILED


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


def test_names_and_tokens_are_valid_for_bedrock():
    from finetune_hub.providers.bedrock import JOB_NAME_RE, MODEL_NAME_RE, TOKEN_RE

    provider = BedrockProvider({})
    spec = fh.JobSpec(
        provider="bedrock", base_model=TITAN, training_file="x.jsonl", suffix="my bot/日本_v2"
    )
    job_name, model_name, token = provider.names(spec, "ftj_0123456789ab")
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
