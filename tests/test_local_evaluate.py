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


# -- the judge: any chat model, scores on a scale, cached per (prompt, answer) -----------------------
TASKS = [
    {"task_id": 0, "input": "What is 2+2?", "output": "4", "eval_aspect": "exactness"},
    {"task_id": 1, "input": "Say hello politely."},
    {"task_id": 2, "input": "Name a river in Japan."},
]


def write_tasks(path):
    import json

    path.write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    return path


def scripted_judge(messages, model="judge"):
    """A fake judge: 5 for an answer that ends with 'gozaru!', 2 otherwise; never for 'rambling'."""
    text = messages[-1]["content"]
    answer = text.split("ANSWER:\n", 1)[1].split("\n\nReply with", 1)[0]
    if "rambling" in answer:
        return "I would rather not say."
    score = 5 if answer.rstrip().endswith("gozaru!") else 2
    return f'{{"score": {score}, "reason": "scripted"}}'


def test_fh_scorers_is_the_public_namespace():
    import finetune_hub as fh

    assert fh.scorers.ends_with("!")("q", "yes!") and fh.scorers.judge is judge
    assert {"contains", "ends_with", "exact", "judge", "regex"} <= set(fh.scorers.__all__)


def test_a_judge_scores_each_task_and_the_table_gives_the_mean_score(tmp_path):
    asked = []

    def judge_model(messages):
        asked.append(messages[-1]["content"])
        return scripted_judge(messages)

    scorer = judge(model=judge_model, rubric="Does it sound like a samurai?", scale=(1, 5))
    tuned = lambda m: m[-1]["content"] + " gozaru!"  # noqa: E731
    base = lambda m: "plain answer"  # noqa: E731
    table = evaluate(tuned, str(write_tasks(tmp_path / "tasks.jsonl")), scorer=scorer, base=base)
    assert table.scale == (1.0, 5.0)
    assert table.tuned_mean == 5.0 and table.base_mean == 2.0
    assert [r.task_id for r in table.rows] == [0, 1, 2]
    assert [row["tuned_score"] for row in table.per_task()] == [5.0, 5.0, 5.0]
    assert "mean score judge(judge_model, 1-5): base 2.00 tuned 5.00 of 3 prompts" in str(table)
    markdown = table.to_markdown()
    assert (
        "| 0 | What is 2+2? | 2 | 5 |" in markdown
        and "| **mean** |  | **2.00** | **5.00** |" in markdown
    )
    # the judge saw the rubric, the reference answer and the aspect of task 0
    assert "Does it sound like a samurai?" in asked[0]
    assert "reference answer" in asked[0] and "exactness" in asked[0]
    assert "reference answer" not in asked[2]
    # answers are cached per (prompt, answer): the same evaluation again asks nothing
    before = scorer.asked
    evaluate(tuned, str(tmp_path / "tasks.jsonl"), scorer=scorer, base=base)
    assert scorer.asked == before == 6 and len(asked) == 6


def test_a_judge_reply_without_a_score_is_left_out_of_the_mean(tmp_path):
    scorer = judge(model=scripted_judge, scale=(1, 5))
    answers = iter(["fine gozaru!", "rambling", "ok gozaru!"])
    table = evaluate(lambda m: next(answers), [t["input"] for t in TASKS], scorer=scorer)
    assert [r.tuned_score for r in table.rows] == [5.0, None, 5.0]
    assert table.tuned_mean == 5.0 and "(1 answers without a score)" in table.summary()


def test_verdicts_are_kept_in_a_cache_file_across_runs(tmp_path):
    calls = []

    def judge_model(messages):
        calls.append(1)
        return scripted_judge(messages)

    cache = tmp_path / "judge-cache.jsonl"
    first = judge(model=judge_model, cache_file=cache)
    assert first("q", "a gozaru!") == 5.0
    second = judge(model=judge_model, cache_file=cache)
    assert second("q", "a gozaru!") == 5.0 and second.asked == 0 and len(calls) == 1
    assert second("q", "other") == 2.0 and len(calls) == 2


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ('{"score": 3, "reason": "ok"}', 3.0),
        ('Here it is: {"score": "4", "reason": "good"}', 4.0),
        ("Score: 1. Wrong language.", 1.0),
        ("[[5]]", 5.0),
        ("I give it 4/5", 4.0),
        ('{"score": 9}', None),  # out of the scale
        ("no idea", None),
    ],
)
def test_judge_replies_are_read_in_their_usual_shapes(reply, score):
    from finetune_hub.jobs.scorers import parse_verdict

    assert parse_verdict(reply, (1, 5)).score == score


def test_a_judge_through_a_provider_and_a_tuned_model(fake_provider, tmp_path):
    import finetune_hub as fh

    fake_provider.reply = lambda messages, model: scripted_judge(messages, model)
    by_id = fh.scorers.judge(model="judge-large", provider="fake", rubric="Samurai style?")
    table = evaluate(lambda m: "yes gozaru!", [TASKS[1]], scorer=by_id)
    assert table.tuned_mean == 5.0 and fake_provider.count("chat") == 1

    chat = tmp_path / "chat.jsonl"
    chat.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
    )
    job = fh.TuningJob(provider="fake", base_model="any", training_file=chat)
    job.sleep = lambda s: None
    strong = job.submit().wait(poll_interval=0, progress=False)
    as_model = fh.scorers.judge(model=strong, scale=(1, 5))
    assert evaluate(lambda m: "plain", [TASKS[1]], scorer=as_model).tuned_mean == 2.0
    with pytest.raises(FinetuneHubError, match="model="):
        fh.scorers.judge(rubric="no model")
