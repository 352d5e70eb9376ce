"""How fast is `fh.validate`, next to the floor (parse + exact counts) and a notebook-style checker?

    .venv/bin/python bench/validate_bench.py                 # 120 MB corpus, 3 repetitions
    .venv/bin/python bench/validate_bench.py --repeat 5 --mb 60 --no-rss-check

Every variant runs in a fresh subprocess. Its peak RSS is the child's own VmHWM from /proc (its
`ru_maxrss` elsewhere: on Linux that one includes the parent's peak, carried over by fork + exec);
the worker processes of `workers=2` are reported apart, from `RUSAGE_CHILDREN`. Repetitions go
round robin over the variants, so drift of a shared machine hits all of them alike; the median
is kept. The timed part is the work on the file: imports and building the tokenizer happen before
the clock starts (their cost is shown as "setup s"); "proc s" is the whole subprocess, start to
exit.

Variants (see bench/README.md): read lines, orjson parse, the floor (parse + the same exact o200k
counter finetune_hub uses, batched per 256 records like fh), the same floor with tiktoken, a
checker in the style of OpenAI's chat data-prep notebook, and `fh.validate` with 1 and 2 workers.
Results go to stdout and to ~/.cache/finetune_hub/bench/validate_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE_DIR = Path("~/.cache/finetune_hub/bench").expanduser()
MB = 1_000_000
BATCH = 256  # records per count_many call, as finetune_hub's scanner batches

# Targets (see bench/README.md).
TARGET_FH_VS_FLOOR = 0.9
TARGET_FH_VS_COOKBOOK = 5.0


def _load_make_corpus():
    import importlib.util

    name = "finetune_hub_bench_make_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- variants ---------------------------------------------------------------------------------
# Each takes the corpus path (and keyword options) and returns a dict with at least `records`
# and `bytes` (what it processed). `prepare_*` does the imports and tokenizer loading.


def read_lines(path: str | os.PathLike[str]) -> dict[str, Any]:
    """a. Binary line iteration only."""
    records = nbytes = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            records += 1
            nbytes += len(line)
    return {"records": records, "bytes": nbytes}


def json_parse(path: str | os.PathLike[str]) -> dict[str, Any]:
    """b. orjson.loads per line."""
    import orjson

    loads = orjson.loads
    records = nbytes = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            nbytes += len(line)
            if type(loads(line)) is dict:
                records += 1
    return {"records": records, "bytes": nbytes}


def _floor(path: str | os.PathLike[str], count_many: Callable[[list[str]], list[int]]) -> dict[str, Any]:
    """Parse each line and count every message content, one `count_many` per 256 records."""
    import orjson

    loads = orjson.loads
    records = nbytes = messages = tokens = 0
    texts: list[str] = []
    pending = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            nbytes += len(line)
            record = loads(line)
            records += 1
            for m in record["messages"]:
                texts.append(m["content"])
            pending += 1
            if pending == BATCH:
                messages += len(texts)
                tokens += sum(count_many(texts))
                texts = []
                pending = 0
    if texts:
        messages += len(texts)
        tokens += sum(count_many(texts))
    return {"records": records, "bytes": nbytes, "messages": messages, "tokens": tokens}


def prepare_floor() -> None:
    import orjson  # noqa: F401

    from finetune_hub.data.tokens import get_counter

    get_counter("o200k_base")


def floor(path: str | os.PathLike[str]) -> dict[str, Any]:
    """c. The floor: parse + exact o200k counts with finetune_hub's own counter."""
    from finetune_hub.data.tokens import get_counter

    counter = get_counter("o200k_base")
    out = _floor(path, counter.count_many)
    out["backend"] = getattr(counter, "backend", counter.description)
    return out


def prepare_tiktoken() -> None:
    import orjson  # noqa: F401

    from finetune_hub.data.tokens import openai_encoding

    openai_encoding("o200k_base")


def floor_tiktoken(path: str | os.PathLike[str]) -> dict[str, Any]:
    """c'. The floor with plain tiktoken, `encode_ordinary` per text (its fastest way here)."""
    from finetune_hub.data.tokens import openai_encoding

    encode = openai_encoding("o200k_base").encode_ordinary
    return _floor(path, lambda texts: [len(encode(t)) for t in texts])


def floor_tiktoken_batch(path: str | os.PathLike[str]) -> dict[str, Any]:
    """c''. The floor with tiktoken's `encode_ordinary_batch` per 256 records (thread pool)."""
    from finetune_hub.data.tokens import openai_encoding

    enc = openai_encoding("o200k_base")
    return _floor(path, lambda texts: [len(ids) for ids in enc.encode_ordinary_batch(texts)])


def lines_within(path: str | os.PathLike[str], max_bytes: int | None) -> tuple[int, int]:
    """(lines, bytes) of the whole lines that start within the first `max_bytes` of the file."""
    lines = nbytes = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            if max_bytes is not None and nbytes >= max_bytes:
                break
            lines += 1
            nbytes += len(line)
    return lines, nbytes


def cookbook(path: str | os.PathLike[str], max_bytes: int | None = None, *, _cut: tuple[int, int] | None = None) -> dict[str, Any]:
    """d. A checker in the style of OpenAI's Chat_finetuning_data_prep notebook.

    Loads the (first `max_bytes` of the) file into a list with `json.loads`, checks the format,
    then counts with `num_tokens_from_messages` (3 per message + every value encoded + 3) and
    `num_assistant_tokens_from_messages` (assistant turns encoded a second time), and computes
    the notebook's distributions, truncation and billing numbers.
    """
    from collections import defaultdict

    from finetune_hub.data.tokens import openai_encoding

    encoding = openai_encoding("o200k_base")
    n_lines, nbytes = _cut if _cut is not None else lines_within(path, max_bytes)

    # Load the dataset
    with open(path, encoding="utf-8") as f:
        dataset = [json.loads(line) for line in islice(f, n_lines)]

    # Format error checks
    format_errors: dict[str, int] = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            format_errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            format_errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                format_errors["message_missing_key"] += 1
            if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
                format_errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in ("system", "user", "assistant", "function"):
                format_errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                format_errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            format_errors["example_missing_assistant_message"] += 1

    def num_tokens_from_messages(messages, tokens_per_message=3, tokens_per_name=1):
        num_tokens = 0
        for message in messages:
            num_tokens += tokens_per_message
            for key, value in message.items():
                num_tokens += len(encoding.encode(value))
                if key == "name":
                    num_tokens += tokens_per_name
        num_tokens += 3
        return num_tokens

    def num_assistant_tokens_from_messages(messages):
        num_tokens = 0
        for message in messages:
            if message["role"] == "assistant":
                num_tokens += len(encoding.encode(message["content"]))
        return num_tokens

    def distribution(values):
        v = sorted(values)
        q = statistics.quantiles(v, n=10) if len(v) > 1 else [v[0]] * 9
        return {"min": v[0], "max": v[-1], "mean": statistics.fmean(v), "median": statistics.median(v), "p10": q[0], "p90": q[-1]}

    # Warnings and token counts
    n_missing_system = 0
    n_missing_user = 0
    n_messages = []
    convo_lens = []
    assistant_message_lens = []
    for ex in dataset:
        messages = ex["messages"]
        if not any(message["role"] == "system" for message in messages):
            n_missing_system += 1
        if not any(message["role"] == "user" for message in messages):
            n_missing_user += 1
        n_messages.append(len(messages))
        convo_lens.append(num_tokens_from_messages(messages))
        assistant_message_lens.append(num_assistant_tokens_from_messages(messages))
    dists = {
        "num_messages_per_example": distribution(n_messages),
        "num_total_tokens_per_example": distribution(convo_lens),
        "num_assistant_tokens_per_example": distribution(assistant_message_lens),
    }
    max_tokens_per_example = 65536
    n_too_long = sum(1 for length in convo_lens if length > max_tokens_per_example)

    # Pricing and default n_epochs estimate
    target_epochs, min_target_examples, max_target_examples = 3, 100, 25000
    min_default_epochs, max_default_epochs = 1, 25
    n_epochs = target_epochs
    n_train_examples = len(dataset)
    if n_train_examples * target_epochs < min_target_examples:
        n_epochs = min(max_default_epochs, min_target_examples // n_train_examples)
    elif n_train_examples * target_epochs > max_target_examples:
        n_epochs = max(min_default_epochs, max_target_examples // n_train_examples)
    n_billing_tokens_in_dataset = sum(min(max_tokens_per_example, length) for length in convo_lens)

    return {
        "records": len(dataset),
        "bytes": nbytes,
        "messages": sum(n_messages),
        "tokens": sum(convo_lens),
        "assistant_tokens": sum(assistant_message_lens),
        "format_errors": dict(format_errors),
        "missing_system": n_missing_system,
        "missing_user": n_missing_user,
        "too_long": n_too_long,
        "epochs": n_epochs,
        "billing_tokens": n_billing_tokens_in_dataset,
        "distributions": dists,
    }


def prepare_fh() -> None:
    import finetune_hub as fh

    fh.validate  # noqa: B018  (loads the validation module)
    from finetune_hub.data.tokens import get_counter

    get_counter("o200k_base")


def fh_validate(path: str | os.PathLike[str], workers: int = 1) -> dict[str, Any]:
    """e/f. `fh.validate(path, provider="openai", base_model="gpt-4.1-mini", workers=...)`."""
    import finetune_hub as fh

    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", workers=workers)
    t = report.stats.training
    return {
        "records": t.records,
        "bytes": t.bytes,
        "tokens": t.tokens.total,
        "token_max": t.tokens.max,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "counter": t.tokens.description,
    }


def fh_validate_2(path: str | os.PathLike[str]) -> dict[str, Any]:
    return fh_validate(path, workers=2)


# name -> (label, function, prepare, takes max_bytes)
VARIANTS: dict[str, tuple[str, Callable[..., dict[str, Any]], Callable[[], None] | None, bool]] = {
    "read": ("a. read lines (binary)", read_lines, None, False),
    "parse": ("b. orjson.loads per line", json_parse, lambda: __import__("orjson"), False),
    "floor": ("c. floor: parse + count (fh's counter)", floor, prepare_floor, False),
    "floor-tiktoken": ("c'. floor, tiktoken encode_ordinary", floor_tiktoken, prepare_tiktoken, False),
    "floor-tiktoken-batch": ("c''. floor, tiktoken ..._batch", floor_tiktoken_batch, prepare_tiktoken, False),
    "cookbook": ("d. cookbook-style checker", cookbook, prepare_tiktoken, True),
    "fh1": ("e. fh.validate, workers=1", fh_validate, prepare_fh, False),
    "fh2": ("f. fh.validate, workers=2", fh_validate_2, prepare_fh, False),
}
DEFAULT_VARIANTS = ["read", "parse", "floor", "floor-tiktoken", "cookbook", "fh1", "fh2"]


# -- child ------------------------------------------------------------------------------------
def _vm_hwm_kb() -> int | None:
    """This process's peak RSS from /proc (Linux), else None.

    Preferred over `ru_maxrss`, which Linux carries over from the parent across fork + exec
    (`exec` records the old address space's peak), so a small child would report at least the
    benchmark parent's peak. VmHWM belongs to the child's own address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _child(name: str, corpus: str, max_bytes: int | None) -> int:
    _label, fn, prepare, takes_max = VARIANTS[name]
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {}
    if prepare is not None:
        prepare()
    if takes_max:
        kwargs["_cut"] = lines_within(corpus, max_bytes)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = fn(corpus, **kwargs)
    seconds = time.perf_counter() - t1
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    own = _vm_hwm_kb() or ru_self
    print(json.dumps({"variant": name, "seconds": seconds, "setup_seconds": setup, "result": result, "rss_self_kb": own, "ru_maxrss_self_kb": ru_self, "rss_children_kb": kids}))
    return 0


def run_child(name: str, corpus: Path, max_bytes: int | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--corpus", str(corpus)]
    if max_bytes is not None:
        cmd += ["--max-bytes", str(max_bytes)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"variant {name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = wall
    return out


# -- parent -----------------------------------------------------------------------------------
def _warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def _summarise(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    result = runs[0]["result"]
    seconds = statistics.median(r["seconds"] for r in runs)
    nbytes = result["bytes"]
    s = {
        "variant": name,
        "label": VARIANTS[name][0],
        "runs": [{k: r[k] for k in ("seconds", "setup_seconds", "process_seconds", "rss_self_kb", "rss_children_kb")} for r in runs],
        "seconds": seconds,
        "setup_seconds": statistics.median(r["setup_seconds"] for r in runs),
        "process_seconds": statistics.median(r["process_seconds"] for r in runs),
        "bytes": nbytes,
        "records": result["records"],
        "mb_per_s": nbytes / MB / seconds,
        "records_per_s": result["records"] / seconds,
        "rss_mb": max(r["rss_self_kb"] for r in runs) / 1024,
        "rss_children_mb": max(r["rss_children_kb"] for r in runs) / 1024,
        "result": result,
    }
    if "tokens" in result:
        s["tokens_per_s"] = result["tokens"] / seconds
    return s


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'variant':40} {'MB':>7} {'median s':>9} {'MB/s':>8} {'records/s':>10} {'Mtok/s':>7} {'peak RSS MB':>12} {'setup s':>8} {'proc s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        rss = f"{r['rss_mb']:.0f}"
        if r["variant"] == "fh2":
            rss = f"{r['rss_mb']:.0f} +{r['rss_children_mb']:.0f}/wkr"
        tok = f"{r['tokens_per_s'] / 1e6:.2f}" if "tokens_per_s" in r else ""
        lines.append(
            f"{r['label']:40} {r['bytes'] / MB:7.1f} {r['seconds']:9.2f} {r['mb_per_s']:8.1f} {r['records_per_s']:10,.0f} {tok:>7} {rss:>12} {r['setup_seconds']:8.2f} {r['process_seconds']:7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", help="JSONL corpus (default: the generated one for --mb, created if missing)")
    ap.add_argument("--mb", type=float, default=120, help="size of the generated corpus in MB (default 120)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per variant; the median is kept (default 3)")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    ap.add_argument("--cookbook-mb", type=float, default=0, help="run the cookbook-style checker on the first N MB only (default 0: the whole corpus)")
    ap.add_argument("--rss-check", dest="rss_check", action="store_true", default=True, help="also run fh.validate on a corpus twice as big to compare peak RSS (default)")
    ap.add_argument("--no-rss-check", dest="rss_check", action="store_false")
    ap.add_argument("--rss-mb", type=float, default=None, help="size of the RSS-check corpus (default 2 x --mb)")
    ap.add_argument("--json", default=str(CACHE_DIR / "validate_bench.json"), help="where to write the results as JSON")
    # internal: run one variant in this process and print its result
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--max-bytes", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        return _child(args.child, args.corpus, args.max_bytes)

    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    make_corpus = _load_make_corpus()
    started = time.perf_counter()
    if args.corpus:
        corpus = Path(args.corpus).expanduser()
    else:
        t = time.perf_counter()
        corpus = make_corpus.ensure_corpus(None, args.mb, quiet=False)
        print(f"corpus ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    size = corpus.stat().st_size
    cookbook_max = int(args.cookbook_mb * MB) if args.cookbook_mb and args.cookbook_mb * MB < size else None
    _warm(corpus)

    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rep in range(args.repeat):
        for name in names:
            r = run_child(name, corpus, cookbook_max if VARIANTS[name][3] else None)
            runs[name].append(r)
            print(f"[{rep + 1}/{args.repeat}] {name:22} {r['seconds']:7.2f} s  (process {r['process_seconds']:.2f} s, RSS {r['rss_self_kb'] / 1024:.0f} MB)", file=sys.stderr)
    rows = [_summarise(n, runs[n]) for n in names]
    by = {r["variant"]: r for r in rows}

    print()
    print(f"corpus: {corpus} ({size / MB:.1f} MB, {by[names[0]]['records']:,} records); {args.repeat} runs each, median; "
          f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(_table(rows))
    if "cookbook" in by and cookbook_max is not None:
        print(f"(d. ran on the first {by['cookbook']['bytes'] / MB:.1f} MB only, as the notebook holds the whole file in memory and is slow; its MB/s and RSS are for that part)")

    # consistency of counts
    checks: dict[str, Any] = {}
    full = [r for r in rows if r["bytes"] == size]
    checks["same_record_count"] = len({r["records"] for r in full}) <= 1
    if "floor" in by and "fh1" in by:
        f = by["floor"]["result"]
        expected = f["tokens"] + 4 * f["messages"] + 3 * f["records"]
        checks["fh_tokens_match_floor"] = by["fh1"]["result"]["tokens"] == expected
        if "fh2" in by:
            checks["fh2_tokens_match_fh1"] = by["fh2"]["result"]["tokens"] == by["fh1"]["result"]["tokens"]
    if "floor" in by and "floor-tiktoken" in by:
        checks["toktok_matches_tiktoken"] = by["floor"]["result"]["tokens"] == by["floor-tiktoken"]["result"]["tokens"]
    print("\ncount checks: " + ", ".join(f"{k}={'ok' if v else 'MISMATCH'}" for k, v in checks.items()))

    # ratios and targets
    ratios: dict[str, Any] = {}
    print()
    if "fh1" in by and "floor" in by:
        v = by["fh1"]["mb_per_s"] / by["floor"]["mb_per_s"]
        ratios["fh1_vs_floor"] = {"value": v, "target": TARGET_FH_VS_FLOOR, "met": v >= TARGET_FH_VS_FLOOR}
        print(f"fh.validate (1 proc) / floor           = {v:5.2f}x   target >= {TARGET_FH_VS_FLOOR}: {'MET' if v >= TARGET_FH_VS_FLOOR else 'NOT MET'}")
    if "fh1" in by and "cookbook" in by:
        v = by["fh1"]["mb_per_s"] / by["cookbook"]["mb_per_s"]
        ratios["fh1_vs_cookbook"] = {"value": v, "target": TARGET_FH_VS_COOKBOOK, "met": v >= TARGET_FH_VS_COOKBOOK}
        print(f"fh.validate (1 proc) / straightforward = {v:5.2f}x   target >= {TARGET_FH_VS_COOKBOOK}: {'MET' if v >= TARGET_FH_VS_COOKBOOK else 'NOT MET'}")
    if "fh1" in by and "fh2" in by:
        v = by["fh2"]["mb_per_s"] / by["fh1"]["mb_per_s"]
        ratios["fh2_vs_fh1"] = {"value": v}
        print(f"fh.validate 2 procs / 1 proc speed-up  = {v:5.2f}x   (machine has {os.cpu_count()} CPUs)")
    if "floor" in by and "floor-tiktoken" in by:
        v = by["floor"]["mb_per_s"] / by["floor-tiktoken"]["mb_per_s"]
        ratios["floor_vs_tiktoken_floor"] = {"value": v}
        print(f"floor (fh's counter) / tiktoken floor  = {v:5.2f}x")

    rss_check = None
    if args.rss_check and "fh1" in by:
        big_mb = args.rss_mb or 2 * size / MB
        t = time.perf_counter()
        big = make_corpus.ensure_corpus(None, round(big_mb), quiet=False)
        print(f"\nRSS check: corpus {big} ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        _warm(big)
        r = run_child("fh1", big)
        rss_check = {
            "corpus": str(big),
            "bytes": r["result"]["bytes"],
            "records": r["result"]["records"],
            "seconds": r["seconds"],
            "mb_per_s": r["result"]["bytes"] / MB / r["seconds"],
            "rss_mb": r["rss_self_kb"] / 1024,
            "base_rss_mb": by["fh1"]["rss_mb"],
        }
        growth = rss_check["rss_mb"] - rss_check["base_rss_mb"]
        rss_check["growth_mb"] = growth
        print(f"RSS check: fh.validate (1 proc) peak RSS {by['fh1']['rss_mb']:.0f} MB on {size / MB:.0f} MB -> "
              f"{rss_check['rss_mb']:.0f} MB on {rss_check['bytes'] / MB:.0f} MB ({growth:+.0f} MB for "
              f"{rss_check['records'] - by['fh1']['records']:+,} records; {rss_check['mb_per_s']:.1f} MB/s)")

    total = time.perf_counter() - started
    print(f"\ntotal benchmark time {total:.0f} s")
    out = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "corpus": {"path": str(corpus), "bytes": size},
        "repeat": args.repeat,
        "cookbook_max_bytes": cookbook_max,
        "variants": rows,
        "checks": checks,
        "ratios": ratios,
        "rss_check": rss_check,
        "total_seconds": total,
    }
    json_path = Path(args.json).expanduser()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=2))
    print(f"results written to {json_path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # benchmark the checkout this file belongs to
    raise SystemExit(main())
