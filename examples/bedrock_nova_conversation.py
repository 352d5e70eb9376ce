"""Amazon Bedrock, Nova Lite on the conversation format (bedrock-conversation-2024): convert an
OpenAI-style chat file, validate (roles, Nova's reserved words), tune, read the metrics, try the
model through an on-demand custom model deployment (billed per token, no hourly fee), and tear
down.

Needs AWS credentials, and options `role_arn` and `s3_uri` (see docs/providers/bedrock.md).
In the test suite it runs against finetune_hub.testing's moto-based fake.

    python examples/bedrock_nova_conversation.py arn:aws:iam::123456789012:role/bedrock-ft s3://my-bucket/ft/
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import finetune_hub as fh

DATA = Path(__file__).resolve().parent / "data"
MODEL = "amazon.nova-lite-v1:0:300k"


def main(
    work: Path,
    options: dict[str, Any],
    store: fh.JobStore | None = None,
    poll_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    conversation = work / "gozaru_bedrock.jsonl"
    print(fh.convert(DATA / "chat_gozaru.jsonl", conversation, to="bedrock_conversation"))
    job = fh.TuningJob(
        provider="bedrock",
        base_model=MODEL,
        training_file=conversation,
        hyperparameters={"epochs": 2, "learning_rate": 0.00001},
        suffix="gozaru",
        options=options,
        store=store,
    )
    if sleep is not None:
        job.sleep = sleep
    print(job.validate().summary())
    job.submit()
    model = job.wait(poll_interval=poll_interval, progress=False)
    print(f"custom model: {model.id}")
    for point in job.metrics()[-2:]:
        print(f"  step {point.step}: train loss {point.train_loss}")

    print(f"cost: {model.deployment_cost('on-demand').note}")
    with model.deploy("on-demand", confirm_cost=True, delete_on_exit=True) as deployment:
        status = deployment.wait_ready(poll_interval=poll_interval)
        print(f"on-demand deployment {deployment.name}: {status.value}")
        print("reply:", deployment.chat([{"role": "user", "content": "自己紹介してください"}]))
    model.delete()
    return model.id


if __name__ == "__main__":
    main(
        Path(tempfile.mkdtemp()), {"role_arn": sys.argv[1], "s3_uri": sys.argv[2]}, sleep=time.sleep
    )
