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
