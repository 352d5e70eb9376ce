"""Seed scenario: QLoRA SFT as people run it on a 13B model, then a judge-scored evaluation.

    python examples/local_qlora_seed.py llm-jp/llm-jp-3-13b ito.jsonl tasks.jsonl --download
    python examples/local_qlora_seed.py /models/llm-jp-3-13b ito.jsonl tasks.jsonl
    python examples/local_qlora_seed.py          # the default model, the samples in examples/data

The training records are `{"ID", "text", "output"}`: the instruction is in `text`, so the job
reads them through `mapping={"instruction": "text", "output": "output"}`. The settings are TRL's
names (`per_device_train_batch_size=2`, `gradient_accumulation_steps=4`, `num_train_epochs=1`,
`logging_steps=10`, `warmup_steps=10`, `save_steps=100`, `save_total_limit=2`,
`learning_rate=2e-4`); the base loads in 4-bit NF4 (bitsandbytes: `pip install
"finetune-hub[qlora]"`), LoRA r=16 trains on top; `num_processes=N` trains on N GPUs. Then every
`{"task_id", "input"}` prompt is answered by the base and the tuned model, a judge model scores
each answer 1 to 5, and the table (per task, mean) goes into the adapter's model card. A Hub id
is downloaded only with `--download` (`options={"download": True}`).

The tests run this same code on a tiny model built in code, with 2 processes on CPU, 4-bit where
bitsandbytes runs, and a scripted judge.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import finetune_hub as fh

HERE = Path(__file__).parent / "data"
SAMPLE = HERE / "ito_style_sample.jsonl"  # {"ID", "text", "output"}
TASKS = HERE / "tasks_sample.jsonl"  # {"task_id", "input"}
MAPPING = {"instruction": "text", "output": "output"}
TRL_SETTINGS: dict[str, Any] = {
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 4,
    "num_train_epochs": 1,
    "logging_steps": 10,
    "warmup_steps": 10,
    "save_steps": 100,
    "save_total_limit": 2,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "linear",
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "max_seq_length": 512,
}
RUBRIC = (
    "Score 1 to 5 how well the answer carries out the task: 5 correct, complete and natural in "
    "the language of the task; 3 partly right or awkward; 1 wrong, off-topic or not an answer."
)


def main(
    base_model: str = "smollm2-135m-instruct",
    data: str | Path = SAMPLE,
    tasks: str | Path = TASKS,
    *,
    judge: Any = None,
    quantization: str | None = "4bit",
    num_processes: int = 1,
    download: bool = False,
    settings: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    workdir: str | Path | None = None,
    store: fh.JobStore | None = None,
    progress: bool = True,
    say: Callable[[object], None] = print,
) -> tuple[fh.TuningJob, Any]:
    """Train, evaluate with a judge, write the model card; returns the job and the table.

    `judge` is any chat model the library reaches (a TunedModel, a Deployment, a model id with
    its provider as `("gpt-4.1", "openai")`, a callable messages -> reply); None skips the
    judged evaluation. `settings` and `options` add to or replace the job's.
    """
    work = Path(workdir or tempfile.mkdtemp(prefix="qlora-seed-"))
    work.mkdir(parents=True, exist_ok=True)
    options = {"output_dir": str(work / "runs"), "num_processes": num_processes, **(options or {})}
    if quantization:
        options["quantization"] = quantization
    if download:
        options["download"] = True
    job = fh.TuningJob(
        provider="local",
        base_model=str(base_model),
        training_file=data,
        mapping=MAPPING,
        hyperparameters={**TRL_SETTINGS, **(settings or {})},
        options=options,
        store=store or fh.JobStore(work / "store"),
    )
    report = job.validate()
    for warning in report.warnings:
        say(f"note: {warning.message}")
    if not report.ok:
        raise fh.ValidationError(report)
    job.submit()
    model = job.wait(poll_interval=2, progress=progress)
    say(f"adapter: {model.id}")
    if judge is None:
        return job, None
    model_id, provider = judge if isinstance(judge, tuple) else (judge, None)
    scorer = fh.scorers.judge(model=model_id, provider=provider, rubric=RUBRIC, scale=(1, 5))
    table = fh.evaluate(model, tasks, scorer=scorer, base=str(base_model), max_tokens=256)
    say(table)
    from finetune_hub.providers.local.publish import add_evaluation

    say(f"model card: {add_evaluation(model, table)}")
    return job, table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base_model", nargs="?", default="smollm2-135m-instruct")
    parser.add_argument("data", nargs="?", default=str(SAMPLE))
    parser.add_argument("tasks", nargs="?", default=str(TASKS))
    parser.add_argument("--download", action="store_true", help="download a Hub id")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--no-4bit", action="store_true", help="LoRA on full-precision weights")
    parser.add_argument(
        "--judge", nargs=2, metavar=("MODEL", "PROVIDER"), help="e.g. gpt-4.1 openai"
    )
    args = parser.parse_args()
    main(
        args.base_model,
        args.data,
        args.tasks,
        judge=tuple(args.judge) if args.judge else None,
        quantization=None if args.no_4bit else "4bit",
        num_processes=args.num_processes,
        download=args.download,
    )
