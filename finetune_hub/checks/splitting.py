"""`fh.split`: a deterministic train/validation split that respects a backend's record caps."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finetune_hub.data.split import SplitSummary


def split(
    src: str | os.PathLike[str],
    train_dst: str | os.PathLike[str],
    validation_dst: str | os.PathLike[str],
    *,
    validation_size: float | int = 0.1,
    seed: int = 0,
    provider: str | None = None,
    base_model: str | None = None,
    method: str = "sft",
    max_training_records: int | None = None,
    max_validation_records: int | None = None,
) -> SplitSummary:
    """Split one JSONL file into disjoint training and validation files.

    With `provider` and `base_model`, the caps come from that backend's rules (Titan Text Lite:
    at most 10,000 training and 1,000 validation records); explicit caps win.

    >>> fh.split("all.jsonl", "train.jsonl", "valid.jsonl", validation_size=0.1,
    ...          provider="bedrock", base_model="amazon.titan-text-lite-v1")  # doctest: +SKIP
    """
    from finetune_hub.data.split import split as split_file

    if provider is not None and base_model is not None:
        from finetune_hub.rules import resolve

        rules, _ = resolve(provider, base_model, method)
        max_training_records = max_training_records or rules.max_training_records
        max_validation_records = max_validation_records or rules.max_validation_records
    return split_file(
        src,
        train_dst,
        validation_dst,
        validation_size=validation_size,
        seed=seed,
        max_training_records=max_training_records,
        max_validation_records=max_validation_records,
    )
