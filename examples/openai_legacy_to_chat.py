"""An OpenAI user with a legacy prompt/completion file: validate, learn it must be chat for current
models, convert, submit, wait, list statuses, and chat with the tuned model.

Needs OPENAI_API_KEY (and OPENAI_BASE_URL for a proxy or the fake). In the test suite it runs
against finetune_hub.testing's fake OpenAI server.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import finetune_hub as fh

DATA = Path(__file__).resolve().parent / "data"
MODEL = "gpt-4.1-mini-2025-04-14"


def main(work: Path, store: fh.JobStore | None = None, poll_interval: float = 10.0) -> str:
    legacy = DATA / "prompt_completion_ja.jsonl"

    report = fh.validate(legacy, provider="openai", base_model=MODEL)
    print(report.summary())
    for issue in report.errors:
        print("  ", issue)  # unsupported_format: current models take chat records

    chat_file = work / "train_chat.jsonl"
    print(fh.convert(legacy, chat_file, to="chat", system_prompt="あなたはfinetune_hubの案内役です。"))

    job = fh.TuningJob(
        provider="openai",
        base_model=MODEL,
        training_file=chat_file,
        hyperparameters={"epochs": 3},
        suffix="hub-guide",
        store=store,
    )
    print(job.validate().summary())
    job.submit()
    print(f"submitted {job.id} as {job.provider_job_id}: {job.status.value}")

    model = job.wait(poll_interval=poll_interval, progress=False)
    print(f"tuned model: {model.id}")

    for record in (store or fh.JobStore()).list(provider="openai"):
        print(f"  {record.id}  {record.status.value:10}  {record.fine_tuned_model or ''}")
    for point in job.metrics()[-3:]:
        print(f"  step {point.step}: train loss {point.train_loss}")

    reply = model.chat([{"role": "user", "content": "finetune_hubとは何ですか?"}])
    print(f"reply: {reply}")
    return model.id


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
