"""Preflight: the provider is asked, before any upload, what it can answer cheaply. Against the
fakes: a missing model access, a missing iam:PassRole and an unreachable bucket are found and
the fake sees no upload and no create; each finding says the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
TITAN = "amazon.titan-text-lite-v1:0:4k"


def bedrock_job(fake, tmp_path, *, base_model=TITAN, quotas=None, **options) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="bedrock",
        base_model=base_model,
        training_file=SAMPLES / "prompt_completion_ja.jsonl",
        options={"role_arn": fake.role_arn, "s3_uri": fake.s3_uri, **options},
        quotas=quotas,
        store=fh.JobStore(tmp_path / "store"),
    )
    job.sleep = lambda s: None
    return job


def nothing_sent(fake) -> bool:
    return not fake.s3_writes() and fake.count("CreateModelCustomizationJob") == 0


def codes(report) -> set[str]:
    return {i.code for i in report.issues}


# -- Bedrock --------------------------------------------------------------------------------------
def test_a_ready_account_passes_the_bedrock_preflight(fake_bedrock, tmp_path):
    report = bedrock_job(fake_bedrock, tmp_path).preflight()
    assert report.ok and report.issues == [], str(report)
    asked = {r.operation for r in fake_bedrock.requests}
    assert {"bedrock:GET /foundation-models", "s3:HEAD", "iam:POST /", "sts:POST /"} <= asked
    assert f"bedrock:GET /foundation-model-availability/{TITAN}" in asked
    assert nothing_sent(fake_bedrock)


def test_preflight_finds_model_access_pass_role_and_bucket_before_any_upload(
    fake_bedrock, tmp_path
):
    from finetune_hub.testing.bedrock_fake_access import grant

    fake_bedrock.access_denied = {"amazon.titan-text-lite-v1"}
    grant(fake_bedrock, caller=["bedrock:*", "s3:*"])  # everything but iam:PassRole
    job = bedrock_job(fake_bedrock, tmp_path, s3_uri="s3://no-such-bucket-fh/ft/")
    report = job.preflight()
    assert not report.ok
    assert {"model_access_denied", "missing_pass_role", "bucket_not_found"} <= codes(report)
    by_code = {i.code: i.message for i in report.issues}
    assert "Model access" in by_code["model_access_denied"]
    assert '"iam:PassRole"' in by_code["missing_pass_role"]  # the statement to add
    assert "bedrock.amazonaws.com" in by_code["missing_pass_role"]
    assert "no-such-bucket-fh" in by_code["bucket_not_found"]
    assert nothing_sent(fake_bedrock)
    assert job.record is None  # not even recorded: nothing was submitted


def test_without_a_preflight_the_same_access_fails_only_after_the_upload(fake_bedrock, tmp_path):
    fake_bedrock.access_denied = {"amazon.titan-text-lite-v1"}
    job = bedrock_job(fake_bedrock, tmp_path)
    with pytest.raises(fh.ProviderError, match="AccessDeniedException"):
        job.submit()
    assert fake_bedrock.s3_writes()  # what the preflight spares


def test_a_model_the_region_does_not_offer(fake_bedrock, tmp_path):
    job = bedrock_job(fake_bedrock, tmp_path, base_model="amazon.titan-text-express-v1:0:8k")
    report = job.preflight()
    assert codes(report) == {"model_not_offered"}
    assert "amazon.titan-text-lite-v1:0:4k" in report.errors[0].message  # what it offers instead


def test_the_role_is_checked_too(fake_bedrock, tmp_path):
    from finetune_hub.testing.bedrock_fake_access import grant

    untrusted = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                 "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    grant(fake_bedrock, role=["kms:Describe*"], role_trust=untrusted)
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    report = bedrock_job(fake_bedrock, tmp_path, kms_key_id=key).preflight()
    assert {
        "role_not_trusted_by_bedrock",
        "role_missing_s3_access",
        "role_missing_kms_access",
    } == codes(report)
    s3 = next(i for i in report.issues if i.code == "role_missing_s3_access").message
    assert "s3:GetObject" in s3 and "arn:aws:s3:::finetune-hub-test/finetune-hub/*" in s3
    other = bedrock_job(fake_bedrock, tmp_path, role_arn="arn:aws:iam::123456789012:role/nobody")
    assert "role_not_found" in codes(other.preflight())


def test_submit_preflight_stops_before_anything_is_uploaded(fake_bedrock, tmp_path, capsys):
    fake_bedrock.access_denied = {"amazon.titan-text-lite-v1"}
    argv = ["submit", "--provider", "bedrock", "--model", TITAN,
            "--training-file", str(SAMPLES / "prompt_completion_ja.jsonl"),
            "--option", f"role_arn={fake_bedrock.role_arn}", "--option", f"s3_uri={fake_bedrock.s3_uri}",
            "--home", str(tmp_path / "store"), "--preflight", "--yes"]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "model_access_denied" in out and "nothing was uploaded" in out
    assert main([*argv, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["submitted"] is False and not data["preflight"]["ok"]
    assert nothing_sent(fake_bedrock)
    fake_bedrock.access_denied = set()
    assert main(argv) == 0  # the same command once access is granted
    assert "nothing found" in capsys.readouterr().out
    assert fake_bedrock.count("CreateModelCustomizationJob") == 1


# -- Bedrock: the account's Service Quotas -----------------------------------------------------------
TITAN_LITE_QUOTA = "L-3B82104D"  # "Sum of training and validation records" for Titan Text G1 - Lite


def many_records(tmp_path, n: int) -> Path:
    path = tmp_path / f"train_{n}.jsonl"
    row = json.dumps({"prompt": "What is finetune_hub?", "completion": "A library."})
    path.write_text((row + "\n") * n, encoding="utf-8")
    return path


def quota_job(fake, tmp_path, n: int, **kwargs) -> fh.TuningJob:
    job = bedrock_job(fake, tmp_path, **kwargs)
    job.spec.training_file = str(many_records(tmp_path, n))
    return job


def test_a_raised_account_quota_the_job_does_not_declare_is_a_warning(fake_bedrock, tmp_path):
    fake_bedrock.set_service_quota(TITAN_LITE_QUOTA, 20000)
    report = quota_job(fake_bedrock, tmp_path, 10_050).preflight()  # over the default 10,000
    assert report.ok, str(report)  # the account takes it; validation would not, undeclared
    (issue,) = report.warnings
    assert issue.code == "service_quota_not_declared"
    assert TITAN_LITE_QUOTA in issue.message and "20,000" in issue.message
    assert "default 10,000" in issue.message and "refuses them" in issue.message
    assert "quotas={'max_training_records': 20000}" in issue.message
    assert "--quota max_training_records=20000" in issue.message
    assert fake_bedrock.count("ListServiceQuotas") >= 2  # the fake pages: NextToken followed
    assert nothing_sent(fake_bedrock)


def test_a_job_over_the_applied_quota_is_an_error_before_any_upload(fake_bedrock, tmp_path):
    fake_bedrock.set_service_quota(TITAN_LITE_QUOTA, 12000)  # raised, but not enough
    report = quota_job(fake_bedrock, tmp_path, 12_001).preflight()
    assert not report.ok
    assert codes(report) == {"service_quota_exceeded"}
    message = report.errors[0].message
    assert TITAN_LITE_QUOTA in message and "12,000" in message and "12,001" in message
    assert "Service Quotas" in message and "--quota-code L-3B82104D" in message
    assert report.errors[0].field == "quotas.max_training_records"
    assert nothing_sent(fake_bedrock)
    assert fake_bedrock.count("s3:PUT") == 0 and not fake_bedrock.s3_writes()


def test_within_the_default_quota_nothing_is_said(fake_bedrock, tmp_path):
    report = quota_job(fake_bedrock, tmp_path, 10_000).preflight()
    assert report.issues == [], str(report)
    assert fake_bedrock.count("ListServiceQuotas") >= 1


@pytest.mark.parametrize("how", ["denied", "throttled"])
def test_quotas_that_cannot_be_read_are_not_checked_and_the_rest_still_runs(
    fake_bedrock, tmp_path, how
):
    if how == "denied":
        fake_bedrock.service_quotas_denied = True
    else:
        fake_bedrock.inject("ListServiceQuotas", "throttle", times=20)
    fake_bedrock.access_denied = {"amazon.titan-text-lite-v1"}
    report = quota_job(fake_bedrock, tmp_path, 12_000).preflight()
    assert codes(report) == {"model_access_denied", "preflight_not_checked"}, str(report)
    (warning,) = report.warnings
    assert "servicequotas:ListServiceQuotas" in warning.message
    assert "Sum of training and validation records" in warning.message
    asked = {r.operation for r in fake_bedrock.requests}
    assert {"s3:HEAD", "iam:POST /", "sts:POST /"} <= asked  # permissions and bucket still asked
    assert nothing_sent(fake_bedrock)


def test_a_declared_quota_is_not_asked_to_be_declared_again(fake_bedrock, tmp_path):
    # TuningJob(quotas=...) reaches the backend on the prepared job's rules (jobs/prepare.py)
    fake_bedrock.set_service_quota(TITAN_LITE_QUOTA, 20000)
    job = quota_job(fake_bedrock, tmp_path, 10_050, quotas={"max_training_records": 20000})
    assert job.prepare().rules.max_training_records == 20000
    report = job.preflight()
    assert report.issues == [], str(report)
    fake_bedrock.set_service_quota(TITAN_LITE_QUOTA, 10_040)  # declared more than applied
    declared = quota_job(fake_bedrock, tmp_path, 10_050, quotas={"max_training_records": 30000})
    (issue,) = declared.preflight().errors
    assert issue.code == "service_quota_exceeded" and "10,040" in issue.message


def test_a_model_whose_rules_name_no_quota_makes_no_quota_call(fake_bedrock, tmp_path):
    from finetune_hub.rules import resolve

    nova = "amazon.nova-micro-v1:0:128k"
    assert resolve("bedrock", nova, "sft")[0].quotas == {}
    report = quota_job(fake_bedrock, tmp_path, 12_000, base_model=nova).preflight()
    assert report.ok, str(report)
    assert fake_bedrock.count("ListServiceQuotas") == 0


def test_the_fake_lists_the_quotas_the_rules_name():
    pytest.importorskip("moto")
    from finetune_hub.testing.bedrock_fake_quotas import default_quotas, find_quota

    quotas = default_quotas()
    lite = find_quota(quotas, "Sum of training and validation records for a Titan Text G1 - Lite v1 Fine-tuning job")  # fmt: skip
    assert lite["QuotaCode"] == TITAN_LITE_QUOTA and lite["Value"] == 10000
    assert lite["QuotaName"].startswith("(Model customization) ")
    made_up = [q["QuotaCode"] for q in quotas if q["QuotaCode"] != TITAN_LITE_QUOTA]
    assert made_up and all(c.startswith("L-FAKE") for c in made_up)  # no code a source gives


# -- OpenAI, Azure OpenAI, Vertex, local ------------------------------------------------------------
def openai_job(tmp_path, base_model="gpt-4.1-mini-2025-04-14", **options) -> fh.TuningJob:
    return fh.TuningJob(
        provider="openai",
        base_model=base_model,
        training_file=SAMPLES / "chat_gozaru.jsonl",
        options=options,
        store=fh.JobStore(tmp_path / "store"),
    )


def test_openai_preflight_checks_the_key_and_the_model(fake_openai, tmp_path):
    assert openai_job(tmp_path).preflight().ok
    fake_openai.models.discard("gpt-4.1-mini-2025-04-14")
    report = openai_job(tmp_path).preflight()
    assert codes(report) == {"model_not_available"}
    fake_openai.api_keys = {"sk-the-right-one"}
    report = openai_job(tmp_path, api_key="sk-wrong").preflight()
    assert codes(report) == {"api_key_invalid"} and "valid key" in report.errors[0].message
    assert not fake_openai.files


def test_azure_openai_preflight_uses_the_same_check(fake_azure_openai, tmp_path):
    job = fh.TuningJob(
        provider="azure-openai",
        base_model="gpt-4.1-mini-2025-04-14",
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path / "store"),
    )
    assert job.preflight().ok
    fake_azure_openai.api_keys = {"another"}
    assert "api_key_invalid" in codes(job.preflight())


def test_vertex_preflight_finds_a_missing_bucket(fake_vertex, tmp_path):
    def job(**options):
        return fh.TuningJob(
            provider="vertex",
            base_model="gemini-2.5-flash",
            training_file=SAMPLES / "chat_gozaru.jsonl",
            options={**fake_vertex.options, **options},
            store=fh.JobStore(tmp_path / "store"),
        )

    assert job().preflight().ok
    report = job(gcs_uri="gs://no-such-bucket-fh/ft").preflight()
    assert codes(report) == {"bucket_not_found"} and "gcloud storage buckets create" in str(report)


def test_local_preflight_says_when_the_machine_is_too_small(tmp_path, monkeypatch, fh_store_home):
    from finetune_hub.providers.local import preflight as local_preflight

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    job = fh.TuningJob(
        provider="local",
        base_model=str(folder),
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path / "store"),
    )
    gib = local_preflight.GIB
    monkeypatch.setattr(local_preflight, "memory_bytes", lambda: (64 * gib, 128 * gib))
    assert job.preflight().ok
    monkeypatch.setattr(local_preflight, "memory_bytes", lambda: (gib // 8, gib // 4))
    report = job.preflight()
    assert codes(report) == {"not_enough_memory"} and "smaller model" in report.errors[0].message
    missing = fh.TuningJob(provider="local", base_model=str(tmp_path / "nowhere"),
                           training_file=SAMPLES / "chat_gozaru.jsonl", store=job.store)  # fmt: skip
    assert "unknown_model" in codes(missing.preflight())  # the folder present: check()'s finding
