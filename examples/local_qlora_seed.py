"""Seed scenario: QLoRA SFT on instruction/response data, as people run it on a 13B model on one GPU.

    python examples/local_qlora_seed.py /models/llama-2-13b data.jsonl      # a local HF folder + Dolly-style data
    python examples/local_qlora_seed.py                                     # the default model + the sample

Batch size 2, gradient accumulation 4 (an effective batch of 8), learning rate 2e-4, LoRA r=16 on
q/k/v/o, 4-bit NF4 base weights (bitsandbytes: pip install "finetune-hub[qlora]"). The
instruction/response records (`instruction`, `input`, `output`) are first converted to chat
records with the library's instruction recipe. The tests run this same code path on the default
model for a few steps (without 4-bit when bitsandbytes is not installed).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import finetune_hub as fh

SAMPLE = Path(__file__).parent / "data" / "dolly_ja_sample.jsonl"


def main(
    base_model: str = "smollm2-135m-instruct",
    instructions: str | Path = SAMPLE,
    *,
    quantization: str | None = "4bit",
    max_steps: int | None = None,
    workdir: str | Path | None = None,
    store: fh.JobStore | None = None,
    progress: bool = True,
) -> fh.TuningJob:
    work = Path(workdir or tempfile.mkdtemp(prefix="qlora-seed-"))
    work.mkdir(parents=True, exist_ok=True)
    chat = work / "train_chat.jsonl"
    summary = fh.convert(instructions, chat, to="chat", source_format="instruction")
    if progress:
        print(summary)
    options: dict = {"output_dir": str(work / "runs"), "gradient_checkpointing": True}
    if quantization:
        options["quantization"] = quantization
    if max_steps:
        options["max_steps"] = max_steps
    job = fh.TuningJob(
        provider="local",
        base_model=base_model,
        training_file=chat,
        hyperparameters={
            "batch_size": 2,
            "gradient_accumulation_steps": 4,
            "learning_rate": 2e-4,
            "lora_rank": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.05,
            "epochs": 1,
            "max_seq_length": 512,
        },
        options=options,
        store=store or fh.JobStore(work / "store"),
    )
    report = job.validate()
    if not report.ok:
        raise fh.ValidationError(report)
    job.submit()
    job.wait(poll_interval=2, progress=progress)
    if progress:
        print(f"adapter: {job.result.id}")
    return job


if __name__ == "__main__":
    main(*sys.argv[1:3])
