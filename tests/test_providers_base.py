"""The provider registry, options, ProviderError and the shared retry policy."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub import registry
from finetune_hub.providers.base import ProviderError, backend_class, call_with_retries

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


def test_unknown_provider_lists_the_known_ones_and_the_closest():
    with pytest.raises(fh.UnknownProviderError, match="did you mean 'openai'.*azure-openai"):
        backend_class("openia")


def test_a_missing_sdk_names_the_pip_command(monkeypatch):
    ghost = registry.ProviderEntry(
        "ghost", "Ghost", extra="ghost", rules="ghost.toml", backend="finetune_hub_no_such_module:G"
    )
    monkeypatch.setitem(registry._extra_entries, "ghost", ghost)
    with pytest.raises(fh.MissingDependencyError, match=r'pip install "finetune-hub\[ghost\]"'):
        backend_class("ghost")


def test_third_party_providers_register_through_entry_points(monkeypatch, tmp_path):
    rules = tmp_path / "custom.toml"
    rules.write_text('[provider]\nname = "custom"\ndisplay_name = "Custom"\n', encoding="utf-8")
    entry = registry.ProviderEntry(
        "custom", "Custom", extra="custom", rules=str(rules), backend="tests.test_providers_base:G"
    )

    class EntryPoint:
        name = "custom"

        def load(self):
            return entry

    monkeypatch.setattr(
        registry, "entry_points", lambda group: [EntryPoint()] if group == registry.ENTRY_POINT_GROUP else []
    )
    registry._plugins.cache_clear()
    try:
        assert "custom" in registry.names()
        assert registry.entry("custom") is entry
        assert "custom" in fh.rules.providers()  # the rules catalog reads the same list
    finally:
        registry._plugins.cache_clear()


def test_a_validation_only_provider_validates_and_says_submit_is_not_there(tmp_path, monkeypatch):
    entry = registry.ProviderEntry("later", "Later Cloud", extra="later", rules="openai.toml")
    monkeypatch.setitem(registry._extra_entries, "later", entry)
    job = fh.TuningJob(
        provider="later",
        base_model="gpt-4.1-mini",
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path),
    )
    assert job.validate().ok
    with pytest.raises(fh.UnsupportedOperation, match="Later Cloud jobs are not available"):
        job.submit()


def test_unsupported_operation_says_what_is_offered():
    backend = backend_class("openai").from_options({"api_key": "k"})
    err = backend.unsupported("deploy")
    assert isinstance(err, fh.FinetuneHubError)
    assert "OpenAI does not support deploy" in str(err) and "chat" in str(err)


def test_provider_error_carries_everything():
    err = ProviderError("openai", "create", "bad file", status_code=400, request_id="req_1", code="invalid_file")
    assert str(err) == "openai create failed (HTTP 400): bad file [request req_1]"
    assert not err.retryable
    assert ProviderError("openai", "get", "x", status_code=503).retryable
    assert ProviderError("openai", "get", "x", status_code=429).retryable
    assert ProviderError("openai", "get", "connection reset").retryable


def test_retries_honour_retry_after_and_stop_on_non_retryable():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ProviderError("openai", "get", "slow down", status_code=429, retry_after=2.5)
        return "ok"

    assert call_with_retries(flaky, sleep=slept.append) == "ok"
    assert slept == [2.5, 2.5]

    def fatal():
        calls.append(1)
        raise ProviderError("openai", "create", "bad", status_code=400)

    calls.clear()
    with pytest.raises(ProviderError, match="bad"):
        call_with_retries(fatal, sleep=slept.append)
    assert len(calls) == 1


def test_retries_give_up_after_the_attempts():
    calls = []

    def down():
        calls.append(1)
        raise ProviderError("openai", "get", "down", status_code=500)

    with pytest.raises(ProviderError):
        call_with_retries(down, attempts=3, sleep=lambda s: None)
    assert len(calls) == 3


def test_large_files_go_through_the_uploads_api_in_parts(fake_openai, tmp_path, monkeypatch):
    import finetune_hub.providers.openai as openai_provider

    monkeypatch.setattr(openai_provider, "_files_api_limit", lambda provider: 1000)
    job = fh.TuningJob(provider="openai", base_model="gpt-4.1-mini", training_file=SAMPLES / "chat_gozaru.jsonl", store=fh.JobStore(tmp_path))
    job.sleep = lambda s: None
    job.submit()
    assert fake_openai.count("POST", "/uploads") == 1 and fake_openai.count("POST", "/uploads/.*/complete") == 1
    assert fake_openai.count("POST", "/files") == 0
    assert job.wait(poll_interval=0.01, progress=False).id


def test_gzip_training_files_are_uploaded_as_plain_jsonl(fake_openai, tmp_path):
    gz = tmp_path / "train.jsonl.gz"
    gz.write_bytes(gzip.compress((SAMPLES / "chat_gozaru.jsonl").read_bytes()))
    job = fh.TuningJob(provider="openai", base_model="gpt-4.1-mini", training_file=gz, store=fh.JobStore(tmp_path / "h"))
    job.sleep = lambda s: None
    job.submit()
    (uploaded,) = fake_openai.files.values()
    assert uploaded.data == (SAMPLES / "chat_gozaru.jsonl").read_bytes()
