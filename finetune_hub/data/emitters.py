"""Writers from the neutral `Conversation` to each target format's records.

A writer raises `Skip` when the target cannot hold the conversation (a multi-turn chat as
prompt/completion), and names in `conv.dropped` what it leaves out (a system text the target
has no place for, unless it is the caller's `system_prompt`).

>>> from finetune_hub.data.neutral import Turn
>>> EMITTERS[DataFormat.GEMINI](Conversation([Turn("user", "Hi"), Turn("assistant", "Hello")]), None)
{'contents': [{'role': 'user', 'parts': [{'text': 'Hi'}]}, {'role': 'model', 'parts': [{'text': 'Hello'}]}]}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from finetune_hub.data.formats import DataFormat
from finetune_hub.data.neutral import (
    BEDROCK_SCHEMA,
    MULTI_TURN,
    NO_ASSISTANT_TURN,
    NON_ALTERNATING_ROLES,
    UNSUPPORTED_SHAPE,
    UNTRAINED_COMPLETION,
    Conversation,
    Skip,
    Turn,
)

#: The text that joins prompt and completion in continued pre-training records.
CPT_SEPARATOR = "\n"

Emitter = Callable[[Conversation, str | None], dict[str, Any]]


def _system(conv: Conversation, system_prompt: str | None) -> str | None:
    return conv.system if conv.system is not None else system_prompt


def _lose_system(conv: Conversation, system_prompt: str | None) -> None:
    """A system text the target cannot hold is dropped, unless it is the caller's `system_prompt`."""
    if conv.system is not None and conv.system != system_prompt:
        conv.drop("system")


def _answered(conv: Conversation) -> list[Turn]:
    if not conv.turns or conv.turns[-1].role != "assistant":
        raise Skip(NO_ASSISTANT_TURN)
    return conv.turns


def _single_turn(conv: Conversation) -> tuple[str, Turn]:
    turns = _answered(conv)
    if len(turns) > 2:
        raise Skip(MULTI_TURN)
    if len(turns) != 2 or turns[0].role != "user":
        raise Skip(UNSUPPORTED_SHAPE)
    return turns[0].text, turns[1]


def _single_prompt(turns: list[Turn]) -> str:
    if len(turns) > 1:
        raise Skip(MULTI_TURN)
    if len(turns) != 1 or turns[0].role != "user":
        raise Skip(UNSUPPORTED_SHAPE)
    return turns[0].text


def _message(turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": turn.role, "content": turn.text}
    if turn.weight == 0:
        message["weight"] = 0
    return message


def _openai_messages(turns: list[Turn], system: str | None) -> list[dict[str, Any]]:
    head = [{"role": "system", "content": system}] if system is not None else []
    return head + [_message(t) for t in turns]


def _gemini_content(role: str, text: str) -> dict[str, Any]:
    return {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}


def to_chat(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    return {"messages": _openai_messages(_answered(conv), _system(conv, system_prompt))}


def to_prompt_completion(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    prompt, answer = _single_turn(conv)
    if answer.weight == 0:
        raise Skip(UNTRAINED_COMPLETION)
    _lose_system(conv, system_prompt)
    return {"prompt": prompt, "completion": answer.text}


def to_continued_pretraining(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    pair = to_prompt_completion(conv, system_prompt)
    conv.drop("completion_boundary")
    return {"input": pair["prompt"] + CPT_SEPARATOR + pair["completion"]}


def to_gemini(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    turns = _answered(conv)
    system = _system(conv, system_prompt)
    head = {"systemInstruction": {"parts": [{"text": system}]}} if system is not None else {}
    return head | {"contents": [_gemini_content(t.role, t.text) for t in turns]}


def to_bedrock_conversation(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    turns = _answered(conv)
    system = _system(conv, system_prompt)
    record: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if system is not None:
        record["system"] = [{"text": system}]
    record["messages"] = [{"role": t.role, "content": [{"text": t.text}]} for t in turns]
    return record


def to_bedrock_claude(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    turns = _answered(conv)
    if any(t.role != ("user", "assistant")[i % 2] for i, t in enumerate(turns)):
        raise Skip(NON_ALTERNATING_ROLES)
    system = _system(conv, system_prompt)
    head = {"system": system} if system is not None else {}
    return head | {"messages": [{"role": t.role, "content": t.text} for t in turns]}


def to_rlhf_prompt(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    turns, answered = conv.turns, conv.is_preference
    if not answered and turns and turns[-1].role == "assistant":
        turns, answered = turns[:-1], True
    text = _single_prompt(turns)
    _lose_system(conv, system_prompt)
    for name in conv.responses if answered else ():
        conv.drop(name)
    return {"input_text": text}


def _preferred(conv: Conversation) -> tuple[str, str]:
    if conv.chosen is None or conv.rejected is None:
        raise Skip(UNSUPPORTED_SHAPE)
    return conv.chosen, conv.rejected


def to_preference(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    chosen, rejected = _preferred(conv)
    return {
        "input": {"messages": _openai_messages(conv.turns, _system(conv, system_prompt))},
        "preferred_output": [{"role": "assistant", "content": chosen}],
        "non_preferred_output": [{"role": "assistant", "content": rejected}],
    }


def to_gemini_preference(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    chosen, rejected = _preferred(conv)
    system = _system(conv, system_prompt)
    head = {"system_instruction": {"parts": [{"text": system}]}} if system is not None else {}
    return head | {
        "contents": [_gemini_content(t.role, t.text) for t in conv.turns],
        "completions": [
            {"score": 1, "completion": _gemini_content("assistant", chosen)},
            {"score": 0, "completion": _gemini_content("assistant", rejected)},
        ],
    }


def to_rlhf_preference(conv: Conversation, system_prompt: str | None) -> dict[str, Any]:
    chosen, rejected = _preferred(conv)
    text = _single_prompt(conv.turns)
    _lose_system(conv, system_prompt)
    return {"input_text": text, "candidate_0": chosen, "candidate_1": rejected, "choice": 0}


EMITTERS: dict[DataFormat, Emitter] = {
    DataFormat.CHAT: to_chat,
    DataFormat.PROMPT_COMPLETION: to_prompt_completion,
    DataFormat.GEMINI: to_gemini,
    DataFormat.BEDROCK_CONVERSATION: to_bedrock_conversation,
    DataFormat.BEDROCK_CLAUDE: to_bedrock_claude,
    DataFormat.CONTINUED_PRETRAINING: to_continued_pretraining,
    DataFormat.RLHF_PROMPT: to_rlhf_prompt,
    DataFormat.PREFERENCE: to_preference,
    DataFormat.GEMINI_PREFERENCE: to_gemini_preference,
    DataFormat.RLHF_PREFERENCE: to_rlhf_preference,
}
