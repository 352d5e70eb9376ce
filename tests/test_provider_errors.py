"""A planted SDK exception on every operation of every provider reaches the user as
`fh.ProviderError` (never a raw SDK traceback), is noted on the job, and the CLI prints one line
and exits 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
MODEL = "gpt-4.1-mini-2025-04-14"


def planted(kind: str) -> Exception:
    return openai.OpenAIError("planted SDK failure") if kind == "sdk" else RuntimeError("planted")


def raiser(exc: Exception) -> Any:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return boom


@pytest.fixture
def submitted(fake_openai, tmp_path):
    job = fh.TuningJob(
        provider="openai", base_model=MODEL, training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path),
    )
    job.sleep = lambda s: None
    return job


OPERATIONS = {
    # operation: (what to patch on the openai client, how the job layer reaches it)
    "upload": (("files", "create"), lambda job: job.submit()),
    "create": (("fine_tuning.jobs", "create"), lambda job: job.submit()),
    "get": (("fine_tuning.jobs", "retrieve"), lambda job: job.refresh()),
    "events": (("fine_tuning.jobs", "list_events"), lambda job: job.events()),
    "cancel": (("fine_tuning.jobs", "cancel"), lambda job: job.cancel()),
    "checkpoints": (("fine_tuning.jobs.checkpoints", "list"), lambda job: job.checkpoints()),
    "chat": (("chat.completions", "create"), lambda job: job.result.chat([{"role": "user", "content": "x"}])),
    "delete_model": (("models", "delete"), lambda job: job.result.delete()),
}


def _target(client: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        client = getattr(client, part)
    return client


@pytest.mark.parametrize("kind", ["sdk", "other"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_openai_operation_fails_as_provider_error(submitted, monkeypatch, operation, kind):
    (where, name), act = OPERATIONS[operation]
    job = submitted
    if operation not in ("upload", "create"):
        job.submit()
        if operation != "cancel":  # a finished job is not cancelled: nothing is sent
            job.wait(poll_interval=0.01, progress=False)
    client = job.backend.connection.client
    monkeypatch.setattr(_target(client, where), name, raiser(planted(kind)))
    with pytest.raises(fh.ProviderError) as caught:
        act(job)
    err = caught.value
    assert err.provider == "openai" and "planted" in err.message
    assert not err.retryable
    rec = job.store.get(job.id)
    assert rec.extra["last_provider_error"]["message"] == err.message
    if operation in ("upload", "create"):
        assert rec.error == err.message and rec.error_code == operation
        assert rec.provider_job_id is None


def test_the_cli_prints_one_line_and_exits_2(fake_openai, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(openai.resources.files.Files, "create", raiser(openai.OpenAIError("boom")))
    code = main([
        "submit", "--yes", "--provider", "openai", "--model", MODEL,
        "--training-file", str(SAMPLES / "chat_gozaru.jsonl"), "--home", str(tmp_path),
    ])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "openai upload failed" in err and "Traceback" not in err


def test_azure_without_login_is_one_line_not_a_traceback(fake_azure_openai, tmp_path, capsys, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    class NoLogin:
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("Please run 'az login' to set up an account.")

        def get_token_info(self, *scopes, **kwargs):
            raise ClientAuthenticationError("Please run 'az login' to set up an account.")

    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    job = fh.TuningJob(
        provider="azure-openai", base_model=MODEL, training_file=SAMPLES / "chat_gozaru.jsonl",
        options={"credential": NoLogin()}, store=fh.JobStore(tmp_path),
    )
    job.sleep = lambda s: None
    with pytest.raises(fh.ProviderError, match="az login") as caught:
        job.submit()
    assert caught.value.status_code == 401 and not caught.value.retryable
    assert job.store.get(job.id).error_code == "upload"
