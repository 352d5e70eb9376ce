"""Scorers for `fh.evaluate`: rules on the reply text, and a judge model (`fh.scorers.judge`).

A scorer is called with the prompt and the reply and returns True/False or a number; a scorer
with `wants_item = True` also gets the evaluation item (its `task_id`, a reference answer, an
evaluation aspect). The judge asks any chat model the library reaches (a tuned model, a
deployment, a model id through a provider, a callable) to score each answer on a scale, and
keeps every answer it gave per (prompt, answer), so asking again costs nothing.

>>> fh.scorers.ends_with("gozaru!")("Who are you?", "A samurai, gozaru!")  # doctest: +SKIP
True
>>> score = fh.scorers.judge(model=strong_model, rubric="Is the answer correct and helpful?",
...                          scale=(1, 5))  # doctest: +SKIP
>>> fh.evaluate(tuned, "tasks.jsonl", scorer=score, base="smollm2-135m-instruct")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_hub.errors import FinetuneHubError

__all__ = ["Judge", "JudgeVerdict", "contains", "ends_with", "exact", "judge", "regex"]

#: A scorer takes (prompt, reply) and returns True/False or a number in [0, 1] (a judge: a
#: number on its scale).
Scorer = Callable[..., Any]


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


def _named(fn: Callable[..., Any], name: str) -> Scorer:
    fn.__name__ = name  # type: ignore[attr-defined]
    fn.__qualname__ = name  # type: ignore[attr-defined]
    return fn


DEFAULT_RUBRIC = (
    "Judge how well the answer carries out the user's request: correct, complete, helpful, and "
    "in the language and form the request asks for."
)

JUDGE_TEMPLATE = """You are a strict grader. Score the ANSWER to the REQUEST on a scale from {low} \
to {high} ({low}: worst, {high}: best).

Rubric: {rubric}
{extra}
REQUEST:
{prompt}

ANSWER:
{answer}

Reply with one line of JSON and nothing else: {{"score": <a number from {low} to {high}>, \
"reason": "<one short sentence>"}}"""


@dataclass(frozen=True)
class JudgeVerdict:
    """What the judge said about one answer: its score on the scale (None when its reply held
    no score in range), its reason and its whole reply."""

    score: float | None
    reason: str
    reply: str


def parse_verdict(reply: str, scale: tuple[float, float]) -> JudgeVerdict:
    """The score in a judge's reply: `{"score": 4, "reason": ...}`, else `score: 4`, `4/5` or
    `[[4]]`; a number outside `scale` counts as none.

    >>> parse_verdict('{"score": 4, "reason": "mostly right"}', (1, 5)).score
    4.0
    >>> parse_verdict("Score: 2 - off topic", (1, 5)).score
    2.0
    >>> parse_verdict("I cannot grade this", (1, 5)).score is None
    True
    """
    low, high = scale
    found: float | None = None
    reason = ""
    for match in re.finditer(r"\{[^{}]*\}", reply):
        try:
            data = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("score"), int | float | str):
            try:
                found = float(data["score"])
            except ValueError:
                continue
            reason = str(data.get("reason", ""))
            break
    if found is None:
        m = re.search(
            r"(?i)(?:score\W{0,3}|\[\[)(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*/\s*" + f"{high:g}", reply
        )
        if m:
            found = float(m.group(1) or m.group(2))
        reason = reply.strip().splitlines()[0][:200] if reply.strip() else ""
    if found is not None and not low <= found <= high:
        found = None
    return JudgeVerdict(found, reason, reply)


class Judge:
    """A scorer that asks a chat model to grade each answer on `scale` (see `judge`)."""

    wants_item = True

    def __init__(
        self,
        ask: Callable[[list[dict[str, Any]]], str],
        *,
        name: str,
        rubric: str,
        scale: tuple[float, float],
        template: str,
        cache_file: str | Path | None,
    ) -> None:
        if not scale[0] < scale[1]:
            raise FinetuneHubError(f"judge: scale must be (low, high) with low < high, got {scale}")
        self.ask = ask
        self.rubric = rubric
        self.scale = (float(scale[0]), float(scale[1]))
        self.template = template
        self.__name__ = f"judge({name}, {scale[0]:g}-{scale[1]:g})"
        self.asked = 0  # how many times the judge model was asked (the cache saves the rest)
        self._cache: dict[str, JudgeVerdict] = {}
        self._lock = threading.Lock()
        self.cache_file = Path(cache_file) if cache_file else None
        if self.cache_file and self.cache_file.is_file():
            for line in self.cache_file.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._cache[entry["key"]] = JudgeVerdict(
                        entry["score"], entry["reason"], entry["reply"]
                    )
                except (ValueError, KeyError):
                    continue

    def key(self, prompt: str, answer: str, item: Mapping[str, Any] | None = None) -> str:
        """The cache key: the prompt, the answer, and what else the judge is shown."""
        extra = self._extra(item)
        text = "\0".join([self.__name__, self.rubric, extra, prompt, answer])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _extra(self, item: Mapping[str, Any] | None) -> str:
        lines = []
        reference = item.get("reference") if item else None
        aspect = item.get("aspect") if item else None
        if reference:
            lines.append(
                f"A reference answer (the answer need not match it word for word):\n{reference}"
            )
        if aspect:
            lines.append(f"What to look at for this request: {aspect}")
        return "\n".join(lines) + ("\n" if lines else "")

    def verdict(
        self, prompt: str, answer: str, item: Mapping[str, Any] | None = None
    ) -> JudgeVerdict:
        """The judge's verdict on `answer` (asked once per prompt, answer and item)."""
        key = self.key(prompt, answer, item)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        text = self.template.format(
            low=f"{self.scale[0]:g}",
            high=f"{self.scale[1]:g}",
            rubric=self.rubric,
            extra=self._extra(item),
            prompt=prompt,
            answer=answer,
        )
        reply = self.ask([{"role": "user", "content": text}])
        found = parse_verdict(str(reply), self.scale)
        with self._lock:
            self.asked += 1
            self._cache[key] = found
            if self.cache_file:
                self.cache_file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.cache_file, "a", encoding="utf-8") as f:
                    entry = {"key": key, **found.__dict__}
                    f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return found

    def __call__(
        self, prompt: str, answer: str, item: Mapping[str, Any] | None = None
    ) -> float | None:
        return self.verdict(prompt, answer, item).score

    def reason(self, prompt: str, answer: str, item: Mapping[str, Any] | None = None) -> str:
        return self.verdict(prompt, answer, item).reason


def judge(
    fn: Callable[[str, str], Any] | None = None,
    name: str = "judge",
    *,
    model: Any = None,
    rubric: str = DEFAULT_RUBRIC,
    scale: tuple[float, float] = (1, 5),
    provider: Any = None,
    template: str = JUDGE_TEMPLATE,
    cache_file: str | Path | None = None,
    **chat_args: Any,
) -> Any:
    """A judge model that scores each answer on `scale` by `rubric`; the table's mean score is
    then on that scale (an answer the judge gave no score in range is left out of the mean).

    `model` is any chat model the library reaches: a `TunedModel`, a `Deployment`, a model id
    with `provider=` (a name or a backend: `judge(model="gpt-4.1", provider="openai")`), or a
    callable `messages -> reply`. `chat_args` (e.g. `max_tokens=200`) go to each call. Verdicts
    are kept per (prompt, answer) in memory, and in `cache_file` (JSON lines) across runs.

    `judge(fn)` with a function `fn(prompt, reply) -> bool | score in [0, 1]` is the simple hook
    it was before.

    >>> j = judge(model=lambda messages: '{"score": 4, "reason": "fine"}', rubric="Correct?")
    >>> j("What is 2+2?", "4"), j("What is 2+2?", "4"), j.asked
    (4.0, 4.0, 1)
    """
    if fn is not None:
        if model is not None:
            raise FinetuneHubError("judge: give a function or model=, not both")
        return _named(lambda p, r: float(fn(p, r)), name)
    if model is None:
        raise FinetuneHubError(
            "judge: give model= (a TunedModel, a Deployment, a model id with provider=, or a "
            "callable messages -> reply)"
        )
    from finetune_hub.jobs.evaluation import chat_function

    ask, label = chat_function(model, provider=provider, chat_args=chat_args)
    return Judge(
        ask, name=label, rubric=rubric, scale=scale, template=template, cache_file=cache_file
    )
