"""`evaluate`: score a tuned model (and its base) on prompts, as a before/after table.

Written against `TunedModel.chat` and `Deployment.chat`, so it works for every provider that can
chat (cloud or local), with or without a deployment.

>>> table = fh.evaluate(model, ["What is 2+2?"], scorer=ends_with("gozaru!"), base="smollm2-135m-instruct")  # doctest: +SKIP
>>> print(table); table.tuned_rate  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetune_hub.errors import FinetuneHubError

if TYPE_CHECKING:
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.providers.base import TuningBackend

#: A scorer takes (prompt, reply) and returns True/False or a number in [0, 1].
Scorer = Callable[[str, str], "bool | float"]
Prompt = str | list[dict[str, Any]]


def contains(text: str, *, case: bool = True) -> Scorer:
    """1 when the reply contains `text`."""
    return _named(
        lambda p, r: (text in r) if case else (text.lower() in r.lower()), f"contains({text!r})"
    )


def ends_with(text: str) -> Scorer:
    """1 when the reply, trailing whitespace removed, ends with `text`."""
    return _named(lambda p, r: r.rstrip().endswith(text.rstrip()), f"ends_with({text!r})")


def regex(pattern: str, flags: int = 0) -> Scorer:
    """1 when `pattern` matches anywhere in the reply (`re.search`)."""
    compiled = re.compile(pattern, flags)
    return _named(lambda p, r: compiled.search(r) is not None, f"regex({pattern!r})")


def exact(text: str) -> Scorer:
    """1 when the reply equals `text` (surrounding whitespace ignored)."""
    return _named(lambda p, r: r.strip() == text.strip(), f"exact({text!r})")


def judge(fn: Callable[[str, str], Any], name: str = "judge") -> Scorer:
    """A judge hook: `fn(prompt, reply)` returns a bool or a score in [0, 1], e.g. by asking another
    model (`lambda p, r: other_model.chat([...]) == "yes"`)."""
    return _named(lambda p, r: float(fn(p, r)), name)


def _named(fn: Callable[[str, str], Any], name: str) -> Scorer:
    fn.__name__ = name  # type: ignore[attr-defined]
    fn.__qualname__ = name  # type: ignore[attr-defined]
    return fn


@dataclass
class EvalRow:
    prompt: str
    tuned_reply: str | None = None
    tuned_score: float | None = None
    base_reply: str | None = None
    base_score: float | None = None


@dataclass
class EvalTable:
    """Per-prompt replies and scores for the tuned model and (optionally) its base."""

    scorer: str
    rows: list[EvalRow] = field(default_factory=list)
    tuned_name: str | None = None
    base_name: str | None = None

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "scorer": self.scorer,
            "tuned": self.tuned_name,
            "base": self.base_name,
            "tuned_rate": self.tuned_rate,
            "base_rate": self.base_rate,
            "rows": [r.__dict__ for r in self.rows],
        }

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
            cells = [_clip(r.prompt, 34)]
            if self.base_name is not None:
                cells.append(_cell(r.base_reply, r.base_score, 44))
            if self.tuned_name is not None:
                cells.append(_cell(r.tuned_reply, r.tuned_score, 44))
            lines.append(" | ".join(c.ljust(w) for c, (_, w) in zip(cells, cols, strict=True)))
        summary = [f"scorer {self.scorer}:"]
        if self.base_rate is not None:
            summary.append(f"base {self.base_rate:.0%}")
        if self.tuned_rate is not None:
            summary.append(f"tuned {self.tuned_rate:.0%}")
        lines.append(" ".join(summary) + f" of {len(self.rows)} prompts")
        return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _cell(reply: str | None, score: float | None, width: int) -> str:
    mark = "✓" if score and score >= 0.5 else "✗"
    return f"{mark} {_clip(reply or '', width - 2)}"


def _as_messages(prompt: Prompt) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _prompt_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
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


def evaluate(
    model: TunedModel | Deployment | TuningJob | ChatFn | None,
    prompts: Sequence[Prompt],
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
    `chat_args` (e.g. `max_tokens=64`) go to each chat call; provider failures arrive as
    `fh.ProviderError`.

    >>> evaluate(lambda m: "yes gozaru!", ["a?"], scorer=ends_with("gozaru!")).tuned_rate
    1.0
    """
    by_id = _by_id(model, provider, chat_args)
    table = EvalTable(scorer=getattr(scorer, "__name__", "scorer"))
    tuned = _chat_fn(model, by_id, chat_args) if model is not None else None
    based = _chat_fn(base, by_id, chat_args) if base is not None else None
    if tuned is None and based is None:
        raise FinetuneHubError("evaluate: give a model, a base, or both")
    table.tuned_name = tuned[1] if tuned else None
    table.base_name = based[1] if based else None
    for prompt in prompts:
        messages, text = _as_messages(prompt), _prompt_text(prompt)
        row = EvalRow(prompt=text)
        if based is not None:
            row.base_reply = based[0](messages)
            row.base_score = float(scorer(text, row.base_reply))
        if tuned is not None:
            row.tuned_reply = tuned[0](messages)
            row.tuned_score = float(scorer(text, row.tuned_reply))
        table.rows.append(row)
    return table
