"""Local LoRA training throughput: our loop vs HF Trainer + peft vs TRL's SFTTrainer, same model,
data and machine.

    .venv/bin/python bench/local_train_bench.py                 # tiny Llama (~7 M params), ~4 min on 2 cores
    .venv/bin/python bench/local_train_bench.py --model default # SmolLM2-135M (slower)
    .venv/bin/python bench/local_train_bench.py --examples 400 --repeat 1   # quick look
    .venv/bin/python bench/local_train_bench.py --variants ours,trl-bfd     # some variants only

Every variant trains one epoch of LoRA (r=16 on q/k/v/o) over the same chat examples, tokenized
once by our pipeline, with loss on assistant tokens only. "ours" is
`finetune_hub.providers.local.train.Trainer` (length-grouped batches of 8, per-batch padding,
output layer on trained positions only); "hf" is `transformers.Trainer` + peft with per-batch
padding in random order (its default), batch 8; "trl" is TRL's `SFTTrainer` (pip install
"finetune-hub[bench]") with settings matched (batch 8, padded, assistant-only loss); "trl-bfd" is
the same with TRL's padding-free packing (`packing=True, packing_strategy="bfd"`: sequences packed
into rows of `batch x max-len` tokens, one row per step, no padding). Each run is its own
subprocess, round robin, so machine drift hits all alike; the median is kept. Throughput counts
non-padding tokens only; peak RSS is each subprocess's VmHWM.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "small",
    "birds",
    "sing",
    "about",
    "rain",
    "sun",
    "river",
    "mountain",
    "city",
    "tea",
    "bread",
    "music",
    "light",
    "stone",
    "garden",
    "window",
    "morning",
    "evening",
    "story",
]


def make_data(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            q = " ".join(rng.choices(WORDS, k=rng.randint(4, 40)))
            a = " ".join(rng.choices(WORDS, k=int(rng.lognormvariate(3.0, 0.8)) + 2))
            msgs = [{"role": "user", "content": q + "?"}, {"role": "assistant", "content": a + "."}]
            f.write(json.dumps({"messages": msgs}) + "\n")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(variant: str, model: str, data: str, work: str, batch: int, max_len: int) -> dict:
    from finetune_hub.providers.local.models import offline

    offline()
    import torch

    from finetune_hub.providers.local.runner import RunDir, write_json_atomic
    from finetune_hub.providers.local.train import TrainConfig, Trainer

    spec = {
        "base_model": model,
        "training_file": data,
        "method": "sft",
        "options": {"save_steps": 10**9, "log_steps": 10**9},
    }
    hp = {
        "learning_rate": 2e-4,
        "batch_size": batch,
        "lora_rank": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "seed": 0,
        "max_seq_length": max_len,
        "epochs": 1,
    }
    os.makedirs(work, exist_ok=True)
    write_json_atomic(
        Path(work) / "job.json", {"key": "bench", "spec": spec, "hyperparameters": hp}
    )
    run = RunDir(work)
    trainer = Trainer(run, TrainConfig.from_job(run.job()))
    trainer.setup()  # same data pipeline and LoRA model for both variants
    tokens = sum(len(e) for e in trainer.train)
    if variant == "ours":
        start = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - start
    elif variant.startswith("trl"):
        seconds = _trl(trainer, work, batch, max_len, packed=variant == "trl-bfd")
    else:
        from transformers import Trainer as HFTrainer
        from transformers import TrainingArguments

        from finetune_hub.providers.local.data import collate_sft

        rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in trainer.train]
        pad = trainer.pad_id

        class Rows(torch.utils.data.Dataset):
            def __len__(self):
                return len(rows)

            def __getitem__(self, i):
                return rows[i]

        def collate(items):
            from finetune_hub.providers.local.data import SFTExample

            return collate_sft([SFTExample(r["input_ids"], r["labels"]) for r in items], pad)

        args = TrainingArguments(
            output_dir=str(Path(work) / "hf"),
            per_device_train_batch_size=batch,
            num_train_epochs=1,
            learning_rate=2e-4,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            logging_steps=10**6,
            disable_tqdm=True,
            seed=0,
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )
        hf = HFTrainer(model=trainer.model, args=args, train_dataset=Rows(), data_collator=collate)
        start = time.perf_counter()
        hf.train()
        seconds = time.perf_counter() - start
    return {
        "variant": variant,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def _trl(trainer, work: str, batch: int, max_len: int, *, packed: bool) -> float:
    """TRL's SFTTrainer on the same tokenized examples and the same LoRA model: a dataset of
    input_ids + assistant_masks, which TRL takes as it is (no tokenization of its own) and turns
    into labels on the assistant tokens only."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    from finetune_hub.providers.local.data import IGNORE

    rows = [
        {"input_ids": e.input_ids, "assistant_masks": [int(x != IGNORE) for x in e.labels]}
        for e in trainer.train
    ]
    args = SFTConfig(
        output_dir=str(Path(work) / "trl"),
        per_device_train_batch_size=1 if packed else batch,
        packing=packed,
        packing_strategy="bfd",
        max_length=batch * max_len if packed else max_len,
        num_train_epochs=1,
        learning_rate=2e-4,
        report_to=[],
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        logging_steps=10**6,
        disable_tqdm=True,
        seed=0,
    )
    sft = SFTTrainer(
        model=trainer.model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=trainer.tokenizer,
    )
    start = time.perf_counter()
    sft.train()
    return time.perf_counter() - start


VARIANTS = {
    "hf": "HF Trainer + peft (random order, padded)",
    "trl": "TRL SFTTrainer (padded, settings matched)",
    "trl-bfd": "TRL SFTTrainer (packing bfd, padding-free)",
    "ours": "finetune_hub local loop",
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model",
        default="tiny",
        help="'tiny' (built in code), 'default' (SmolLM2-135M) or an HF folder",
    )
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    ap.add_argument(
        "--child", nargs=3, metavar=("VARIANT", "MODEL", "DATA"), help=argparse.SUPPRESS
    )
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.work, args.batch, args.max_len)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="fh-train-bench-"))
    data = tmp / "data.jsonl"
    make_data(data, args.examples, seed=0)
    if args.model == "tiny":
        from finetune_hub.providers.local.tiny import build_tiny_model

        model = str(
            build_tiny_model(
                tmp / "tiny",
                [data.read_text()[:200000]],
                hidden_size=256,
                layers=4,
                vocab_size=4000,
            )
        )
    elif args.model == "default":
        model = "smollm2-135m-instruct"
    else:
        model = args.model
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.repeat):
        for variant in variants:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    variant,
                    model,
                    str(data),
                    "--work",
                    str(tmp / f"{variant}-{r}"),
                    "--batch",
                    str(args.batch),
                    "--max-len",
                    str(args.max_len),
                ],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                print(f"  run {r + 1} {variant}: failed\n{out.stderr[-2000:]}", flush=True)
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[variant].append(res)
            print(
                f"  run {r + 1} {variant:8s}: {res['tokens_per_s']:8.0f} non-padding tokens/s, "
                f"{res['seconds']:6.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    done = {v: rs for v, rs in results.items() if rs}
    med = {v: statistics.median(x["tokens_per_s"] for x in rs) for v, rs in done.items()}
    rss = {v: max(x["peak_rss_mb"] for x in rs) for v, rs in done.items()}
    first = next(iter(done.values()))[0]
    print(
        f"\nmodel {args.model}, {args.examples} examples, {first['tokens']:,} non-padding tokens "
        f"per epoch, batch {args.batch}, {os.cpu_count()} CPU cores, {args.repeat} runs each"
    )
    print(f"{'variant':45s} {'tokens/s':>10s} {'peak RSS MB':>12s}")
    for v in done:
        print(f"{VARIANTS[v]:45s} {med[v]:10.0f} {rss[v]:12.0f}")
    if "ours" in med:
        if "hf" in med:
            print(f"ratio ours / HF Trainer: {med['ours'] / med['hf']:.2f}x  (target >= 1.5x)")
        trl = {v: med[v] for v in ("trl", "trl-bfd") if v in med}
        if trl:
            best = max(trl, key=trl.__getitem__)
            print(
                f"ratio ours / TRL ({best}, the faster TRL variant): "
                f"{med['ours'] / trl[best]:.2f}x  (target >= 1.0x)"
            )
    out_file = Path.home() / ".cache" / "finetune_hub" / "bench" / "local_train_bench.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps({"args": vars(args), "runs": results}, indent=1))
    print(f"results: {out_file}")


if __name__ == "__main__":
    main()
