"""Conversion recipes: the instruction-data recipe, and the length limits `convert` applies.

An instruction data set in the dolly style has `instruction`, `input` (often empty) and `output`
(or `response`) columns. The recipe makes one single-turn example per record: the prompt is the
instruction alone when `input` is empty, else the template filled with both; the answer is the
output. `fh.convert(..., to="prompt_completion")` or `to="chat"` runs it.

>>> conv = instruction_conversation({"instruction": "Summarise.", "input": "A long text.", "output": "Short."})
>>> conv.turns[0].text
'Summarise.\\n\\nA long text.'
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from finetune_hub.data.neutral import MISSING_FIELD, UNSUPPORTED_SHAPE, Conversation, Skip, Turn
from finetune_hub.errors import ConversionError

DEFAULT_TEMPLATE = "{instruction}\n\n{input}"
EMPTY_OUTPUT = "empty_output"
TOO_LONG = "too_long"

_PLACEHOLDERS = frozenset({"instruction", "input"})
_INSTRUCTION_KEYS = ("instruction", "input", "output", "response")


class TokenCounting(Protocol):
    """Anything with `count(text) -> int`, such as `finetune_hub.data.tokens.TokenCounter`."""

    def count(self, text: str) -> int: ...


def check_template(template: str) -> str:
    """Return `template` when it is a `str.format` template using exactly {instruction} and {input}.

    >>> check_template("### Instruction\\n{instruction}\\n### Input\\n{input}")[:15]
    '### Instruction'
    """
    try:
        names = {
            name
            for _text, name, _spec, _conv in string.Formatter().parse(template)
            if name is not None
        }
    except ValueError as exc:
        raise ConversionError(
            f"template {template!r} is not a valid str.format template ({exc})"
        ) from None
    if names != _PLACEHOLDERS:
        found = ", ".join(sorted("{" + n + "}" for n in names)) or "no placeholders"
        raise ConversionError(
            f"template {template!r} must use {{instruction}} and {{input}} (and nothing else); found {found}"
        )
    return template


def instruction_prompt(instruction: str, input_text: str = "", template: str | None = None) -> str:
    """The prompt of one instruction record: the instruction alone, or the template with both.

    >>> instruction_prompt("Name a river.")
    'Name a river.'
    >>> instruction_prompt("Translate.", "Hello", "{instruction}\\nText: {input}")
    'Translate.\\nText: Hello'
    """
    if not input_text.strip():
        return instruction
    return (template or DEFAULT_TEMPLATE).format(instruction=instruction, input=input_text)


def _instruction(record: dict[str, Any]) -> str:
    value = record.get("instruction")
    if value is not None and not isinstance(value, str):
        raise Skip(UNSUPPORTED_SHAPE)
    if not value or not value.strip():
        raise Skip(MISSING_FIELD)
    return value


def _input(record: dict[str, Any]) -> str:
    value = record.get("input")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Skip(UNSUPPORTED_SHAPE)
    return value


def _output(record: dict[str, Any]) -> str:
    key = "output" if record.get("output") is not None else "response"
    value = record.get(key)
    if value is None:
        raise Skip(MISSING_FIELD)
    if not isinstance(value, str):
        raise Skip(UNSUPPORTED_SHAPE)
    if not value.strip():
        raise Skip(EMPTY_OUTPUT)
    return value


def instruction_conversation(
    record: dict[str, Any], *, template: str | None = None
) -> Conversation:
    """One instruction record as a single-turn conversation; `Skip` with a reason when it cannot be.

    Columns other than instruction/input/output/response (dolly's `index`, `category`) are dropped.

    >>> instruction_conversation({"instruction": "Name a river.", "input": "", "response": "Shinano"}).turns[1].text
    'Shinano'
    """
    prompt = instruction_prompt(_instruction(record), _input(record), template)
    conv = Conversation(
        [Turn("user", prompt), Turn("assistant", _output(record))], responses=("output",)
    )
    for key in record:
        if key not in _INSTRUCTION_KEYS:
            conv.drop(key)
    return conv


@dataclass(frozen=True, slots=True)
class LengthLimit:
    """A cap on a record's total length in characters and/or tokens; records over it are skipped.

    >>> LengthLimit(max_chars=5).exceeded(["abc", "def"])
    True
    """

    max_chars: int | None = None
    max_tokens: int | None = None
    tokenizer: TokenCounting | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.tokenizer is None:
            raise ValueError("max_tokens needs a tokenizer (an object with count(text) -> int)")
        for name in ("max_chars", "max_tokens"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def active(self) -> bool:
        return self.max_chars is not None or self.max_tokens is not None

    def exceeded(self, texts: Iterable[str]) -> bool:
        """Whether the texts together are longer than the limit (never cut, only judged)."""
        texts = list(texts)
        if self.max_chars is not None and sum(map(len, texts)) > self.max_chars:
            return True
        if self.max_tokens is not None and self.tokenizer is not None:
            return sum(self.tokenizer.count(t) for t in texts) > self.max_tokens
        return False
