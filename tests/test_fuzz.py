"""Property-based fuzzing (issue 15, item 9): the reader, the validators and the job-file parser
never raise a traceback on hostile input: always a report, or a `fh.FinetuneHubError` subclass.

The budget is fixed and derandomized (the same examples on every run), so CI time stays small;
hunt longer locally with new examples: `FUZZ_RANDOM=1 FUZZ_EXAMPLES=50 pytest tests/test_fuzz.py`
(50 times the CI budget, random seeds).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import string
import zlib
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import finetune_hub as fh
from finetune_hub.checks.report import ValidationReport
from finetune_hub.data.reader import BOM, JsonlReader
from finetune_hub.errors import FinetuneHubError
from finetune_hub.jobs.spec import JobSpec

SCALE = int(os.environ.get("FUZZ_EXAMPLES", "0")) or 1
FUZZ = settings(
    max_examples=60 * SCALE,
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: One backend per record shape family, and the methods that read the others.
TARGETS = [
    ("openai", "gpt-4.1-mini", "sft"),
    ("openai", "gpt-4.1-mini", "dpo"),
    ("openai", "o4-mini", "rft"),
    ("azure-openai", "gpt-4.1-mini", "sft"),
    ("bedrock", "amazon.titan-text-lite-v1", "sft"),
    ("bedrock", "amazon.titan-text-lite-v1", "continued-pretraining"),
    ("bedrock", "anthropic.claude-3-haiku-20240307-v1", "sft"),
    ("bedrock", "amazon.nova-micro-v1", "sft"),
    ("vertex", "gemini-2.5-flash", "sft"),
    ("vertex", "text-bison@001", "rlhf"),
    ("azure-foundry", "Phi-4-mini-instruct", "sft"),
    ("local", "smollm2-135m-instruct", "sft"),
]

# -- strategies -----------------------------------------------------------------------------------
#: Keys every record format reads, so random records reach deep into the checkers.
KEYS = [
    "messages", "role", "content", "name", "weight", "tool_calls", "tool_call_id", "id",
    "function_call", "function", "arguments", "tools", "functions", "type", "text", "image_url",
    "url", "parameters", "system", "prompt", "completion", "input", "preferred_output",
    "non_preferred_output", "preferred_completion", "non_preferred_completion", "contents",
    "parts", "systemInstruction", "system_instruction", "fileData", "inlineData", "completions",
    "score", "input_text", "candidate_0", "candidate_1", "choice", "schemaVersion", "image",
    "video", "document", "instruction", "output", "response", "metadata", "reference_answer",
]  # fmt: skip
WORDS = [
    "system", "developer", "user", "assistant", "tool", "function", "model", "bot", "",
    "text", "image_url", "https://example.com/a.png", "http://x", "javascript:alert(1)",
    "data:image/png;base64,AAAA", "bedrock-conversation-2024", "{}", '{"a": 1}', "[1]", "nan",
    "<|endoftext|>", "<|im_start|>", "  ", "\u3042\u308a\u304c\u3068\u3046", "\ud83d\ude00"[:1],
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(WORDS)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=24,
)
records = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


@st.composite
def chat_like(draw) -> dict:
    """Records close to a valid chat, preference or Gemini record, with one thing broken."""
    role = st.sampled_from(["system", "user", "assistant", "tool", "model", "bot", 3, None])
    part = st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "audio", 1])},
        optional={"text": values, "image_url": st.fixed_dictionaries({"url": values}) | values},
    )
    call = st.fixed_dictionaries(
        {},
        optional={
            "id": values,
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {}, optional={"name": values, "arguments": values | st.just('{"a": 1}')}
            )
            | values,
        },
    )
    message = st.fixed_dictionaries(
        {"role": role},
        optional={
            "content": st.text(max_size=20) | st.lists(part, max_size=3) | values,
            "tool_calls": st.lists(call, max_size=2) | values,
            "function_call": values,
            "name": values,
            "weight": st.sampled_from([0, 1, 2, True, 0.5, None]),
        },
    )
    messages = st.lists(message, max_size=5)
    tool = st.fixed_dictionaries(
        {"type": st.just("function")},
        optional={
            "function": st.fixed_dictionaries({}, optional={"name": values, "parameters": values})
        },
    )
    shape = draw(st.sampled_from(["chat", "preference", "gemini", "bedrock"]))
    if shape == "chat":
        record = {"messages": draw(messages)}
        if draw(st.booleans()):
            record["tools"] = draw(st.lists(tool, max_size=2) | values)
    elif shape == "preference":
        record = {
            "input": {"messages": draw(messages)},
            "preferred_output": draw(messages),
            "non_preferred_output": draw(messages | values),
        }
    elif shape == "gemini":
        turn = st.fixed_dictionaries(
            {"role": role},
            optional={
                "parts": st.lists(
                    st.dictionaries(st.sampled_from(KEYS), values, max_size=2), max_size=2
                )
                | values
            },
        )
        record = {"contents": draw(st.lists(turn, max_size=4))}
    else:
        block = st.dictionaries(
            st.sampled_from(["text", "image", "video", "document"]), values, max_size=2
        )
        turn = st.fixed_dictionaries(
            {"role": role}, optional={"content": st.lists(block, max_size=2) | values}
        )
        record = {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": draw(st.lists(turn, max_size=4)),
        }
    return record


def encode(record) -> bytes:
    """JSON as people write it, including what JSON forbids (NaN, huge integers)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


lines = st.one_of(
    records.map(encode),
    chat_like().map(encode),
    records.map(lambda r: json.dumps(r).encode()),  # \u escapes, lone surrogates included
    st.binary(max_size=40),
    st.sampled_from([b"", b"  ", b"\r", b"[1]", b'"x"', b"null", b"{", BOM + b"{}", b"\xff\xfe{}"]),
)


@st.composite
def jsonl_files(draw) -> bytes:
    content = b"\n".join(draw(st.lists(lines, max_size=12)))
    if draw(st.booleans()):
        content += b"\n" * draw(st.integers(0, 3))
    return content


def store(path: Path, content: bytes, how: str) -> Path:
    if how == "gzip":
        path = path.with_suffix(".jsonl.gz")
        path.write_bytes(gzip.compress(content))
    elif how == "cut gzip":
        path = path.with_suffix(".jsonl.gz")
        packed = gzip.compress(content)
        path.write_bytes(packed[: max(2, len(packed) // 2)])
    else:
        path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def check_report(report: ValidationReport) -> None:
    assert isinstance(report, ValidationReport)
    json.dumps(report.to_dict())  # serialisable as the CLI prints it
    str(report), report.summary(), report._repr_html_()  # noqa: B018 (rendering must not raise)
    for issue in report.errors + report.warnings:
        assert issue.code and issue.code == issue.code.strip()


# -- the reader -----------------------------------------------------------------------------------
@FUZZ
@given(
    content=jsonl_files() | st.binary(max_size=300),
    how=st.sampled_from(["plain", "gzip", "cut gzip"]),
    max_line_bytes=st.sampled_from([8, 64, 1 << 20]),
    max_blank_run=st.integers(1, 4),
    max_lines=st.none() | st.integers(1, 20),
    max_bytes=st.none() | st.integers(0, 200),
)
def test_reader_never_raises_and_counts_every_line(
    workdir, content, how, max_line_bytes, max_blank_run, max_lines, max_bytes
):
    path = store(workdir / "read.jsonl", content, how)
    issues = []
    reader = JsonlReader(
        path,
        on_issue=issues.append,
        max_line_bytes=max_line_bytes,
        max_blank_run=max_blank_run,
        max_lines=max_lines,
        max_bytes=max_bytes,
    )
    got = list(reader)
    numbers = [line for line, _raw, _record in got]
    assert numbers == sorted(set(numbers))
    assert all(isinstance(record, dict) for _l, _r, record in got)
    assert all(isinstance(issue, fh.Issue) and issue.line for issue in issues)
    stopped = (
        reader.stopped or reader.over_max_bytes or any(i.code == "corrupt_gzip" for i in issues)
    )
    if not stopped:
        expected = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
        assert reader.lines == expected
        assert reader.bytes_read == len(content)
        split = content.split(b"\n")
        for line, raw, _record in got:  # each record is the line it says it is
            assert raw.rstrip(b"\n") in (split[line - 1], split[line - 1].removeprefix(BOM))
    if max_lines is not None:
        assert reader.lines <= max_lines
    if max_bytes is not None and reader.over_max_bytes:
        assert reader.bytes_read > max_bytes


@FUZZ
@given(content=jsonl_files(), cut=st.floats(0, 1), blank_run=st.integers(1, 3))
def test_byte_ranges_see_every_line_once(workdir, content, cut, blank_run):
    path = workdir / "ranges.jsonl"
    path.write_bytes(content)
    whole = [(line, raw) for line, raw, _ in JsonlReader(path, max_blank_run=blank_run)]
    mid = int(len(content) * cut)
    first = JsonlReader(path, end=mid, max_blank_run=blank_run)
    parts = [(line, raw) for line, raw, _ in first]
    second = JsonlReader(path, start=mid, first_line=first.lines + 1, max_blank_run=blank_run)
    parts += [(line, raw) for line, raw, _ in second]
    assert parts == whole


# -- the validators -------------------------------------------------------------------------------
def validate_or_refuse(path, target, **kwargs):
    provider, model, method = target
    try:
        report = fh.validate(path, provider=provider, base_model=model, method=method, **kwargs)
    except FinetuneHubError:
        return None
    check_report(report)
    return report


@FUZZ
@given(
    content=jsonl_files(),
    how=st.sampled_from(["plain", "plain", "gzip", "cut gzip"]),
    target=st.sampled_from(TARGETS),
    data_format=st.none() | st.sampled_from([f.value for f in fh.DataFormat]),
)
def test_validate_gives_a_report_for_any_jsonl_ish_bytes(
    workdir, content, how, target, data_format
):
    path = store(workdir / "train.jsonl", content, how)
    validate_or_refuse(path, target, format=data_format)


@FUZZ
@given(
    batch=st.lists(chat_like() | records, min_size=1, max_size=8),
    target=st.sampled_from(TARGETS),
    data_format=st.none() | st.sampled_from([f.value for f in fh.DataFormat]),
    with_validation=st.booleans(),
)
def test_validate_gives_a_report_for_any_record_shape(
    workdir, batch, target, data_format, with_validation
):
    path = workdir / "shapes.jsonl"
    path.write_bytes(b"".join(encode(r) + b"\n" for r in batch))
    extra = {}
    if with_validation:
        val = workdir / "shapes_val.jsonl"
        val.write_bytes(b"".join(encode(r) + b"\n" for r in batch[::-1]))
        extra["validation_file"] = val
    report = validate_or_refuse(path, target, format=data_format, **extra)
    assume(report is not None)
    readable = sum(1 for r in batch if _is_object(encode(r)))  # NaN, 2**70 are not JSON
    assert report.stats.training.records in (readable, 0) or report.stats.training.path != str(path)


def _is_object(raw: bytes) -> bool:
    try:
        return type(orjson.loads(raw)) is dict
    except orjson.JSONDecodeError:
        return False


HP_NAMES = [
    "epochs",
    "batch_size",
    "learning_rate_multiplier",
    "learning_rate",
    "seed",
    "beta",
    "x",
]


@FUZZ
@given(
    target=st.sampled_from(TARGETS),
    hyperparameters=st.none()
    | st.dictionaries(st.sampled_from(HP_NAMES) | st.text(max_size=6), scalars | values, max_size=4)
    | values,
    suffix=st.none() | st.text(max_size=80) | scalars,
    quotas=st.none()
    | st.dictionaries(st.sampled_from(["max_training_records", "x"]), scalars, max_size=2)
    | values,
    workers=st.sampled_from([1, 2, 0, "2", None]),
    max_issues=st.sampled_from([20, 0, -1, None, 2.5]),
)
def test_validate_arguments_of_any_type_give_a_report_or_a_named_error(
    workdir, target, hyperparameters, suffix, quotas, workers, max_issues
):
    path = workdir / "args.jsonl"
    path.write_bytes(
        encode(
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
        )
        + b"\n"
    )
    provider, model, method = target
    try:
        report = fh.validate(
            path,
            provider=provider,
            base_model=model,
            method=method,
            hyperparameters=hyperparameters,
            suffix=suffix,
            quotas=quotas,
            workers=workers,
            max_issues_per_code=max_issues,
        )
    except FinetuneHubError as exc:
        assert str(exc)
        return
    check_report(report)
    for value in report.hyperparameters.values():  # nothing absurd is ever sent
        text = str(value).lower()
        assert text not in ("nan", "inf", "-inf", "infinity")
        if isinstance(value, float):
            assert math.isfinite(value)


# -- the job-file parser --------------------------------------------------------------------------
JOB_KEYS = [
    "provider", "base_model", "training_file", "validation_file", "method", "hyperparameters",
    "suffix", "format", "options", "datasets", "quotas", "unknown",
]  # fmt: skip


@st.composite
def job_mappings(draw) -> dict:
    provider, model, method = draw(st.sampled_from(TARGETS))
    job = {
        "provider": provider,
        "base_model": model,
        "training_file": "train.jsonl",
        "method": method,
    }
    for key in draw(st.lists(st.sampled_from(JOB_KEYS), max_size=4)):
        job[key] = draw(
            values
            | st.dictionaries(st.sampled_from(HP_NAMES), scalars, max_size=3)
            | st.sampled_from(
                ["chat", "chatml", "train.jsonl", "../x.jsonl", "/dev/zero", "a\x00b"]
            )
        )
    return job


def toml_text(job: dict) -> str:
    """A rough TOML writer: JSON-style scalars and inline tables (some come out invalid TOML,
    which is fine: the parser must say so)."""

    def value(v) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if v is None:
            return '""'
        return json.dumps(v)

    return "".join(f"{json.dumps(str(k))} = {value(v)}\n" for k, v in job.items())


def yaml_text(job: dict) -> str:
    try:
        return yaml.safe_dump(job, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return json.dumps(job, default=str)


def load_or_refuse(path: Path) -> JobSpec | None:
    try:
        spec = JobSpec.from_file(path)
    except FinetuneHubError as exc:
        assert str(exc).startswith(str(path)), str(exc)  # the message names the file
        return None
    repr(spec), str(spec), spec.model_dump_json(), spec.shown()  # noqa: B018
    return spec


@FUZZ
@given(
    text=st.text(alphabet=string.printable + "\u3042{}[]:-#'\"\t\\", max_size=120)
    | st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    suffix=st.sampled_from([".yaml", ".yml", ".toml"]),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-16-le", "latin-1", "utf-8-sig"]),
)
def test_job_files_of_random_text_load_or_name_the_file(workdir, text, suffix, encoding):
    path = workdir / f"random{suffix}"
    path.write_bytes(text.encode(encoding, "replace"))
    load_or_refuse(path)


@FUZZ
@given(job=job_mappings(), suffix=st.sampled_from([".yaml", ".toml"]), mutate=st.integers(0, 3))
def test_job_files_of_random_fields_load_and_validate_or_name_the_problem(
    workdir, job, suffix, mutate
):
    (workdir / "train.jsonl").write_bytes(
        encode(
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
        )
        + b"\n"
    )
    text = toml_text(job) if suffix == ".toml" else yaml_text(job)
    if mutate == 1:
        text = text[: len(text) // 2]
    elif mutate == 2:
        text = text.replace(":", "", 1).replace("=", "", 1)
    path = workdir / f"job{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    spec = load_or_refuse(path)
    if spec is None:
        return
    try:
        report = fh.validate(
            spec.training_file,
            provider=spec.provider,
            base_model=spec.base_model,
            method=spec.method,
            validation_file=spec.validation_file,
            hyperparameters=spec.hyperparameters,
            format=spec.format,
            suffix=spec.suffix,
            quotas=spec.quotas,
        )
    except FinetuneHubError:
        return
    check_report(report)


def test_the_fuzz_budget_is_small_and_fixed():
    if not os.environ.get("FUZZ_RANDOM"):
        assert FUZZ.derandomize
    assert FUZZ.deadline is None and FUZZ.max_examples <= 60 * SCALE
    assert zlib  # gzip damage is part of the reader's fuzz ("cut gzip")
