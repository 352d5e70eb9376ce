"""Amazon Bedrock, Titan Text Lite: a dolly-style instruction data set through the conversion
recipe, the 10,000 / 1,000 record caps and the 4,096-token limit, upload to S3, a customization
job, its metrics, Provisioned Throughput with its cost shown, one chat, and teardown.

Needs AWS credentials (boto3's usual chain), and options `role_arn` (the IAM role Bedrock assumes;
see docs/providers/bedrock.md) and `s3_uri` (s3://bucket/prefix/). In the test suite it runs
against finetune_hub.testing's moto-based fake (`fake_bedrock` fixture).

    python examples/bedrock_titan_dolly.py arn:aws:iam::123456789012:role/bedrock-ft s3://my-bucket/ft/
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
MODEL = "amazon.titan-text-lite-v1:0:4k"
CHARS_PER_TOKEN = 6  # AWS plans Titan data with ~6 characters per token


def main(
    work: Path,
    options: dict[str, Any],
    store: fh.JobStore | None = None,
    poll_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    # 1. dolly {"instruction", "input", "output"} -> Titan's {"prompt", "completion"} (the recipe),
    #    skipping records over the 4,096-token limit (never cutting them)
    converted = work / "dolly_pc.jsonl"
    print(
        fh.convert(
            DATA / "dolly_ja_sample.jsonl",
            converted,
            to="prompt_completion",
            max_chars=4096 * CHARS_PER_TOKEN,
        )
    )

    # 2. training / validation split within Titan's caps (10,000 training, 1,000 validation records)
    train, valid = work / "train.jsonl", work / "valid.jsonl"
    print(
        fh.split(
            converted, train, valid, validation_size=0.25, provider="bedrock", base_model=MODEL
        )
    )

    # 3. the job: validated (data, token budget for the batch size, hyperparameters, role, S3) before
    #    anything is uploaded
    job = fh.TuningJob(
        provider="bedrock",
        base_model=MODEL,
        training_file=train,
        validation_file=valid,
        hyperparameters={"epochs": 2, "batch_size": 1, "learning_rate": 0.00001},
        suffix="dolly-ja",
        options=options,
        store=store,
    )
    if sleep is not None:
        job.sleep = sleep
    print(job.validate().summary())
    job.submit()
    print(f"submitted {job.id} as {job.provider_job_id}")
    model = job.wait(poll_interval=poll_interval, progress=False)
    print(f"custom model: {model.id}")
    for point in job.metrics()[-3:]:
        print(f"  step {point.step}: train loss {point.train_loss} valid loss {point.valid_loss}")

    # 4. a custom Titan model answers only through Provisioned Throughput, billed by the hour:
    #    its cost is stated first, and nothing is bought without confirm_cost=True
    pt_options = {"model_units": 1}  # no commitment: deletable at any time
    print(f"cost: {model.deployment_cost('provisioned-throughput', **pt_options).note}")
    try:
        model.deploy("provisioned-throughput", **pt_options)
    except fh.CostConfirmationRequired as exc:
        print(f"refused without confirm_cost: {exc}")
    deployment = model.deploy("provisioned-throughput", confirm_cost=True, **pt_options)
    try:
        status = deployment.wait_ready(poll_interval=poll_interval)
        print(f"provisioned throughput {deployment.name}: {status.value}")
        reply = deployment.chat([{"role": "user", "content": "日本で一番長い川は何ですか?"}])
        print(f"reply: {reply}")
    finally:
        # 5. teardown: the PT first (it bills by the hour), then the custom model (storage fee)
        deployment.delete()
        model.delete()
        print("deleted the provisioned throughput and the custom model")
    return model.id


if __name__ == "__main__":
    role, s3_uri = sys.argv[1], sys.argv[2]
    main(Path(tempfile.mkdtemp()), {"role_arn": role, "s3_uri": s3_uri}, sleep=time.sleep)
