"""Smoke test of the validation benchmark: a ~1 MB corpus, each variant once, in-process.

No timing is asserted; only that the variants see the same records and that the token totals of
the floor, fh.validate and the notebook-style checker agree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    module_name = f"finetune_hub_bench_{name}"
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    make_corpus = _load("make_corpus")
    path = tmp_path_factory.mktemp("bench") / "corpus.jsonl"
    out = make_corpus.ensure_corpus(path, mb=1.0)
    assert out == path and make_corpus.is_complete(path, 1.0)
    return path


def test_corpus_is_deterministic_and_reused(corpus: Path, tmp_path: Path) -> None:
    make_corpus = _load("make_corpus")
    again = make_corpus.ensure_corpus(tmp_path / "again.jsonl", mb=1.0)
    assert again.read_bytes() == corpus.read_bytes()
    mtime = again.stat().st_mtime_ns
    make_corpus.ensure_corpus(again, mb=1.0)  # complete: reused, not rewritten
    assert again.stat().st_mtime_ns == mtime


def test_variants_agree(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune_hub as fh

    bench = _load("validate_bench")
    size = corpus.stat().st_size
    results = {
        "read": bench.read_lines(corpus),
        "parse": bench.json_parse(corpus),
        "floor": bench.floor(corpus),
        "floor-tiktoken": bench.floor_tiktoken(corpus),
        "floor-tiktoken-batch": bench.floor_tiktoken_batch(corpus),
        "cookbook": bench.cookbook(corpus),
        "fh1": bench.fh_validate(corpus),
    }
    # Force the byte-range split even on this small file, so workers=2 really uses 2 processes.
    validation = sys.modules[fh.validate.__module__]
    monkeypatch.setattr(validation, "MIN_PARALLEL_BYTES", 0, raising=False)
    results["fh2"] = bench.fh_validate_2(corpus)

    records = results["read"]["records"]
    assert records > 100
    for name, result in results.items():
        assert result["records"] == records, name
        assert result["bytes"] == size, name

    floor = results["floor"]
    expected = floor["tokens"] + 4 * floor["messages"] + 3 * floor["records"]
    assert results["fh1"]["tokens"] == expected
    assert results["fh2"]["tokens"] == expected
    assert results["cookbook"]["tokens"] == expected  # 3/message + role (1 token) + content, + 3
    assert results["floor-tiktoken"]["tokens"] == floor["tokens"]
    assert results["floor-tiktoken-batch"]["tokens"] == floor["tokens"]
    assert results["fh1"]["errors"] == 0
    assert not results["cookbook"]["format_errors"]


def test_cookbook_prefix(corpus: Path) -> None:
    bench = _load("validate_bench")
    lines, nbytes = bench.lines_within(corpus, 300_000)
    result = bench.cookbook(corpus, 300_000)
    assert result["records"] == lines and result["bytes"] == nbytes
    assert 300_000 <= nbytes < 300_000 + 40_000
