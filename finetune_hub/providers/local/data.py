"""Training examples for the local backend: records -> token ids + loss masks, and length-grouped batches.

Any conversational format the library reads (chat, prompt/completion, instruction data, Gemini,
Bedrock) becomes (role, text) turns through the neutral form of `finetune_hub.data.neutral`; any preference format
becomes (prompt turns, chosen, rejected). Turns are rendered with the model's own chat template,
and only assistant tokens are trained on (an assistant turn with `weight: 0` is context).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from finetune_hub.data.formats import DataFormat, detect_format
from finetune_hub.data.neutral import PARSERS, Conversation, Skip
from finetune_hub.data.reader import read_records
from finetune_hub.data.recipes import instruction_conversation
from finetune_hub.errors import FinetuneHubError

IGNORE = -100


@dataclass
class SFTExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass
class PreferenceExample:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]

    def __len__(self) -> int:
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))


def read_conversations(path: str, fmt: str | DataFormat | None = None) -> list[Conversation]:
    """Every readable record of `path` in neutral form (records that cannot be read are skipped)."""
    fmt = DataFormat(fmt) if fmt else detect_format(path)
    parser = instruction_conversation if fmt is DataFormat.INSTRUCTION else PARSERS.get(fmt)
    if parser is None:
        raise FinetuneHubError(f"{path}: the local backend cannot train on {fmt.value} records")
    out = []
    for _line, record in read_records(path):
        try:
            out.append(parser(record))
        except Skip:
            continue
    if not out:
        raise FinetuneHubError(f"{path}: no usable {fmt.value} records")
    return out


def _messages(conv: Conversation) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": conv.system}] if conv.system is not None else []
    return msgs + [{"role": t.role, "content": t.text} for t in conv.turns]


def _render(
    tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool = False
) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


def assistant_spans(tokenizer: Any, conv: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans to train on: each assistant turn's content and
    the template's end-of-turn marker after it; weight-0 turns are left out."""
    messages = _messages(conv)
    text = _render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    offset = 1 if conv.system is not None else 0
    cursor = 0
    for i, turn in enumerate(conv.turns):
        if turn.role != "assistant":
            continue
        k = i + offset
        before = _render(tokenizer, messages[:k], generation_prompt=True) if k else ""
        after = _render(tokenizer, messages[: k + 1])
        if k and text.startswith(before) and text.startswith(after) and len(after) > len(before):
            start, end = len(before), len(after)
        else:  # a template that is not prefix-stable: find the content itself
            start = text.find(turn.text, cursor)
            if start < 0:
                continue
            end = start + len(turn.text)
        # Trailing newlines of a template belong to no one; keep the end-of-turn token itself.
        stripped = text[start:end].rstrip("\n")
        end = start + len(stripped)
        cursor = end
        if turn.weight != 0:
            spans.append((start, end))
    return text, spans


def encode_sft(tokenizer: Any, conv: Conversation, max_length: int) -> SFTExample | None:
    """Token ids with labels only on trained assistant tokens; None if nothing is left to train."""
    text, spans = assistant_spans(tokenizer, conv)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_length]
    offsets = list(enc["offset_mapping"])[:max_length]
    labels = [IGNORE] * len(ids)
    for j, (a, b) in enumerate(offsets):
        if b > a and any(s <= a < e for s, e in spans):
            labels[j] = ids[j]
    example = SFTExample(ids, labels)
    return example if example.trained_tokens else None


def encode_preference(
    tokenizer: Any, conv: Conversation, max_length: int
) -> PreferenceExample | None:
    """Prompt ids (with the generation prompt) and the chosen / rejected completion ids."""
    messages = _messages(conv)
    prompt = _render(tokenizer, messages, generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def completion(answer: str) -> list[int]:
        full = _render(tokenizer, [*messages, {"role": "assistant", "content": answer}]).rstrip(
            "\n"
        )
        tail = full[len(prompt) :] if full.startswith(prompt) else answer
        return tokenizer(tail, add_special_tokens=False)["input_ids"]

    chosen, rejected = completion(conv.chosen or ""), completion(conv.rejected or "")
    room = max_length - max(len(chosen), len(rejected))
    if room < 1:
        chosen, rejected = chosen[: max_length // 2], rejected[: max_length // 2]
        room = max_length - max(len(chosen), len(rejected))
    prompt_ids = prompt_ids[-room:]  # keep the end of a long prompt, next to the answer
    if not chosen or not rejected:
        return None
    return PreferenceExample(prompt_ids, chosen, rejected)


def build_examples(
    tokenizer: Any, path: str, method: str, max_length: int, fmt: str | None = None
) -> list[Any]:
    convs = read_conversations(path, fmt)
    if method == "dpo":
        examples = [encode_preference(tokenizer, c, max_length) for c in convs if c.is_preference]
        what = "preference"
    else:
        examples = [encode_sft(tokenizer, c, max_length) for c in convs if not c.is_preference]
        what = "conversational (chat or prompt/completion)"
    kept = [e for e in examples if e is not None]
    if not kept:
        raise FinetuneHubError(
            f"{path}: no {what} records with something to train on for method {method!r}"
        )
    return kept


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, *, group: int = 64
) -> list[list[int]]:
    """Batches of similar length, so per-batch padding wastes little compute.

    Shuffle with `seed`, cut into chunks of `batch_size * group`, sort each chunk by length, cut it
    into batches, then shuffle the batches. Deterministic for a given seed.

    >>> length_grouped_batches([5, 1, 4, 2], 2, seed=0, group=2)  # doctest: +SKIP
    [[1, 3], [2, 0]]
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = max(1, batch_size * group)
    batches: list[list[int]] = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c : c + chunk], key=lambda i: lengths[i], reverse=True)
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate_sft(examples: Sequence[SFTExample], pad_id: int) -> dict[str, Any]:
    """Pad to the longest example in the batch (right padding)."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def collate_preference(examples: Sequence[PreferenceExample], pad_id: int) -> dict[str, Any]:
    """Chosen rows then rejected rows, labels only on the completion tokens."""
    rows = [
        SFTExample(e.prompt_ids + e.chosen_ids, [IGNORE] * len(e.prompt_ids) + e.chosen_ids)
        for e in examples
    ]
    rows += [
        SFTExample(e.prompt_ids + e.rejected_ids, [IGNORE] * len(e.prompt_ids) + e.rejected_ids)
        for e in examples
    ]
    return collate_sft(rows, pad_id)


def iter_epoch(batches: list[list[int]], start: int = 0) -> Iterator[tuple[int, list[int]]]:
    for i in range(start, len(batches)):
        yield i, batches[i]
