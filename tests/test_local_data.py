"""Local backend data: assistant-only loss masks, preference pairs, length-grouped batches."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from finetune_hub.data.formats import DataFormat  # noqa: E402
from finetune_hub.data.neutral import PARSERS, Conversation, Turn  # noqa: E402
from finetune_hub.providers.local.data import (  # noqa: E402
    IGNORE,
    collate_sft,
    encode_preference,
    encode_sft,
    length_grouped_batches,
)
from finetune_hub.providers.local.models import load_tokenizer  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    folder = build_tiny_model(
        tmp_path_factory.mktemp("tiny") / "m", ["Hi there", "Hello! Fine, gozaru!"]
    )
    return load_tokenizer(folder)


def trained_text(tok, example) -> str:
    return tok.decode(
        [i for i, lab in zip(example.input_ids, example.labels, strict=True) if lab != IGNORE]
    )


def test_loss_only_on_assistant_tokens_and_weight_zero_turns_are_context(tok):
    conv = PARSERS[DataFormat.CHAT](
        {
            "messages": [
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Hi there"},
                {"role": "assistant", "content": "Hello!", "weight": 0},
                {"role": "user", "content": "How?"},
                {"role": "assistant", "content": "Fine, gozaru!"},
            ]
        }
    )
    ex = encode_sft(tok, conv, 512)
    assert trained_text(tok, ex) == "Fine, gozaru!<|im_end|>"
    full = tok.decode(ex.input_ids)
    assert "Hello!" in full and "Be kind." in full  # context is still in the input


def test_every_trained_assistant_turn_is_labelled(tok):
    conv = Conversation(
        [Turn("user", "a"), Turn("assistant", "one"), Turn("user", "b"), Turn("assistant", "two")]
    )
    assert trained_text(tok, encode_sft(tok, conv, 512)) == "one<|im_end|>two<|im_end|>"


def test_prompt_completion_trains_on_the_completion(tok):
    conv = PARSERS[DataFormat.PROMPT_COMPLETION](
        {"prompt": "what is one plus one?", "completion": "two"}
    )
    ex = encode_sft(tok, conv, 512)
    assert trained_text(tok, ex) == "two<|im_end|>"
    assert ex.labels[0] == IGNORE


def test_truncation_and_nothing_left_to_train(tok):
    conv = Conversation([Turn("user", "hello world " * 40), Turn("assistant", "yes")])
    assert encode_sft(tok, conv, 16) is None  # the answer was cut off
    ex = encode_sft(
        tok, Conversation([Turn("user", "hi"), Turn("assistant", "hello world " * 40)]), 32
    )
    assert len(ex) == 32 and ex.trained_tokens > 0


@pytest.mark.parametrize(
    ("fmt", "record"),
    [
        (
            DataFormat.PREFERENCE,
            {
                "input": {"messages": [{"role": "user", "content": "Hi"}]},
                "preferred_output": [{"role": "assistant", "content": "Hello, gozaru!"}],
                "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
            },
        ),
        (
            DataFormat.RLHF_PREFERENCE,
            {
                "input_text": "Hi",
                "candidate_0": "Go away.",
                "candidate_1": "Hello, gozaru!",
                "choice": 1,
            },
        ),
        (
            DataFormat.GEMINI_PREFERENCE,
            {
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "completions": [
                    {
                        "score": 1,
                        "completion": {"role": "model", "parts": [{"text": "Hello, gozaru!"}]},
                    },
                    {"score": 0, "completion": {"role": "model", "parts": [{"text": "Go away."}]}},
                ],
            },
        ),
    ],
)
def test_preference_shapes_become_prompt_chosen_rejected(tok, fmt, record):
    ex = encode_preference(tok, PARSERS[fmt](record), 512)
    assert tok.decode(ex.prompt_ids).endswith("<|im_start|>assistant\n")
    assert tok.decode(ex.chosen_ids) == "Hello, gozaru!<|im_end|>"
    assert tok.decode(ex.rejected_ids) == "Go away.<|im_end|>"


def test_length_grouped_batches_cover_everything_once_deterministically():
    rng = random.Random(1)
    lengths = [rng.randint(5, 300) for _ in range(500)]
    a = length_grouped_batches(lengths, 8, seed=3)
    assert a == length_grouped_batches(lengths, 8, seed=3)
    assert a != length_grouped_batches(lengths, 8, seed=4)
    assert sorted(i for b in a for i in b) == list(range(500))
    assert all(len(b) <= 8 for b in a)

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    shuffled = list(range(500))
    rng.shuffle(shuffled)
    random_batches = [shuffled[i : i + 8] for i in range(0, 500, 8)]
    real = sum(lengths)
    assert padded(a) - real < 0.2 * (padded(random_batches) - real)


def test_collate_pads_per_batch(tok):
    a = encode_sft(tok, Conversation([Turn("user", "hi"), Turn("assistant", "yes")]), 64)
    b = encode_sft(
        tok,
        Conversation([Turn("user", "hello world hello"), Turn("assistant", "one two three")]),
        64,
    )
    batch = collate_sft([a, b], tok.pad_token_id)
    assert batch["input_ids"].shape == (2, max(len(a), len(b)))
    assert int(batch["attention_mask"].sum()) == len(a) + len(b)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()


# -- instruction data with its own column names; evaluation prompts ------------------------------
ITO = [  # the seed's records: {"ID", "text", "output"}
    {"ID": 1, "text": "Name a river in Japan.", "output": "The Shinano, gozaru!"},
    {"ID": 2, "text": "Say hello.", "output": "Hello, gozaru!"},
]


def write_jsonl(path, records):
    import json

    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def test_instruction_records_train_directly_on_the_local_backend(tok, tmp_path):
    from finetune_hub.providers.local.data import build_examples

    path = write_jsonl(tmp_path / "dolly.jsonl", [
        {"instruction": "Say hello.", "input": "", "output": "Hello, gozaru!"},
    ])  # fmt: skip
    (example,) = build_examples(tok, str(path), "sft", 128)
    assert trained_text(tok, example).startswith("Hello, gozaru!")


def test_a_job_reads_its_own_column_names_through_a_mapping(tmp_path):
    import finetune_hub as fh

    path = write_jsonl(tmp_path / "ito.jsonl", ITO)
    plain = fh.validate(path, provider="local", base_model="smollm2-135m-instruct")
    (unknown,) = [i for i in plain.errors if i.code == "unknown_format"]
    assert "mapping={'instruction': 'text'" in unknown.message
    mapping = {"instruction": "text", "output": "output"}
    report = fh.validate(path, "local", "smollm2-135m-instruct", mapping=mapping)
    assert report.ok and report.format is DataFormat.INSTRUCTION
    assert report.stats.training.records == 2 and report.stats.training.path == str(path)
    job = fh.TuningJob(
        provider="local",
        base_model="smollm2-135m-instruct",
        training_file=path,
        mapping=mapping,
        store=fh.JobStore(tmp_path / "home"),
    )
    assert job.spec.mapping == mapping and job.validate().ok
    with pytest.raises(fh.JobSpecError, match="mapping"):
        fh.TuningJob(provider="local", base_model="m", training_file=path, mapping={"a": 1})


def test_a_bad_line_of_a_mapped_file_is_reported_at_its_own_line(tmp_path):
    import finetune_hub as fh

    path = tmp_path / "ito.jsonl"
    path.write_text(write_jsonl(tmp_path / "a.jsonl", ITO).read_text() + "{not json\n")
    report = fh.validate(path, "local", "smollm2-135m-instruct", mapping={"instruction": "text"})
    (bad,) = report.errors
    assert bad.line == 3 and bad.file == str(path)


def test_the_uploaded_file_is_the_mapped_one(tmp_path, monkeypatch):
    import json

    import finetune_hub as fh
    from finetune_hub.providers.local import LocalBackend

    monkeypatch.setattr(LocalBackend, "_start", lambda self, run: None)  # a run, no worker
    monkeypatch.setattr(LocalBackend, "check", lambda self, job: [])
    job = fh.TuningJob(
        provider="local",
        base_model="smollm2-135m-instruct",
        training_file=write_jsonl(tmp_path / "ito.jsonl", ITO),
        mapping={"instruction": "text"},
        options={"output_dir": str(tmp_path / "runs")},
        store=fh.JobStore(tmp_path / "home"),
    ).submit()
    from finetune_hub.providers.local.runner import RunDir

    sent = RunDir(job.provider_job_id).job()["spec"]["training_file"]
    records = [json.loads(line) for line in Path(sent).read_text().splitlines()]
    assert records[0] == {
        "ID": 1,
        "output": "The Shinano, gozaru!",
        "instruction": "Name a river in Japan.",
    }


@pytest.mark.parametrize(
    "record",
    [
        {"task_id": 0, "input": "Summarise the text."},
        {"task_id": 1, "input": "Q?", "output": "reference", "eval_aspect": "accuracy"},
        {"input": "A bare prompt."},
        {"prompt": "Another bare prompt."},
    ],
)
def test_evaluation_prompts_are_detected_as_prompts_not_pretraining_text(tmp_path, record):
    import finetune_hub as fh

    path = write_jsonl(tmp_path / "tasks.jsonl", [record, record])
    assert fh.detect_format(path) is DataFormat.PROMPTS
    report = fh.validate(path, provider="local", base_model="smollm2-135m-instruct")
    (error,) = report.errors
    assert error.code == "unsupported_format" and "fh.evaluate(model" in error.message


def test_bedrock_still_reads_bare_input_records_as_continued_pretraining(tmp_path):
    import finetune_hub as fh

    path = write_jsonl(tmp_path / "cpt.jsonl", [{"input": "Unlabelled text."}] * 2)
    report = fh.validate(path, "bedrock", "amazon.titan-text-lite-v1", "continued-pretraining")
    assert report.format is DataFormat.CONTINUED_PRETRAINING and report.ok
