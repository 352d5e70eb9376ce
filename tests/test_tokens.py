"""Token counting: offline OpenAI encodings, exactness against tiktoken, estimates, specs."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_hub.data import tokens
from finetune_hub.data.tokens import (
    CharEstimator,
    HFCounter,
    OpenAICounter,
    TokenCounter,
    get_counter,
    openai_encoding,
)
from finetune_hub.errors import FinetuneHubError

ENCODINGS = ["o200k_base", "cl100k_base"]

SAMPLES = [
    "Hello, world! This is a plain English sentence.",
    "今日はいい天気ですね。東京都渋谷区で新しいカフェがオープンしました。",
    "ひらがな、カタカナ、漢字が混ざった文章です。",
    "ＦＵＬＬ－ＷＩＤＴＨ　ｶﾀｶﾅ ﾊﾝｶｸ カタカナ ｱｲｳｴｵ",
    "Family: 👨‍👩‍👧‍👦 and flags 🇯🇵🏳️‍🌈 and skin tone 👍🏽",
    "line one\r\nline two\r\n\r\n",
    "spaces:     four    then\t\ttabs   \n   ",
    "I'll, you've, she's, they'd, we're, I'M, DON'T",
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}',
    "<|endoftext|>",
    "before <|endoftext|> after <|fim_prefix|><|fim_middle|><|fim_suffix|>",
    "<|im_start|>user\nhello<|im_end|>\n<|endofprompt|><|startoftext|>",
    "",
    "12345678901234567890 3.14159 1,000,000",
    "café naïve Ελληνικά русский текст 한국어 텍스트",
    "x" * 5000,
    "é" * 300 + " " * 300 + "漢" * 300,
]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def fresh_caches():
    openai_encoding.cache_clear()
    get_counter.cache_clear()
    yield
    openai_encoding.cache_clear()
    get_counter.cache_clear()


def reference(name: str, texts: list[str]) -> list[int]:
    enc = openai_encoding(name)
    return [len(enc.encode_ordinary(text)) for text in texts]


# --- offline loading -----------------------------------------------------------------------------


def test_openai_encoding_works_without_network(no_network, fresh_caches, monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    enc = openai_encoding("o200k_base")
    assert len(enc.encode_ordinary("hello world")) == 2
    assert enc.name == "o200k_base"
    assert enc.encode("<|endoftext|>", allowed_special="all") == [199999]
    assert get_counter("o200k_base").count("hello world") == 2


def test_openai_encoding_is_cached():
    assert openai_encoding("cl100k_base") is openai_encoding("cl100k_base")


def test_openai_encoding_matches_tiktoken_pins():
    from tiktoken_ext import openai_public

    for name in ENCODINGS:
        source = getattr(openai_public, name).__code__.co_consts
        assert tokens.OPENAI_VOCAB_SHA256[name] in source


def test_unknown_openai_encoding():
    with pytest.raises(ValueError, match="o200k_base"):
        openai_encoding("p50k_base")


def test_tampered_vocabulary_is_refused(monkeypatch, fresh_caches):
    real = tokens._bundled_bytes("o200k_base")
    monkeypatch.setattr(tokens, "_bundled_bytes", lambda name: real.replace(b" 0\n", b" 1\n", 1))
    with pytest.raises(FinetuneHubError, match="sha256") as info:
        openai_encoding("o200k_base")
    assert "pip install" in str(info.value)
    with pytest.raises(FinetuneHubError, match="sha256"):
        OpenAICounter("o200k_base", backend="tiktoken")


def test_missing_vocabulary_package(monkeypatch, fresh_caches):
    monkeypatch.setattr(tokens, "_VOCAB_PACKAGE", "no_such_package_for_finetune_hub")
    with pytest.raises(FinetuneHubError, match="pip install"):
        openai_encoding("cl100k_base")


def test_import_is_cheap():
    code = (
        "import sys, finetune_hub.data; before = set(sys.modules);"
        "import finetune_hub.data.tokens;"
        "print(sorted(m for m in set(sys.modules) - before"
        " if m.split('.')[0] in ('tiktoken', 'tiktoken_ext', 'toktok', 'tokenizers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- exactness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODINGS)
def test_counts_equal_encode_ordinary(name):
    expected = reference(name, SAMPLES)
    assert get_counter(name).count_many(SAMPLES) == expected
    assert [get_counter(name).count(text) for text in SAMPLES] == expected


@pytest.mark.parametrize("backend", ["toktok", "tiktoken"])
@pytest.mark.parametrize("name", ENCODINGS)
def test_every_backend_is_exact(name, backend):
    counter = OpenAICounter(name, backend=backend)
    assert counter.exact
    assert backend in counter.description and name in counter.description
    expected = reference(name, SAMPLES)
    assert counter.count_many(SAMPLES) == expected
    many = SAMPLES * (OpenAICounter.BATCH_MIN // len(SAMPLES) + 1)  # the batch_count path
    assert counter.count_many(many) == reference(name, many)


@pytest.mark.parametrize("name", ENCODINGS)
def test_special_probe_counts_are_tiktokens(name):
    assert reference(name, list(tokens._SPECIAL_PROBE)) == tokens._SPECIAL_PROBE_COUNTS[name]


@pytest.mark.parametrize("name", ENCODINGS)
def test_surrogates_count_like_tiktoken(name):
    texts = ["a\ud800b", "\udfff", "x\ud83d\ude00y", "plain"]
    many = texts * OpenAICounter.BATCH_MIN
    for backend in ("toktok", "tiktoken"):
        counter = OpenAICounter(name, backend=backend)
        assert counter.count_many(texts) == reference(name, texts)
        assert counter.count_many(many) == reference(name, many)


def test_default_backend_is_toktok():
    pytest.importorskip("toktok")
    assert "toktok-rs" in get_counter("o200k_base").description


@pytest.mark.parametrize("name", ENCODINGS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(max_size=200), max_size=8))
def test_random_text_counts_equal_encode_ordinary(name, texts):
    assert get_counter(name).count_many(texts) == reference(name, texts)


PIECES = [
    "<|endoftext|>",
    "<|fim_suffix|>",
    "<|im_start|>",
    "<|",
    "|>",
    " ",
    "\n",
    "'ll",
    "a",
    "日本",
    "ｶ",
    "👍",
    "\r\n",
    "0",
]


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.lists(st.sampled_from(PIECES), max_size=30).map("".join), max_size=5))
def test_random_token_soup_counts_equal_encode_ordinary(texts):
    for name in ENCODINGS:
        assert get_counter(name).count_many(texts) == reference(name, texts)


# --- estimate ------------------------------------------------------------------------------------


def test_char_estimator_numbers():
    est = get_counter("chars:6:1")
    assert isinstance(est, CharEstimator)
    assert est.exact is False
    assert est.count("Hello, world! This is a test.") == 5  # 29 / 6
    assert est.count("今日はいい天気ですね。") == 11  # 11 CJK
    assert est.count("Tokyo 東京") == 3  # 6 / 6 + 2 / 1
    assert est.count("") == 0
    assert est.count_many(["abcdef", "abcdefg", "日本語"]) == [1, 2, 3]
    assert "6 Latin" in est.description and "CJK" in est.description


def test_char_estimator_ratios():
    est = get_counter("chars:4:1.5")
    assert est.count("今日はいい天") == 4  # 6 / 1.5
    assert "4 Latin" in est.description and "1.5 CJK" in est.description
    assert get_counter("chars:6").count("日本") == 2
    assert CharEstimator(6).count("a\ud800") == 2  # a lone surrogate counts as CJK


# --- specs ---------------------------------------------------------------------------------------


def test_get_counter_caches():
    assert get_counter("o200k_base") is get_counter("o200k_base")
    assert get_counter("chars:6:1") is get_counter("chars:6:1")
    assert isinstance(get_counter("cl100k_base"), TokenCounter)


@pytest.mark.parametrize(
    "spec",
    [
        "gpt-4o",
        "",
        "O200K_BASE",
        "chars:",
        "chars:x",
        "chars:6:1:2",
        "chars:0",
        "chars:-1",
        "chars:6:inf",
        "hf:",
        "tiktoken:o200k_base",
    ],
)
def test_bad_specs(spec):
    with pytest.raises(ValueError):
        get_counter(spec)


def test_bad_spec_lists_forms():
    with pytest.raises(ValueError, match="hf:") as info:
        get_counter("gpt-4o")
    assert "chars:" in str(info.value) and "o200k_base" in str(info.value)


def test_hf_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FinetuneHubError, match="nowhere"):
        get_counter(f"hf:{missing}")


def test_hf_counter_matches_tokenizers(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, processors, trainers

    corpus = ["hello world", "fine-tuning data", "今日はいい天気", "hello fine world"] * 5
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)]
    )
    tok.enable_truncation(max_length=4)
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))

    samples = ["hello world", "", "a long text that would be truncated " * 3, "今日は", "a\ud800"]
    tok.no_truncation()
    expected = [len(tok.encode(s, add_special_tokens=False)) for s in samples[:-1]]
    for spec in (f"hf:{tmp_path / 'tok'}", f"hf:{tmp_path / 'tok' / 'tokenizer.json'}"):
        counter = get_counter(spec)
        assert isinstance(counter, HFCounter)
        assert counter.exact and counter.name == spec
        assert counter.count_many(samples[:-1]) == expected
        assert counter.count("hello world") == expected[0]
        assert counter.count_many(samples)[-1] >= 1


def test_hf_missing_package(monkeypatch, tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(FinetuneHubError, match="pip install tokenizers"):
        HFCounter(tmp_path)


def test_proxy_counter_scales_an_openai_count_and_says_it_is_an_estimate():
    from finetune_hub.data.tokens import get_counter, openai_encoding

    enc = openai_encoding("cl100k_base")
    texts = ["hello world", "こんにちは、世界。", "x" * 50]
    proxy = get_counter("proxy:cl100k_base:1.5")
    assert proxy.exact is False and "cl100k_base" in proxy.description and "1.5" in proxy.description
    assert proxy.count_many(texts) == [-(-len(enc.encode_ordinary(t)) * 3 // 2) for t in texts]
    assert get_counter("proxy:o200k_base:1").count("hello world") == 2
    for bad in ("proxy:gpt2:1", "proxy:o200k_base:-1", "proxy:o200k_base:x"):
        with pytest.raises(ValueError):
            get_counter(bad)
