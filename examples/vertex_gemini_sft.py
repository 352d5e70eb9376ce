"""Google Vertex AI, Gemini supervised tuning from chat data: the chat file itself is the training
file (converted losslessly to Gemini contents before upload; the report says so), uploaded to
Cloud Storage, one tuning job (found, never repeated, on a retried submit), its milestones, and
a chat with the tuned model on its endpoint.

Needs a Google Cloud project with Vertex AI, credentials (google-auth's default chain, or pass
`credentials`), and a Cloud Storage prefix for the data. In the test suite it runs against
finetune_hub.testing's FakeVertex (`fake_vertex` fixture).

    python examples/vertex_gemini_sft.py my-project gs://my-bucket/finetune-hub
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
MODEL = "gemini-2.5-flash"


def main(
    work: Path,
    options: dict[str, Any],
    store: fh.JobStore | None = None,
    poll_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    # 1. the job, on the chat file itself: Gemini takes `contents` records, so the chat messages
    #    are converted before upload (system -> systemInstruction, assistant -> model) when
    #    nothing is lost, and checked against Gemini's rules (roles, tokens, adapter sizes) as
    #    converted; a file that would lose something (tool calls, weights) is refused with why
    job = fh.TuningJob(
        provider="vertex",
        base_model=MODEL,
        training_file=DATA / "chat_gozaru.jsonl",
        hyperparameters={"epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.0},
        suffix="gozaru",
        options=options,
        store=store,
    )
    if sleep is not None:
        job.sleep = sleep
    report = job.validate()
    print(report)
    for issue in report.issues("converted_before_upload"):
        print(issue.message)  # "... converted before upload (chat -> gemini, lossless) ..."
    job.submit()  # uploads to {gcs_uri}/{job id}/training.jsonl, creates one tuning job
    print(f"submitted {job.id}: {job.provider_job_id}")

    model = job.wait(poll_interval=poll_interval, progress=False)
    for event in job.events():
        print(f"  {event.message}")
    print(f"tuned model: {model.id}")

    # 2. a tuned Gemini model answers on its own endpoint, billed per token: no deployment
    reply = model.chat([{"role": "user", "content": "空が青いのはなぜ?"}])
    print(f"reply: {reply}")
    return reply


if __name__ == "__main__":
    project, gcs_uri = sys.argv[1], sys.argv[2]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp), {"project": project, "location": "us-central1", "gcs_uri": gcs_uri})
    print(f"done in {time.monotonic() - started:.0f} s")
