"""`DataFormat`: the record shapes finetune_hub reads, and detection from the records themselves."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class DataFormat(StrEnum):
    """A training-record shape. Values are stable strings used in rules files and reports.

    >>> DataFormat("chat") is DataFormat.CHAT
    True
    """

    CHAT = "chat"  # {"messages": [{"role", "content"}...]} ending in an assistant turn (OpenAI/Azure SFT)
    PROMPT_COMPLETION = "prompt_completion"  # {"prompt", "completion"}
    PREFERENCE = "preference"  # OpenAI DPO: {"input": {"messages"}, "preferred_output", "non_preferred_output"}
    RFT = "rft"  # OpenAI RFT: {"messages": [... ending in user], <grader keys>}
    GEMINI = "gemini"  # {"systemInstruction"?, "contents": [{"role": user|model, "parts"}]}
    GEMINI_PREFERENCE = (
        "gemini_preference"  # {"contents", "completions": [{"score", "completion"}] x2}
    )
    RLHF_PROMPT = "rlhf_prompt"  # PaLM-era RLHF prompt data: {"input_text"}
    RLHF_PREFERENCE = "rlhf_preference"  # {"input_text", "candidate_0", "candidate_1", "choice"}
    BEDROCK_CONVERSATION = (
        "bedrock_conversation"  # {"schemaVersion": "bedrock-conversation-2024", ...}
    )
    BEDROCK_CLAUDE = (
        "bedrock_claude"  # {"system": str, "messages": [alternating user/assistant strings]}
    )
    CONTINUED_PRETRAINING = "continued_pretraining"  # {"input": "<unlabeled text>"}
    INSTRUCTION = (
        "instruction"  # dolly-style {"instruction", "input", "output"}: input to conversion recipes
    )
    PROMPTS = "prompts"  # evaluation prompts, no answer to train on: {"task_id", "input"}, {"input"}, {"prompt"}

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    DataFormat.CHAT: "chat messages",
    DataFormat.PROMPT_COMPLETION: "prompt/completion",
    DataFormat.PREFERENCE: "OpenAI preference (DPO)",
    DataFormat.RFT: "OpenAI reinforcement fine-tuning",
    DataFormat.GEMINI: "Gemini contents",
    DataFormat.GEMINI_PREFERENCE: "Gemini preference",
    DataFormat.RLHF_PROMPT: "RLHF prompt (input_text)",
    DataFormat.RLHF_PREFERENCE: "RLHF preference (candidate_0/candidate_1/choice)",
    DataFormat.BEDROCK_CONVERSATION: "Bedrock conversation (bedrock-conversation-2024)",
    DataFormat.BEDROCK_CLAUDE: "Bedrock Claude (system + messages)",
    DataFormat.CONTINUED_PRETRAINING: "continued pre-training (input)",
    DataFormat.INSTRUCTION: "instruction data set (instruction/input/output)",
    DataFormat.PROMPTS: "evaluation prompts (task_id/input, input or prompt; for fh.evaluate)",
}


def candidate_formats(record: dict[str, Any]) -> tuple[DataFormat, ...]:
    """The formats a record's shape could be, most specific first (empty when none fits).

    Several formats share a shape (a Claude record without `system` is also plain chat), so
    callers pick the first candidate their backend accepts.

    >>> candidate_formats({"prompt": "a", "completion": "b"})
    (<DataFormat.PROMPT_COMPLETION: 'prompt_completion'>,)
    """
    if "messages" in record:
        messages = record["messages"]
        if "schemaVersion" in record or _has_block_content(messages):
            return (DataFormat.BEDROCK_CONVERSATION,)
        if isinstance(record.get("system"), str):
            return (DataFormat.BEDROCK_CLAUDE, DataFormat.CHAT)
        last_role = _last_role(messages)
        if last_role == "user":
            return (DataFormat.RFT, DataFormat.CHAT)
        if (
            last_role == "assistant"
            and set(record) <= _CHAT_KEYS
            and _plain_user_assistant(messages)
        ):
            return (DataFormat.CHAT, DataFormat.BEDROCK_CLAUDE)
        return (DataFormat.CHAT,)
    if "contents" in record:
        if "completions" in record:
            return (DataFormat.GEMINI_PREFERENCE,)
        return (DataFormat.GEMINI,)
    if "input" in record and isinstance(record["input"], dict):
        return (DataFormat.PREFERENCE,)
    if any(k in record for k in _PREFERENCE_KEYS):
        return (DataFormat.PREFERENCE,)
    if "input_text" in record:
        if "candidate_0" in record or "candidate_1" in record or "choice" in record:
            return (DataFormat.RLHF_PREFERENCE,)
        return (DataFormat.RLHF_PROMPT,)
    if "prompt" in record and "completion" not in record and set(record) <= _PROMPT_KEYS:
        return (DataFormat.PROMPTS,)  # no completion anywhere: nothing to train on
    if "prompt" in record or "completion" in record:
        return (DataFormat.PROMPT_COMPLETION,)
    if "instruction" in record and ("output" in record or "response" in record):
        return (DataFormat.INSTRUCTION,)
    if isinstance(record.get("input"), str) and ("task_id" in record or set(record) == {"input"}):
        # an evaluation set (ELYZA-tasks style) or bare prompts; Bedrock reads {"input"} as text
        return (DataFormat.PROMPTS, DataFormat.CONTINUED_PRETRAINING)
    if "input" in record:
        return (DataFormat.CONTINUED_PRETRAINING,)
    return ()


def detect_format(path: str | Any, *, sample: int = 200) -> DataFormat:
    """Detect the format of a JSONL file from its first `sample` readable records.

    Raises `ValueError` naming the file when no record has a known shape.

    >>> detect_format("chat.jsonl")  # doctest: +SKIP
    <DataFormat.CHAT: 'chat'>
    """
    from finetune_hub.data.reader import JsonlReader

    votes: dict[DataFormat, int] = {}
    for seen, (_line, _raw, record) in enumerate(JsonlReader(path), start=1):
        fmts = candidate_formats(record)
        if fmts:
            votes[fmts[0]] = votes.get(fmts[0], 0) + 1
        if seen >= sample:
            break
    if not votes:
        raise ValueError(
            f"{path}: no record has a known training-data shape (see docs/data-formats.md)"
        )
    return max(votes, key=votes.__getitem__)


_CHAT_KEYS = frozenset({"messages", "system"})
_PROMPT_KEYS = frozenset({"prompt", "task_id", "id"})
_PREFERENCE_KEYS = (
    "preferred_output",
    "non_preferred_output",
    "preferred_completion",
    "non_preferred_completion",
)


def _last_role(messages: Any) -> str | None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        role = messages[-1].get("role")
        return role if isinstance(role, str) else None
    return None


def _has_block_content(messages: Any) -> bool:
    """Bedrock conversation content is a list of `{"text": ...}` blocks (OpenAI parts carry `type`)."""
    if not isinstance(messages, list):
        return False
    for m in messages:
        if isinstance(m, dict):
            content = m.get("content")
            if isinstance(content, list) and content and isinstance(content[0], dict):
                return "type" not in content[0]
            return False
    return False


def _plain_user_assistant(messages: Any) -> bool:
    return isinstance(messages, list) and all(
        isinstance(m, dict)
        and m.get("role") in ("user", "assistant")
        and isinstance(m.get("content"), str)
        for m in messages
    )
