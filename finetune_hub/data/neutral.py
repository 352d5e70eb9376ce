"""The neutral form conversions go through: a system text, user/assistant turns, and for preference
data the preferred and rejected answers.

Each source format has a reader here (`PARSERS`) from a record to a `Conversation`, and each
target a writer in `finetune_hub.data.emitters` (`EMITTERS`) from a `Conversation` to a record,
so N formats need 2N functions, not N².
A record that a reader or writer cannot carry over raises `Skip` with a stable snake_case reason;
fields a conversion loses are named in `Conversation.dropped`.

>>> conv = PARSERS[DataFormat.PROMPT_COMPLETION]({"prompt": "Hi", "completion": "Hello"})
>>> [(t.role, t.text) for t in conv.turns]
[('user', 'Hi'), ('assistant', 'Hello')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from finetune_hub.data.formats import DataFormat

MULTI_TURN = "multi_turn"
HAS_IMAGES = "has_images"
HAS_TOOL_CALLS = "has_tool_calls"
NO_ASSISTANT_TURN = "no_assistant_turn"
UNSUPPORTED_SHAPE = "unsupported_shape"
UNTRAINED_COMPLETION = "untrained_completion"
NON_ALTERNATING_ROLES = "non_alternating_roles"
MISSING_FIELD = "missing_field"

BEDROCK_SCHEMA = "bedrock-conversation-2024"

_MEDIA = frozenset(
    {
        "image_url",
        "input_image",
        "image",
        "video",
        "document",
        "fileData",
        "inlineData",
        "file_data",
        "inline_data",
    }
)
_TOOLS = frozenset(
    {
        "toolUse",
        "toolResult",
        "functionCall",
        "functionResponse",
        "function_call",
        "function_response",
    }
)
_MESSAGE_KEYS = frozenset({"role", "content", "weight", "tool_calls", "function_call"})
_GEMINI_SYSTEM_KEYS = ("systemInstruction", "system_instruction")


class Skip(Exception):
    """A record that cannot be converted; `reason` is a stable snake_case name.

    >>> Skip(MULTI_TURN).reason
    'multi_turn'
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Turn:
    """One user or assistant turn; `weight` is 0 for an assistant turn that is not trained on."""

    role: str
    text: str
    weight: int | None = None


@dataclass(slots=True)
class Conversation:
    """A record in neutral form. Preference records carry `chosen` and `rejected` answers to the
    prompt in `turns`; `responses` names the source fields that held the answers.

    >>> Conversation([Turn("user", "Hi")], chosen="Hello", rejected="Go away").is_preference
    True
    """

    turns: list[Turn] = field(default_factory=list)
    system: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    responses: tuple[str, ...] = ("completion",)
    dropped: list[str] = field(default_factory=list)

    @property
    def is_preference(self) -> bool:
        return self.chosen is not None

    def drop(self, name: str) -> None:
        """Note that the field `name` is lost in this conversion."""
        if name not in self.dropped:
            self.dropped.append(name)


# -- reading text -----------------------------------------------------------------------------------
def require_str(record: dict[str, Any], key: str) -> str:
    """`record[key]` as a string; `Skip` when it is missing or not a string."""
    value = record.get(key)
    if value is None:
        raise Skip(MISSING_FIELD)
    if not isinstance(value, str):
        raise Skip(UNSUPPORTED_SHAPE)
    return value


def _block_text(block: Any) -> str:
    """The text of one OpenAI part, Gemini part or Bedrock content block."""
    if type(block) is not dict:
        raise Skip(UNSUPPORTED_SHAPE)
    kind = block.get("type")
    if not isinstance(kind, str):
        kind = (
            "text"
            if "text" in block
            else next((k for k in block if k in _MEDIA or k in _TOOLS), None)
        )
    if kind == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if kind in _MEDIA:
        raise Skip(HAS_IMAGES)
    if kind in _TOOLS:
        raise Skip(HAS_TOOL_CALLS)
    raise Skip(UNSUPPORTED_SHAPE)


def content_text(content: Any) -> str:
    """A string, or a non-empty list of text parts/blocks joined without a separator."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        return "".join(_block_text(block) for block in content)
    raise Skip(UNSUPPORTED_SHAPE)


def _drop_extra(record: dict[str, Any], known: Iterable[str], conv: Conversation) -> None:
    known = frozenset(known)
    for key in record:
        if key not in known:
            conv.drop(key)


# -- readers ----------------------------------------------------------------------------------------
def _weight(message: dict[str, Any], role: str, conv: Conversation) -> int | None:
    if "weight" not in message:
        return None
    if role == "assistant" and message["weight"] == 1:
        return None
    conv.drop("weight")
    return 0 if role == "assistant" and message["weight"] == 0 else None


def _read_message(m: Any, conv: Conversation) -> None:
    if type(m) is not dict:
        raise Skip(UNSUPPORTED_SHAPE)
    role = m.get("role")
    if role in ("tool", "function") or m.get("tool_calls") or m.get("function_call"):
        raise Skip(HAS_TOOL_CALLS)
    text = content_text(m.get("content"))
    if role in ("system", "developer"):
        if conv.turns or conv.system is not None:
            raise Skip(UNSUPPORTED_SHAPE)
        conv.system = text
    elif role in ("user", "assistant"):
        conv.turns.append(Turn(role, text, _weight(m, role, conv)))
    else:
        raise Skip(UNSUPPORTED_SHAPE)
    _drop_extra(m, _MESSAGE_KEYS, conv)


def read_messages(messages: Any, conv: Conversation) -> None:
    """Add OpenAI-style messages (a leading system/developer message, then user/assistant turns)."""
    if not isinstance(messages, list) or not messages:
        raise Skip(UNSUPPORTED_SHAPE)
    for m in messages:
        _read_message(m, conv)


def parse_chat(record: dict[str, Any]) -> Conversation:
    conv = Conversation()
    read_messages(record.get("messages"), conv)
    _drop_extra(record, ("messages",), conv)
    return conv


def parse_bedrock_claude(record: dict[str, Any]) -> Conversation:
    conv = Conversation()
    if record.get("system") is not None:
        conv.system = require_str(record, "system")
    read_messages(record.get("messages"), conv)
    _drop_extra(record, ("system", "messages"), conv)
    return conv


def parse_prompt_completion(record: dict[str, Any]) -> Conversation:
    conv = Conversation(
        [
            Turn("user", require_str(record, "prompt")),
            Turn("assistant", require_str(record, "completion")),
        ]
    )
    _drop_extra(record, ("prompt", "completion"), conv)
    return conv


def _gemini_system(record: dict[str, Any]) -> str | None:
    value = next((record[k] for k in _GEMINI_SYSTEM_KEYS if record.get(k) is not None), None)
    if value is None or isinstance(value, str):
        return value
    if type(value) is not dict:
        raise Skip(UNSUPPORTED_SHAPE)
    return content_text(value.get("parts"))


def _read_contents(contents: Any, conv: Conversation) -> None:
    if not isinstance(contents, list) or not contents:
        raise Skip(UNSUPPORTED_SHAPE)
    for c in contents:
        if type(c) is not dict or c.get("role") not in ("user", "model"):
            raise Skip(UNSUPPORTED_SHAPE)
        conv.turns.append(
            Turn("assistant" if c["role"] == "model" else "user", content_text(c.get("parts")))
        )
        _drop_extra(c, ("role", "parts"), conv)


def parse_gemini(record: dict[str, Any]) -> Conversation:
    conv = Conversation(system=_gemini_system(record))
    _read_contents(record.get("contents"), conv)
    _drop_extra(record, (*_GEMINI_SYSTEM_KEYS, "contents"), conv)
    return conv


def parse_bedrock_conversation(record: dict[str, Any]) -> Conversation:
    conv = Conversation()
    if record.get("system"):
        conv.system = content_text(record["system"])
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Skip(UNSUPPORTED_SHAPE)
    for m in messages:
        if type(m) is not dict or m.get("role") not in ("user", "assistant"):
            raise Skip(UNSUPPORTED_SHAPE)
        conv.turns.append(Turn(m["role"], content_text(m.get("content"))))
        _drop_extra(m, ("role", "content"), conv)
    if record.get("schemaVersion", BEDROCK_SCHEMA) != BEDROCK_SCHEMA:
        conv.drop("schemaVersion")
    _drop_extra(record, ("schemaVersion", "system", "messages"), conv)
    return conv


def _output_text(value: Any) -> str:
    """The one assistant message of an OpenAI preference output."""
    if not isinstance(value, list) or not value:
        raise Skip(MISSING_FIELD if value is None else UNSUPPORTED_SHAPE)
    if any(type(m) is dict and (m.get("role") == "tool" or m.get("tool_calls")) for m in value):
        raise Skip(HAS_TOOL_CALLS)
    if len(value) != 1 or type(value[0]) is not dict or value[0].get("role") != "assistant":
        raise Skip(UNSUPPORTED_SHAPE)
    return content_text(value[0].get("content"))


def _require_open_prompt(conv: Conversation) -> None:
    if not conv.turns or conv.turns[-1].role != "user":
        raise Skip(UNSUPPORTED_SHAPE)


def parse_preference(record: dict[str, Any]) -> Conversation:
    conv = Conversation(responses=("preferred_output", "non_preferred_output"))
    inp = record.get("input")
    if type(inp) is not dict:
        raise Skip(MISSING_FIELD if inp is None else UNSUPPORTED_SHAPE)
    read_messages(inp.get("messages"), conv)
    _require_open_prompt(conv)
    _drop_extra(inp, ("messages",), conv)
    conv.chosen = _output_text(record.get("preferred_output", record.get("preferred_completion")))
    conv.rejected = _output_text(
        record.get("non_preferred_output", record.get("non_preferred_completion"))
    )
    _drop_extra(record, ("input", *_OUTPUT_KEYS), conv)
    return conv


_OUTPUT_KEYS = (
    "preferred_output",
    "non_preferred_output",
    "preferred_completion",
    "non_preferred_completion",
)


def _scored(completions: Any, score: int) -> str:
    found = [
        c
        for c in completions
        if type(c) is dict and type(c.get("score")) is int and c["score"] == score
    ]
    if len(found) != 1 or type(found[0].get("completion")) is not dict:
        raise Skip(UNSUPPORTED_SHAPE)
    completion = found[0]["completion"]
    if completion.get("role", "model") != "model":
        raise Skip(UNSUPPORTED_SHAPE)
    return content_text(completion.get("parts"))


def parse_gemini_preference(record: dict[str, Any]) -> Conversation:
    conv = Conversation(system=_gemini_system(record), responses=("completions",))
    _read_contents(record.get("contents"), conv)
    _require_open_prompt(conv)
    completions = record.get("completions")
    if not isinstance(completions, list) or len(completions) != 2:
        raise Skip(UNSUPPORTED_SHAPE)
    conv.chosen, conv.rejected = _scored(completions, 1), _scored(completions, 0)
    _drop_extra(record, (*_GEMINI_SYSTEM_KEYS, "contents", "completions"), conv)
    return conv


def parse_rlhf_preference(record: dict[str, Any]) -> Conversation:
    choice = record.get("choice")
    if type(choice) is not int or choice not in (0, 1):
        raise Skip(MISSING_FIELD if choice is None else UNSUPPORTED_SHAPE)
    candidates = (require_str(record, "candidate_0"), require_str(record, "candidate_1"))
    conv = Conversation(
        [Turn("user", require_str(record, "input_text"))],
        chosen=candidates[choice],
        rejected=candidates[1 - choice],
        responses=("candidate_0", "candidate_1", "choice"),
    )
    _drop_extra(record, ("input_text", "candidate_0", "candidate_1", "choice"), conv)
    return conv


Parser = Callable[[dict[str, Any]], Conversation]

PARSERS: dict[DataFormat, Parser] = {
    DataFormat.CHAT: parse_chat,
    DataFormat.PROMPT_COMPLETION: parse_prompt_completion,
    DataFormat.GEMINI: parse_gemini,
    DataFormat.BEDROCK_CONVERSATION: parse_bedrock_conversation,
    DataFormat.BEDROCK_CLAUDE: parse_bedrock_claude,
    DataFormat.PREFERENCE: parse_preference,
    DataFormat.GEMINI_PREFERENCE: parse_gemini_preference,
    DataFormat.RLHF_PREFERENCE: parse_rlhf_preference,
}
