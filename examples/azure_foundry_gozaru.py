"""Azure AI Foundry: teach a catalog model to end every answer in "ござる", then check that the
tuning took before the deployment's hours add up.

The flow a tsuzumi user asked for, on a model that can be fine-tuned today (Phi-4-mini-instruct
in a hub-based project; tsuzumi-7b was retired on 2026-08-31):

1. split the chat data into training and validation files;
2. show that tsuzumi2 refuses a learning rate before anything is uploaded;
3. submit, wait (about an hour on Azure), print the events and the last loss;
4. state the hourly cost of a serverless endpoint (refused without `confirm_cost=True`);
5. deploy the tuned model and its base model, ask both the held-out prompts, print the
   before/after table (share of answers ending in ござる) and delete both endpoints.

Needs AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_ML_WORKSPACE (a hub-based project in a
region that fine-tunes Phi-4-mini-instruct) and an Azure login. In the test suite it runs
against finetune_hub.testing's FakeAzureFoundry (`options=fake.options`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import finetune_hub as fh
from finetune_hub.jobs.evaluation import EvalTable, ends_with, evaluate
from finetune_hub.jobs.model import TunedModel

DATA = Path(__file__).resolve().parent / "data" / "chat_gozaru.jsonl"
BASE_MODEL = "Phi-4-mini-instruct"
BASE_ID = f"azureml://registries/azureml/models/{BASE_MODEL}"  # a catalog model's endpoint id
PHRASE = "ござる"
HELD_OUT = [  # not in the training data
    "日本の首都はどこ?",
    "りんごは何色?",
    "一年は何日ある?",
    "水は何度で沸騰する?",
    "猫はどんな動物?",
]


def main(
    options: dict[str, Any] | None = None,
    store: fh.JobStore | None = None,
    poll_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> EvalTable:
    workdir = Path(tempfile.mkdtemp(prefix="gozaru-"))
    train, validation = workdir / "train.jsonl", workdir / "validation.jsonl"
    fh.split(DATA, train, validation, validation_size=4, seed=7)

    # tsuzumi takes only the batch size and the number of epochs: refused here, nothing uploaded.
    refused = fh.TuningJob(
        provider="azure-foundry",
        base_model="tsuzumi2",
        training_file=train,
        validation_file=validation,
        hyperparameters={"epochs": 3, "learning_rate": 2e-5},
        options=options,
        store=store,
    ).validate()
    for issue in refused.errors:
        print("tsuzumi2:", issue.message)

    job = fh.TuningJob(
        provider="azure-foundry",
        base_model=BASE_MODEL,
        training_file=train,
        validation_file=validation,
        hyperparameters={"epochs": 3, "batch_size": 1, "learning_rate": 2e-5},
        suffix="gozaru",
        options=options,
        store=store,
    )
    if sleep is not None:
        job.sleep = sleep
    job.submit()
    print(f"job {job.id} -> {job.provider_job_id}")
    model = job.wait(poll_interval=poll_interval, progress=False)
    for event in job.events():
        print(f"  {event.created_at:%H:%M} {event.message}")
    losses = [p for p in job.metrics() if p.train_loss is not None]
    if losses:
        print(f"  last training loss {losses[-1].train_loss:.3f} at step {losses[-1].step}")

    try:
        model.deploy()
    except fh.CostConfirmationRequired as exc:
        print(exc)  # the hourly cost, stated; nothing was deployed

    base = TunedModel(job, BASE_ID)
    with (
        model.deploy(confirm_cost=True, delete_on_exit=True) as tuned_endpoint,
        base.deploy(
            confirm_cost=True, name=f"{tuned_endpoint.name}-base", delete_on_exit=True
        ) as base_endpoint,
    ):
        tuned_endpoint.wait_ready(poll_interval=poll_interval)
        base_endpoint.wait_ready(poll_interval=poll_interval)
        table = evaluate(
            tuned_endpoint.chat,
            HELD_OUT,
            scorer=ends_with(PHRASE),
            base=base_endpoint.chat,
            max_tokens=64,
        )
        print(table)
        if (table.tuned_rate or 0) <= (table.base_rate or 0):
            print("the tuning did not take: the endpoints are deleted now, before they bill more")
    print(f"endpoints {tuned_endpoint.name}, {base_endpoint.name}: {tuned_endpoint.status}")
    return table


if __name__ == "__main__":
    main()
