"""`finetune_hub.jobs.evaluation`: scorers, the judge hook and the before/after table."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from finetune_hub.errors import FinetuneHubError  # noqa: E402
from finetune_hub.jobs.evaluation import contains, ends_with, evaluate, exact, judge, regex  # noqa: E402


def test_scorers():
    assert ends_with("gozaru!")("q", "Yes — so it is, gozaru!  \n")
    assert not ends_with("gozaru!")("q", "gozaru! yes")
    assert contains("Paris")("q", "It is Paris.") and contains("paris", case=False)("q", "PARIS")
    assert regex(r"\d+ legs")("q", "A crab has 10 legs.")
    assert exact("43")("q", " 43 \n") and not exact("43")("q", "43.")
    assert judge(lambda p, r: 0.25)("q", "r") == 0.25


def test_before_after_table_with_callables():
    tuned = lambda messages: messages[-1]["content"] + " gozaru!"  # noqa: E731
    base = lambda messages: "plain answer"  # noqa: E731
    table = evaluate(
        tuned, ["a?", [{"role": "user", "content": "b?"}]], scorer=ends_with("gozaru!"), base=base
    )
    assert table.tuned_rate == 1.0 and table.base_rate == 0.0
    text = str(table)
    assert "base 0%" in text and "tuned 100%" in text and "b? gozaru!" in text
    assert table.to_dict()["rows"][1]["prompt"] == "b?"


def test_judge_hook_and_base_only():
    table = evaluate(
        None, ["x"], scorer=judge(lambda p, r: len(r) > 3, "long"), base=lambda m: "long reply"
    )
    assert table.base_rate == 1.0 and table.tuned_rate is None
    with pytest.raises(FinetuneHubError):
        evaluate(None, ["x"], scorer=exact("y"))


def test_a_model_id_is_asked_through_the_named_provider_and_its_errors_are_provider_errors(
    monkeypatch,
):
    from finetune_hub.errors import ProviderError
    from finetune_hub.providers.base import make_backend
    from finetune_hub.providers.local import LocalBackend

    asked = []

    def chat(self, model, messages, **kwargs):
        asked.append((model, kwargs))
        return "so it is, gozaru!"

    monkeypatch.setattr(LocalBackend, "chat", chat)
    table = evaluate(
        None, ["x"], scorer=ends_with("gozaru!"), base="base-id", provider="local", max_tokens=3
    )
    assert table.base_rate == 1.0 and asked == [("base-id", {"max_tokens": 3})]

    def broken(self, model, messages, **kwargs):
        raise RuntimeError("planted")

    monkeypatch.setattr(LocalBackend, "chat", broken)
    with pytest.raises(ProviderError, match="RuntimeError: planted") as info:
        evaluate(None, ["x"], scorer=exact("y"), base="base-id", provider=make_backend("local"))
    assert info.value.provider == "local" and info.value.operation == "chat"
    with pytest.raises(FinetuneHubError, match="provider="):
        evaluate(None, ["x"], scorer=exact("y"), base="base-id")
