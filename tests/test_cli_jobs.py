"""The job commands of `finetune-hub` (submit, jobs, status, watch, events, cancel, deploy,
undeploy), run in-process through `main(argv)` against finetune_hub.testing's fakes.

Every call passes `--home` so the job store lives in the test's tmp_path.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import finetune_hub.jobs.tuning_job
from finetune_hub.cli.main import main
from finetune_hub.store import JobStore

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"  # 20 chat records: the fake needs at least 10
MODEL = "gpt-4.1-mini-2025-04-14"
JOB_ID = re.compile(r"\bftj_[0-9a-f]{12}\b")


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain piped output, wide enough that table cells (job ids) are never cut."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")


class _TimeWithoutSleep:
    """Stands in for the `time` module inside `finetune_hub.jobs.tuning_job` only: `sleep` returns at once,
    everything else (`monotonic`, ...) is the real thing."""

    @staticmethod
    def sleep(seconds: float) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """`submit --wait` polls with `TuningJob.sleep`, which `__init__` sets to `time.sleep` as
    looked up in `finetune_hub.jobs.tuning_job`'s namespace. The CLI builds the job itself, so the test
    cannot set `job.sleep`; replacing the *name* `time` in that one module makes every job the
    CLI builds sleep for no time, while the real `time` module (used by pytest, the fake
    server's threads, ...) stays untouched. The fake's clock moves on each poll, so no real
    waiting is needed."""
    monkeypatch.setattr(finetune_hub.jobs.tuning_job, "time", _TimeWithoutSleep())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], home: Path):
    """`cli("status", job_id)` -> (exit code, stdout, stderr), always with `--home`."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        code = main([*(str(a) for a in argv), "--home", str(home)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    """A YAML job file whose relative `training_file` sits next to it (in another folder than
    the test's working directory, so the path must be resolved relative to the file)."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(CHAT, folder / "train.jsonl")
    path = folder / "job.yaml"
    path.write_text(
        f"provider: openai\nbase_model: {MODEL}\ntraining_file: train.jsonl\n"
        "hyperparameters: {epochs: 2}\nsuffix: gozaru\n",
        encoding="utf-8",
    )
    return path


def submitted_id(out: str) -> str:
    match = JOB_ID.search(out)
    assert match, out
    return match.group(0)


def bad_copy(tmp_path: Path) -> Path:
    """The chat sample with line 5 not JSON."""
    lines = CHAT.read_text(encoding="utf-8").splitlines()
    lines[4] = '{"messages": [}'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def flags(*extra: str) -> list[str]:
    return ["--provider", "openai", "--model", MODEL, "--training-file", str(CHAT), *extra]


# -- OpenAI: the whole lifecycle ------------------------------------------------------------------
def test_submit_from_a_yaml_job_file_then_follow_it(fake_openai, cli, job_file):
    code, out, err = cli("submit", "--yes", job_file)
    assert code == 0, out + err
    job_id = submitted_id(out)
    assert fake_openai.count("POST", "/files") == 1
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 1
    (provider_job_id,) = fake_openai.jobs
    assert provider_job_id in out
    sent = [r for r in fake_openai.requests if r.method == "POST" and r.path == "/fine_tuning/jobs"]
    assert sent[0].json["metadata"] == {"finetune_hub_job_id": job_id}
    assert sent[0].json["suffix"] == "gozaru"

    code, out, _ = cli("jobs")
    assert code == 0 and job_id in out and "openai" in out

    code, out, _ = cli("jobs", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [j["id"] for j in listed] == [job_id]
    assert listed[0]["provider_job_id"] == provider_job_id
    assert listed[0]["training_file"] == str(job_file.parent / "train.jsonl")
    assert listed[0]["hyperparameters"] == {"epochs": 2}

    code, out, _ = cli("status", job_id)
    assert code == 0 and job_id in out and f"provider job: {provider_job_id}" in out

    code, out, _ = cli("watch", job_id, "--poll-interval", "0.01")
    assert code == 0, out
    model = fake_openai.jobs[provider_job_id].fine_tuned_model
    assert model and model.startswith(f"ft:{MODEL}:") and model in out
    assert f"{job_id} succeeded" in out

    code, out, _ = cli("status", job_id, "--json")
    assert code == 0
    record = json.loads(out)
    assert record["status"] == "succeeded" and record["fine_tuned_model"] == model

    code, out, _ = cli("events", job_id)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) >= 4
    assert any("The job has successfully completed" in line for line in lines)

    code, out, _ = cli("events", job_id, "--json")
    assert code == 0
    events = json.loads(out)
    assert len(events) == len(lines) and all({"id", "message", "level"} <= set(e) for e in events)


def test_submit_with_flags(fake_openai, cli):
    code, out, err = cli("submit", "--yes", *flags("--hp", "epochs=2", "--suffix", "cli"))
    assert code == 0, out + err
    job_id = submitted_id(out)
    sent = [r for r in fake_openai.requests if r.method == "POST" and r.path == "/fine_tuning/jobs"]
    assert sent[0].json["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2}},
    }
    code, out, _ = cli("jobs", "--provider", "openai", "--json")
    assert [j["id"] for j in json.loads(out)] == [job_id]


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        ([], "--training-file"),
        (["--provider", "openai", "--model", MODEL], "--training-file"),
        (["--model", MODEL, "--training-file", str(CHAT)], "--provider"),
    ],
)
def test_submit_without_a_job_file_needs_the_flags(fake_openai, cli, argv, missing):
    code, out, _ = cli("submit", "--yes", *argv)
    assert code == 2
    assert "submit needs a job file or" in out and missing in out
    assert fake_openai.requests == []


def test_submit_names_the_missing_model_flag_as_it_is_spelled(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", "--provider", "openai", "--training-file", CHAT)
    assert code == 2
    assert "--model" in out and "--base-model" not in out


def test_submit_with_bad_data_uploads_nothing(fake_openai, cli, tmp_path, home):
    bad = bad_copy(tmp_path)
    code, out, _ = cli(
        "submit", "--yes", "--provider", "openai", "--model", MODEL, "--training-file", bad
    )
    assert code == 1
    assert "invalid_json" in out and "nothing was uploaded or submitted" in out
    assert fake_openai.count("POST", "/files") == 0
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 0
    code, out, _ = cli("jobs", "--json")
    assert json.loads(out) == []  # a refused job is not recorded


def test_submit_with_an_unknown_hyperparameter_uploads_nothing(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", *flags("--hp", "lora_rank=8"))
    assert code == 1
    assert "unknown_hyperparameter" in out and "lora_rank" in out
    assert fake_openai.count("POST", "/files") == 0
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 0


def test_cancel(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", *flags())
    assert code == 0
    job_id = submitted_id(out)
    code, out, _ = cli("cancel", job_id)
    assert code == 0
    assert f"{job_id}: cancelled" in out
    (provider_job_id,) = fake_openai.jobs
    assert fake_openai.count("POST", f"/fine_tuning/jobs/{provider_job_id}/cancel") == 1
    code, out, _ = cli("watch", job_id, "--poll-interval", "0.01")
    assert code == 1 and "cancelled" in out


def test_submit_wait_reports_the_providers_failure(fake_openai, cli, no_sleep):
    fake_openai.fail_next_job(
        code="invalid_training_file", message="Training file line 3: bad role"
    )
    code, out, _ = cli("submit", "--yes", *flags(), "--wait")
    assert code == 1
    assert "Training file line 3: bad role" in out
    job_id = submitted_id(out)
    code, out, _ = cli("status", job_id)
    assert "failed" in out and "invalid_training_file: Training file line 3: bad role" in out


def test_submit_wait_succeeds(fake_openai, cli, no_sleep):
    code, out, _ = cli("submit", "--yes", *flags(), "--wait")
    assert code == 0, out
    (job,) = fake_openai.jobs.values()
    assert f"succeeded: {job.fine_tuned_model}" in out


def test_watch_failure_prints_the_providers_message(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", *flags())
    job_id = submitted_id(out)
    (provider_job_id,) = fake_openai.jobs
    fake_openai.fail_job(provider_job_id, code="server_error", message="GPU node lost")
    code, out, _ = cli("watch", job_id, "--poll-interval", "0.01")
    assert code == 1 and "GPU node lost" in out


def test_watch_timeout_exits_1(fake_openai, cli):
    fake_openai.auto_advance = 0  # the job never moves
    code, out, _ = cli("submit", "--yes", *flags())
    job_id = submitted_id(out)
    code, out, _ = cli("watch", job_id, "--poll-interval", "0.01", "--timeout", "0.05")
    assert code == 1 and "still" in out


# -- unknown ids ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["status", "watch", "events", "cancel", "deploy", "undeploy"])
def test_unknown_job_id_exits_2_and_names_the_jobs_command(fake_openai, cli, command):
    code, out, err = cli(command, "ftj_000000000000")
    assert code == 2
    assert "ftj_000000000000" in err and "finetune-hub jobs" in err
    assert "Traceback" not in err


# -- Azure OpenAI: deploy and undeploy --------------------------------------------------------------
class _FakeCredential:
    """What `DefaultAzureCredential()` returns in these tests: a token the fake's ARM accepts."""

    token_value = "fake-arm-token"
    scopes_asked: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        _FakeCredential.scopes_asked.extend(scopes)

        return AccessToken(self.token_value, int(time.time()) + 3600)


@pytest.fixture
def azure_env(fake_azure_openai, monkeypatch: pytest.MonkeyPatch):
    """The fake Azure account, named through the AZURE_* variables the provider reads.

    The management-plane (ARM) token: `AzureOpenAIProvider._management_token` takes
    `options["management_token"]`, else `DefaultAzureCredential().get_token(...)`. The CLI can
    pass options only at `submit` (`--option`), the store rightly never keeps a token, and there is
    no environment variable for it, so `deploy`/`undeploy` (which re-attach from the store) always
    go through `DefaultAzureCredential`. The test stands in for that credential chain.
    """
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", fake_azure_openai.subscription_id)
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", fake_azure_openai.resource_group)
    monkeypatch.setenv("AZURE_OPENAI_ACCOUNT", fake_azure_openai.account)
    _FakeCredential.token_value = fake_azure_openai.management_token
    _FakeCredential.scopes_asked = []
    fake_azure_openai.management_tokens = {fake_azure_openai.management_token}
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", _FakeCredential)
    return fake_azure_openai


def azure_flags(*extra: str) -> list[str]:
    return [
        "--provider",
        "azure-openai",
        "--model",
        MODEL,
        "--training-file",
        str(CHAT),
        "--suffix",
        "gozaru-v1",
        *extra,
    ]


def test_azure_submit_deploy_undeploy(azure_env, cli, home):
    fake = azure_env
    code, out, err = cli("submit", "--yes", *azure_flags())
    assert code == 0, out + err
    job_id = submitted_id(out)
    code, out, _ = cli("watch", job_id, "--poll-interval", "0.01")
    assert code == 0, out
    (job,) = fake.jobs.values()
    assert job.fine_tuned_model == f"{MODEL}.ft-{job.id.removeprefix('ftjob-')}-gozaru-v1"
    assert job.fine_tuned_model in out

    code, out, _ = cli("deploy", job_id)
    assert code == 1
    assert "$1.70 per hour" in out and "finetune-hub deploy --yes" in out
    assert fake.deployments == {}  # nothing was deployed

    code, out, err = cli("deploy", job_id, "--yes")
    assert code == 0, out + err
    assert "$1.70/hour" in out and f"finetune-hub undeploy {job_id}" in out
    (deployment,) = fake.deployments.values()
    assert deployment.model_name == job.fine_tuned_model
    assert deployment.name in out
    assert len([r for r in fake.requests if r.surface == "arm" and r.method == "PUT"]) == 1

    code, out, _ = cli("undeploy", job_id)
    assert code == 0
    assert f"deleted {deployment.name}" in out
    assert fake.deployments == {}
    (record,) = JobStore(home).list_deployments(active_only=False)
    assert record.status == "deleted"

    code, out, _ = cli("undeploy", job_id)  # safe to repeat
    assert code == 0
    assert "no active deployment" in out or f"deleted {deployment.name}" in out


def test_azure_undeploy_twice_says_no_active_deployment(azure_env, cli, home):
    code, out, _ = cli("submit", "--yes", *azure_flags())
    job_id = submitted_id(out)
    assert cli("watch", job_id, "--poll-interval", "0.01")[0] == 0
    assert cli("deploy", job_id, "--yes")[0] == 0
    assert cli("undeploy", job_id)[0] == 0
    assert JobStore(home).list_deployments(active_only=True) == []
    code, out, _ = cli("undeploy", job_id)
    assert code == 0
    assert "no active deployment" in out
    assert azure_env.count("DELETE", r"/subscriptions/.*") == 1


def test_azure_management_token_given_at_submit_is_not_stored(azure_env, cli, home):
    code, out, err = cli(
        "submit", "--yes", *azure_flags("--option", "management_token=sekrit-token-123")
    )
    assert code == 0, out + err
    job_id = submitted_id(out)
    code, out, _ = cli("status", job_id, "--json")
    record = json.loads(out)
    assert "management_token" not in record["options"]
    assert record["credentials"]["management"] == "explicit"
    assert "sekrit-token-123" not in out
    store_file = home / "jobs.sqlite3"
    assert b"sekrit-token-123" not in store_file.read_bytes()

    # `deploy` re-attaches from the store, which (rightly) has no token: the CLI cannot hand the
    # token given at submit to the management calls, so they use the default credential chain.
    code, out, _ = cli("watch", job_id, "--poll-interval", "0.01")
    assert code == 0, out
    code, out, err = cli("deploy", job_id, "--yes")
    assert code == 0, out + err
    assert _FakeCredential.scopes_asked == ["https://management.azure.com/.default"]


def test_azure_continued_training_starts_from_the_tuned_model(azure_env, cli):
    code, out, _ = cli("submit", "--yes", *azure_flags())
    first = submitted_id(out)
    assert cli("watch", first, "--poll-interval", "0.01")[0] == 0
    (job,) = azure_env.jobs.values()
    tuned = job.fine_tuned_model
    assert tuned and ".ft-" in tuned
    code, out, err = cli(
        "submit", "--yes", "--provider", "azure-openai", "--model", tuned, "--training-file", CHAT
    )
    assert code == 0, out + err
    creates = [
        r for r in azure_env.requests if r.method == "POST" and r.path == "/fine_tuning/jobs"
    ]
    assert creates[-1].json["model"] == tuned


# -- --format and --map: data whose columns have other names --------------------------------------
ITO = SAMPLES / "ito_style_sample.jsonl"  # 8 records {"ID", "text", "output"}: no format's names
LOCAL_MODEL = "smollm2-135m-instruct"


@pytest.fixture
def local_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The local backend with no worker, no model lookup and no need of torch: `submit` writes
    the run folder (job.json, the uploaded data) under the returned folder and trains nothing."""
    from finetune_hub.providers.local import LocalBackend, backend

    monkeypatch.setattr(backend, "require_training_stack", lambda: None)
    monkeypatch.setattr(LocalBackend, "_start", lambda self, run: None)
    monkeypatch.setattr(LocalBackend, "check", lambda self, job: [])
    return tmp_path / "runs"


def local_flags(runs: Path, *extra: str) -> list[str]:
    return ["--provider", "local", "--model", LOCAL_MODEL, "--training-file", str(ITO),
            "--option", f"output_dir={runs}", *extra]  # fmt: skip


def uploaded_records(runs: Path, job_id: str) -> list[dict[str, Any]]:
    (sent,) = (runs / job_id / "data").glob("training-*.jsonl")
    return [json.loads(line) for line in sent.read_text(encoding="utf-8").splitlines()]


def test_submit_reads_other_column_names_through_map(local_runs, cli, home):
    argv = local_flags(local_runs, "--format", "instruction", "--map", "instruction=text",
                       "--map", "output=output")  # fmt: skip
    code, out, err = cli("submit", "--yes", *argv)
    assert code == 0, out + err
    job_id = submitted_id(out)
    rec = JobStore(home).require(job_id)
    assert rec.format == "instruction"
    assert rec.mapping == {"instruction": "text", "output": "output"}
    first = uploaded_records(local_runs, job_id)[0]  # the mapped copy went up, not the raw file
    assert first["instruction"] == "日本で一番長い川は何ですか?" and "text" not in first
    code, out, _ = cli("jobs", "--json")
    (listed,) = json.loads(out)
    assert listed["format"] == "instruction" and listed["mapping"] == rec.mapping


def test_submit_flags_override_the_job_files_format_and_merge_over_its_mapping(
    local_runs, cli, home, tmp_path
):
    path = tmp_path / "job.yaml"
    path.write_text(
        f"provider: local\nbase_model: {LOCAL_MODEL}\ntraining_file: {ITO}\n"
        f"format: prompt_completion\nmapping: {{instruction: title, output: output}}\n"
        f"options: {{output_dir: {local_runs}}}\n",
        encoding="utf-8",
    )
    code, out, err = cli("submit", "--yes", path, "--format", "instruction", "--map",
                         "instruction=text")  # fmt: skip
    assert code == 0, out + err
    rec = JobStore(home).require(submitted_id(out))
    assert rec.format == "instruction"
    assert rec.mapping == {"instruction": "text", "output": "output"}  # output kept from the file


def test_submit_with_a_mapped_column_the_data_lack_uploads_nothing(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", *flags("--map", "messages=conversation"))
    assert code == 1
    assert "mapping_column_missing" in out and "mapping.messages" in out
    assert "'conversation'" in out and "columns: messages" in out
    assert str(CHAT) in out and "nothing was uploaded or submitted" in out
    assert fake_openai.count("POST", "/files") == 0
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 0
    code, out, _ = cli("jobs", "--json")
    assert json.loads(out) == []  # a refused job is not recorded


def test_a_mapping_that_reads_nothing_is_refused_even_where_the_format_would_pass(local_runs, cli):
    """An instruction record lacking its instruction still scans, so the unmapped column is what
    stops it: each missing column named, the file's columns shown, no run folder written."""
    argv = local_flags(local_runs, "--format", "instruction", "--map", "instruction=question",
                       "--map", "output=answer", "--json")  # fmt: skip
    code, out, _ = cli("submit", "--yes", *argv)
    assert code == 1
    result = json.loads(out)
    assert result["submitted"] is False
    missing = {i["field"]: i["message"] for i in result["report"]["errors"]}
    assert set(missing) == {"mapping.instruction", "mapping.output"}
    assert "'question'" in missing["mapping.instruction"]
    assert "'answer'" in missing["mapping.output"]
    assert "columns: ID, output, text" in missing["mapping.output"]
    assert {i["file"] for i in result["report"]["errors"]} == {str(ITO)}
    assert not local_runs.exists()


def test_submit_map_needs_field_equals_column(fake_openai, cli):
    code, out, err = cli("submit", "--yes", *flags("--map", "instruction"))
    assert code == 2
    assert "argument --map: expected FIELD=COLUMN, got 'instruction'" in err
    assert fake_openai.requests == []


def test_submit_unknown_format_exits_2_with_the_known_ones(fake_openai, cli):
    code, _, err = cli("submit", "--yes", *flags("--format", "dolly"))
    assert code == 2
    assert "unknown format 'dolly'; known formats: chat," in err and "instruction" in err
    assert fake_openai.requests == []
