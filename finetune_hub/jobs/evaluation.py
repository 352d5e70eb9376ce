"""`evaluate`: score a tuned model (and its base) on prompts, as a before/after table.

Written against `TunedModel.chat` and `Deployment.chat`, so it works for every provider that can
chat (cloud or local), with or without a deployment. Prompts are a list, or a JSONL file of
evaluation prompts (`{"task_id", "input"}` as ELYZA-tasks, `{"input"}`, `{"prompt"}`, or chat
`messages`); a reference answer (`output`) and an evaluation aspect (`eval_aspect`) go to a judge.
Scorers are in `fh.scorers` (finetune_hub/jobs/scorers.py).

>>> table = fh.evaluate(model, ["What is 2+2?"], scorer=fh.scorers.ends_with("gozaru!"),
...                     base="smollm2-135m-instruct")  # doctest: +SKIP
>>> print(table); table.tuned_rate  # doctest: +SKIP
>>> fh.evaluate(model, "tasks.jsonl", base="smollm2-135m-instruct",
...             scorer=fh.scorers.judge(model=strong, scale=(1, 5))).tuned_mean  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_hub.errors import FinetuneHubError
from finetune_hub.jobs.scorers import Scorer, contains, ends_with, exact, judge, regex

if TYPE_CHECKING:
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.providers.base import TuningBackend

__all__ = [
    "EvalItem",
    "EvalRow",
    "EvalTable",
    "contains",
    "ends_with",
    "evaluate",
    "exact",
    "judge",
    "read_prompts",
    "regex",
]

Prompt = str | list[dict[str, Any]] | dict[str, Any]


@dataclass
class EvalItem:
    """One prompt to ask: its messages, its text (what scorers see), and what a record says
    about it (`task_id`, a `reference` answer, an evaluation `aspect`)."""

    messages: list[dict[str, Any]]
    text: str
    task_id: Any = None
    reference: str | None = None
    aspect: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


def read_prompts(source: str | os.PathLike[str] | Sequence[Prompt]) -> list[EvalItem]:
    """Evaluation items from a JSONL file of prompts or from a list (strings, message lists,
    or records like the file's).

    >>> [i.task_id for i in read_prompts([{"task_id": 7, "input": "Say hi."}, "Bye?"])]
    [7, None]
    """
    if isinstance(source, str | os.PathLike):
        from finetune_hub.data.reader import read_records

        path = Path(source)
        if not path.is_file():
            raise FinetuneHubError(
                f"evaluate: {source} is not a file; give a JSONL file of prompts or a list of "
                "prompts (a single prompt goes in a list: [prompt])"
            )
        return [_item(record, f"{path}:{line}") for line, record in read_records(path)]
    return [_item(p, f"prompt {n}") for n, p in enumerate(source, start=1)]


def _item(prompt: Prompt, where: str) -> EvalItem:
    if isinstance(prompt, str):
        return EvalItem([{"role": "user", "content": prompt}], prompt)
    if isinstance(prompt, list):
        return EvalItem(list(prompt), _prompt_text(prompt))
    if isinstance(prompt, dict):
        reference = prompt.get("output", prompt.get("reference"))
        aspect = prompt.get("eval_aspect")
        task = prompt.get("task_id", prompt.get("id", prompt.get("ID")))
        if isinstance(prompt.get("messages"), list):
            messages = list(prompt["messages"])
            if messages and messages[-1].get("role") == "assistant":  # the reference answer
                reference = reference or str(messages.pop().get("content", ""))
            return EvalItem(messages, _prompt_text(messages), task, reference, aspect)
        for key in ("input", "prompt", "instruction", "text"):
            if isinstance(prompt.get(key), str):
                text = prompt[key]
                return EvalItem([{"role": "user", "content": text}], text, task, reference, aspect)
    raise FinetuneHubError(
        f"evaluate: {where} is not a prompt: give a string, a list of messages, or a record "
        'with "input" or "prompt" (and optionally "task_id", "output", "eval_aspect")'
    )


@dataclass
class EvalRow:
    prompt: str
    tuned_reply: str | None = None
    tuned_score: float | None = None
    base_reply: str | None = None
    base_score: float | None = None
    task_id: Any = None
    tuned_note: str | None = None  # what a judge said about the tuned reply
    base_note: str | None = None


@dataclass
class EvalTable:
    """Per-prompt replies and scores for the tuned model and (optionally) its base.

    With a judge (`scale` set), scores are on the judge's scale and the summary gives the mean
    score; with a yes/no scorer, the share of prompts that pass.
    """

    scorer: str
    rows: list[EvalRow] = field(default_factory=list)
    tuned_name: str | None = None
    base_name: str | None = None
    scale: tuple[float, float] | None = None

    @staticmethod
    def _rate(values: list[float | None]) -> float | None:
        got = [v for v in values if v is not None]
        return sum(got) / len(got) if got else None

    @property
    def tuned_rate(self) -> float | None:
        """Mean score of the tuned model (the share of prompts that pass, for yes/no scorers)."""
        return self._rate([r.tuned_score for r in self.rows])

    @property
    def base_rate(self) -> float | None:
        return self._rate([r.base_score for r in self.rows])

    @property
    def tuned_mean(self) -> float | None:
        """Mean score of the tuned model (on the judge's scale with a judge)."""
        return self.tuned_rate

    @property
    def base_mean(self) -> float | None:
        return self.base_rate

    def per_task(self) -> list[dict[str, Any]]:
        """One row per prompt: task id, prompt, scores (and the judge's notes)."""
        return [
            {
                "task_id": r.task_id,
                "prompt": r.prompt,
                "base_score": r.base_score,
                "tuned_score": r.tuned_score,
                "base_note": r.base_note,
                "tuned_note": r.tuned_note,
            }
            for r in self.rows
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scorer": self.scorer,
            "tuned": self.tuned_name,
            "base": self.base_name,
            "scale": list(self.scale) if self.scale else None,
            "tuned_rate": self.tuned_rate,
            "base_rate": self.base_rate,
            "rows": [r.__dict__ for r in self.rows],
        }

    def _mean_text(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.2f}" if self.scale else f"{value:.0%}"

    def summary(self) -> str:
        """One line: the scorer, base and tuned mean score (or pass rate), the prompt count."""
        what = "mean score" if self.scale else "scorer"
        parts = [f"{what} {self.scorer}:"]
        if self.base_name is not None:
            parts.append(f"base {self._mean_text(self.base_rate)}")
        if self.tuned_name is not None:
            parts.append(f"tuned {self._mean_text(self.tuned_rate)}")
        unscored = sum(
            1
            for r in self.rows
            for reply, score in ((r.base_reply, r.base_score), (r.tuned_reply, r.tuned_score))
            if reply is not None and score is None
        )
        tail = f" ({unscored} answers without a score)" if unscored else ""
        return " ".join(parts) + f" of {len(self.rows)} prompts{tail}"

    def to_markdown(self) -> str:
        """The table in Markdown (per task, then the mean), e.g. for a model card."""
        cols = ["task", "prompt"]
        cols += ["base"] if self.base_name is not None else []
        cols += ["tuned"] if self.tuned_name is not None else []
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for n, r in enumerate(self.rows, start=1):
            cells = [str(r.task_id if r.task_id is not None else n), _clip(r.prompt, 60)]
            if self.base_name is not None:
                cells.append(self._score_text(r.base_score))
            if self.tuned_name is not None:
                cells.append(self._score_text(r.tuned_score))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        mean = ["**mean**", ""]
        if self.base_name is not None:
            mean.append(f"**{self._mean_text(self.base_rate)}**")
        if self.tuned_name is not None:
            mean.append(f"**{self._mean_text(self.tuned_rate)}**")
        lines.append("| " + " | ".join(mean) + " |")
        return "\n".join(lines)

    def _score_text(self, score: float | None) -> str:
        if score is None:
            return "-"
        return f"{score:g}" if self.scale else ("pass" if score >= 0.5 else "fail")

    def __str__(self) -> str:
        cols = [("prompt", 34)]
        if self.base_name is not None:
            cols.append(("base", 44))
        if self.tuned_name is not None:
            cols.append(("tuned", 44))
        lines = [
            " | ".join(name.ljust(w) for name, w in cols),
            "-+-".join("-" * w for _, w in cols),
        ]
        for r in self.rows:
            label = f"{r.task_id}: {r.prompt}" if r.task_id is not None else r.prompt
            cells = [_clip(label, 34)]
            if self.base_name is not None:
                cells.append(self._cell(r.base_reply, r.base_score, 44))
            if self.tuned_name is not None:
                cells.append(self._cell(r.tuned_reply, r.tuned_score, 44))
            lines.append(" | ".join(c.ljust(w) for c, (_, w) in zip(cells, cols, strict=True)))
        lines.append(self.summary())
        return "\n".join(lines)

    def _cell(self, reply: str | None, score: float | None, width: int) -> str:
        if self.scale:
            mark = "?" if score is None else f"{score:g}"
        else:
            mark = "✓" if score and score >= 0.5 else "✗"
        return f"{mark} {_clip(reply or '', width - len(mark) - 1)}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return str(users[-1]) if users else ""


ChatFn = Callable[[list[dict[str, Any]]], str]


def _by_id(model: Any, provider: Any, chat_args: dict[str, Any]) -> Callable[[str], ChatFn] | None:
    """How to chat with a model given only its id: through `provider` (a name or a
    `TuningBackend`) when given, else through the job of `model` (a tuned model, a deployment or
    a job) so that the job's connection and error boundary are used."""
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.providers.base import TuningBackend, make_backend

    if isinstance(provider, str):
        provider = make_backend(provider)
    if isinstance(provider, TuningBackend):
        backend = provider

        def through_backend(model_id: str) -> ChatFn:
            return lambda m: backend.call("chat", lambda: backend.chat(model_id, m, **chat_args))

        return through_backend
    job = model if isinstance(model, TuningJob) else getattr(model, "job", None)
    if isinstance(job, TuningJob):
        return lambda model_id: lambda m: TunedModel(job, model_id).chat(m, **chat_args)
    return None


def _chat_fn(
    target: Any, by_id: Callable[[str], ChatFn] | None, chat_args: dict[str, Any]
) -> tuple[ChatFn, str]:
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob

    if isinstance(target, TuningJob):
        target = target.result or target.wait(progress=False)
    if isinstance(target, TunedModel):
        return (lambda m: target.chat(m, **chat_args)), target.id
    if isinstance(target, Deployment):
        return (lambda m: target.chat(m, **chat_args)), target.name
    if callable(target):
        return target, getattr(target, "__name__", "model")
    if isinstance(target, str):
        if by_id is None:
            raise FinetuneHubError(
                f"evaluate: to chat with {target!r} by name, give a tuned model or provider="
            )
        return by_id(target), target
    raise FinetuneHubError(
        f"evaluate: cannot chat with {target!r}; give a TunedModel, a Deployment, a TuningJob, "
        "a model id or a callable"
    )


def chat_function(
    target: Any, *, provider: Any = None, chat_args: dict[str, Any] | None = None
) -> tuple[ChatFn, str]:
    """`(messages -> reply, a name)` for anything the library can chat with: a `TunedModel`, a
    `Deployment`, a `TuningJob` (its result), a callable, or a model id through `provider` (a
    name or a `TuningBackend`)."""
    args = dict(chat_args or {})
    return _chat_fn(target, _by_id(target, provider, args), args)


def evaluate(
    model: TunedModel | Deployment | TuningJob | ChatFn | None,
    prompts: Sequence[Prompt] | str | os.PathLike[str],
    *,
    scorer: Scorer,
    base: TunedModel | Deployment | str | ChatFn | None = None,
    provider: str | TuningBackend | None = None,
    **chat_args: Any,
) -> EvalTable:
    """Ask `model` (and `base`, if given) each prompt and score the replies.

    `model` is a `TunedModel`, a `Deployment`, a `TuningJob` (its result; waits if needed), a
    callable `messages -> reply`, or None (base only). `base` is a model id on the same provider
    (e.g. the base model name), another `TunedModel` or `Deployment`, or a callable. `provider`
    (a name or a `TuningBackend`) is needed only to chat with a model id without a tuned model.
    `prompts` is a list (strings, message lists, records) or the path of a JSONL file of
    evaluation prompts (`{"task_id", "input"}`, `{"input"}`, `{"prompt"}`, chat `messages`).
    `scorer` is from `fh.scorers`; with `fh.scorers.judge(...)` the table gives the mean score
    on the judge's scale. `chat_args` (e.g. `max_tokens=64`) go to each chat call; provider
    failures arrive as `fh.ProviderError`.

    >>> evaluate(lambda m: "yes gozaru!", ["a?"], scorer=ends_with("gozaru!")).tuned_rate
    1.0
    """
    items = read_prompts(prompts)
    by_id = _by_id(model, provider, chat_args)
    scale = getattr(scorer, "scale", None)
    table = EvalTable(scorer=getattr(scorer, "__name__", "scorer"), scale=scale)
    tuned = _chat_fn(model, by_id, chat_args) if model is not None else None
    based = _chat_fn(base, by_id, chat_args) if base is not None else None
    if tuned is None and based is None:
        raise FinetuneHubError("evaluate: give a model, a base, or both")
    table.tuned_name = tuned[1] if tuned else None
    table.base_name = based[1] if based else None
    for item in items:
        row = EvalRow(prompt=item.text, task_id=item.task_id)
        if based is not None:
            row.base_reply = based[0](item.messages)
            row.base_score, row.base_note = _score(scorer, item, row.base_reply)
        if tuned is not None:
            row.tuned_reply = tuned[0](item.messages)
            row.tuned_score, row.tuned_note = _score(scorer, item, row.tuned_reply)
        table.rows.append(row)
    return table


def _score(scorer: Scorer, item: EvalItem, reply: str) -> tuple[float | None, str | None]:
    if getattr(scorer, "wants_item", False):
        score = scorer(item.text, reply, item)
        reason = scorer.reason(item.text, reply, item) if hasattr(scorer, "reason") else None
        return (None if score is None else float(score)), reason
    return float(scorer(item.text, reply)), None
