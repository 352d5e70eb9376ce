"""The main job until the local backend lands: validate, convert and report on the sample files.

Run with `make demo` (or `python examples/demo.py [OUT_DIR]`). Nothing leaves this machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import finetune_hub as fh

DATA = Path(__file__).resolve().parent / "data"


def show(title: str, report: fh.ValidationReport) -> None:
    print(f"\n=== {title}")
    print(report)


def main(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)

    # 1. A chat file for OpenAI: valid, with exact token statistics and the cost driver.
    report = fh.validate(DATA / "chat_gozaru.jsonl", provider="openai", base_model="gpt-4.1-mini", hyperparameters={"epochs": 3})
    show("chat_gozaru.jsonl on OpenAI gpt-4.1-mini", report)

    # 2. A legacy prompt/completion file: current OpenAI models take chat, so convert it.
    legacy = DATA / "prompt_completion_ja.jsonl"
    show("prompt_completion_ja.jsonl on OpenAI gpt-4.1-mini (wrong shape)", fh.validate(legacy, provider="openai", base_model="gpt-4.1-mini"))
    chat = out_dir / "prompt_completion_as_chat.jsonl"
    print("\n" + str(fh.convert(legacy, chat, to="chat", system_prompt="あなたはfinetune_hubの案内役です。")))
    show("converted file on OpenAI gpt-4.1-mini", fh.validate(chat, provider="openai", base_model="gpt-4.1-mini"))

    # 3. An instruction data set (dolly style) -> prompt/completion for Bedrock Titan Text Lite.
    dolly_pc = out_dir / "dolly_prompt_completion.jsonl"
    print("\n" + str(fh.convert(DATA / "dolly_ja_sample.jsonl", dolly_pc, to="prompt_completion", max_chars=2000)))
    show(
        "dolly recipe output on Bedrock Titan Text Lite, batch_size=8 (a batch size the console accepts)",
        fh.validate(dolly_pc, provider="bedrock", base_model="amazon.titan-text-lite-v1", hyperparameters={"epochs": 2, "batch_size": 8}),
    )

    # 4. The same chat data for Vertex AI Gemini, and RLHF preference data for the PaLM-era pipeline.
    gemini = out_dir / "chat_gozaru_gemini.jsonl"
    print("\n" + str(fh.convert(DATA / "chat_gozaru.jsonl", gemini, to="gemini")))
    show("converted file on Vertex AI gemini-2.5-flash", fh.validate(gemini, provider="vertex", base_model="gemini-2.5-flash"))
    show(
        "vertex_rlhf_preferences.jsonl on Vertex AI text-bison@002 (RLHF)",
        fh.validate(DATA / "vertex_rlhf_preferences.jsonl", provider="vertex", base_model="text-bison@002", method="rlhf"),
    )

    # 5. A broken copy of the chat file: every planted problem is found with its line number.
    broken = out_dir / "chat_gozaru_broken.jsonl"
    lines = (DATA / "chat_gozaru.jsonl").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:40]  # line 3: cut short
    record = json.loads(lines[5])
    record["messages"][1]["content"] += " <|endoftext|>"  # line 6: a special token
    lines[5] = json.dumps(record, ensure_ascii=False)
    lines[8] = lines[0]  # line 9: duplicate of line 1
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken_report = fh.validate(broken, provider="azure-openai", base_model="gpt-4.1-mini", suffix="gozaru.v1")
    show("broken copy on Azure OpenAI gpt-4.1-mini with suffix 'gozaru.v1'", broken_report)

    found = {(i.line, i.code) for i in broken_report.issues()}
    planted = {(3, "invalid_json"), (6, "forbidden_string"), (9, "duplicate_record"), (None, "invalid_suffix")}
    missed = planted - found
    print(f"\nplanted problems found: {len(planted) - len(missed)} of {len(planted)}; outputs in {out_dir}")
    return 1 if missed or not report.ok else 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="finetune_hub_demo_"))
    sys.exit(main(target))
