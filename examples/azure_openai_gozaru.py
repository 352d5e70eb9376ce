"""An Azure OpenAI job on the "ござる" style data: validate (Azure's suffix rule), submit, wait,
deploy (the hourly cost is stated and must be confirmed), chat, and delete the deployment.

Needs AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY (or an Entra ID login), and for the deployment
AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_OPENAI_ACCOUNT. In the test suite it runs
against finetune_hub.testing's fake Azure OpenAI server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import finetune_hub as fh

DATA = Path(__file__).resolve().parent / "data"


def main(store: fh.JobStore | None = None, options: dict[str, Any] | None = None, poll_interval: float = 10.0) -> str:
    job = fh.TuningJob(
        provider="azure-openai",
        base_model="gpt-4.1-mini-2025-04-14",
        training_file=DATA / "chat_gozaru.jsonl",
        hyperparameters={"epochs": 2, "batch_size": 4},
        suffix="gozaru.v1",  # Azure: at most 18 characters and no dots
        options=options,
        store=store,
    )
    report = job.validate()
    print(report.summary())
    for issue in report.errors:
        print("  ", issue)

    job.spec = job.spec.model_copy(update={"suffix": "gozaru-v1"})
    job.submit()
    model = job.wait(poll_interval=poll_interval, progress=False)
    print(f"tuned model: {model.id}")

    try:
        model.deploy()
    except fh.CostConfirmationRequired as exc:
        print(exc)  # states the hourly cost; nothing was deployed

    with model.deploy(confirm_cost=True, sku="standard", delete_on_exit=True) as deployment:
        print(f"deployment {deployment.name}: {deployment.wait_ready(poll_interval=poll_interval)}")
        print("reply:", deployment.chat([{"role": "user", "content": "富士山の高さは?"}]))
    print(f"deployment {deployment.name}: {deployment.status}")
    return model.id


if __name__ == "__main__":
    main()
