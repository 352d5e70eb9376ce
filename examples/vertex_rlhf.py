"""Google Vertex AI, tuning with human feedback from three data sets: prompts
(`{"input_text"}`), human preferences (`{"input_text", "candidate_0", "candidate_1", "choice"}`)
and an optional evaluation set, run both ways.

1. Today's way: the preferences become Gemini preference data in one call, and gemini-2.5-flash
   is preference-tuned (PaLM, which the original RLHF flow tuned, can no longer be tuned).
2. The RLHF pipeline where it still runs (Google's `rlhf-train-template`, a Vertex AI
   PipelineJob, here on t5-small): reward-model and reinforcement-learning steps and
   learning-rate multipliers, the KL coefficient, the machine cost stated before anything starts
   (8 x A100 80GB in us-central1) and confirmed, the two phases as events, then the output model
   deployed to an endpoint with its cost confirmed, one chat, and teardown.

Needs a Google Cloud project with Vertex AI, credentials, and a Cloud Storage prefix. In the test
suite it runs against finetune_hub.testing's FakeVertex (with a stand-in template in its
Cloud Storage; pass `rlhf_template` to point elsewhere).

    python examples/vertex_rlhf.py my-project gs://my-bucket/finetune-hub
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import finetune_hub as fh
from finetune_hub.providers.vertex_rlhf import preference_to_gemini

DATA = Path(__file__).resolve().parent / "data"
PROMPTS = DATA / "vertex_rlhf_prompts.jsonl"
PREFERENCES = DATA / "vertex_rlhf_preferences.jsonl"


def gemini_way(work: Path, options: dict[str, Any], store: Any, sleep: Any, poll: float) -> str:
    prefs = work / "gemini_preferences.jsonl"
    print(preference_to_gemini(PREFERENCES, prefs))  # candidate_{choice} -> score 1
    job = fh.TuningJob(
        provider="vertex",
        base_model="gemini-2.5-flash",
        method="dpo",
        training_file=prefs,
        hyperparameters={"epochs": 2, "beta": 0.1},
        suffix="taglines-dpo",
        options=options,
        store=store,
    )
    if sleep is not None:
        job.sleep = sleep
    job.submit()
    model = job.wait(poll_interval=poll, progress=False)
    reply = model.chat([{"role": "user", "content": "Write a tagline for a bakery."}])
    print(f"Gemini preference-tuned: {model.id}: {reply}")
    return reply


def pipeline_way(work: Path, options: dict[str, Any], store: Any, sleep: Any, poll: float) -> str:
    def rlhf_job(confirm_cost: bool) -> fh.TuningJob:
        job = fh.TuningJob(
            provider="vertex",
            base_model="t5-small",
            method="rlhf",
            training_file=PREFERENCES,  # the preference data set (the reward model's)
            datasets={"prompt": PROMPTS},  # and "eval": ... when there is one
            hyperparameters={
                "reward_model_train_steps": 20,
                "reward_model_learning_rate_multiplier": 1.0,
                "reinforcement_learning_train_steps": 40,
                "reinforcement_learning_rate_multiplier": 1.0,
                "kl_coeff": 0.1,
            },
            suffix="taglines-rlhf",
            options={
                **options,
                "instruction": "Answer in one short line.",
                "confirm_cost": confirm_cost,
            },
            store=store,
        )
        if sleep is not None:
            job.sleep = sleep
        return job

    # the machines and their hourly price, before anything starts; submit() refuses without a yes
    for issue in rlhf_job(confirm_cost=False).validate().errors:
        if issue.code == "cost_confirmation_required":
            print(f"cost: {issue.message}")
    job = rlhf_job(confirm_cost=True)  # the yes, after reading the cost
    job.submit()
    model = job.wait(poll_interval=poll, progress=False)
    for event in job.events():
        if event.type == "phase":
            print(f"  {event.message}")

    print(model.deployment_cost(machine_type="g2-standard-12").sentence("the endpoint"))
    with model.deploy(confirm_cost=True, delete_on_exit=True) as deployment:
        deployment.wait_ready(poll_interval=poll)
        reply = deployment.chat([{"role": "user", "content": "A tagline for a tea shop?"}])
        print(f"RLHF-tuned {model.id}: {reply}")
    model.delete()
    return reply


def main(
    work: Path,
    options: dict[str, Any],
    store: fh.JobStore | None = None,
    poll_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> list[str]:
    return [
        gemini_way(work, options, store, sleep, poll_interval),
        pipeline_way(work, options, store, sleep, poll_interval),
    ]


if __name__ == "__main__":
    project, gcs_uri = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp), {"project": project, "location": "us-central1", "gcs_uri": gcs_uri})
