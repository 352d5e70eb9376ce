"""Each extra alone is enough for its provider: the provider's backend and deployers import in a
fresh interpreter where every other provider's SDK is blocked (as if not installed), and
`import finetune_hub` itself imports no SDK and no torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from finetune_hub import registry

#: The top-level modules each extra brings (what another extra's provider must not need).
SDKS = {
    "openai": {"openai"},
    "azure-openai": {"openai", "azure.identity", "httpx"},
    "aws": {"boto3", "botocore", "s3transfer"},
    "vertex": {"google.genai", "google.cloud.storage", "google.cloud.aiplatform", "vertexai"},
    "azure": {"openai", "azure.identity", "azure.ai.ml", "httpx"},
    "local": {"torch", "transformers", "peft", "accelerate", "gguf", "safetensors"},
}
ALL_SDKS = set().union(*SDKS.values())

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {blocked!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"No module named {{name!r}} (blocked)", name=name)
    sys.meta_path.insert(0, Block())
    """
)


def run(code: str, blocked: set[str]) -> subprocess.CompletedProcess[str]:
    script = BLOCKER.format(blocked=sorted(blocked)) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


BUILT = [e for e in registry.BUILTIN if e.backend]


@pytest.mark.parametrize("entry", BUILT, ids=[e.name for e in BUILT])
def test_a_provider_loads_with_only_its_own_extra(entry: registry.ProviderEntry) -> None:
    own = SDKS[entry.extra]
    targets = [entry.backend, *entry.deployers.values()]
    result = run(
        f"""
        from finetune_hub import registry
        entry = registry.entry({entry.name!r})
        for target in {targets!r}:
            entry.load(target)
        print("loaded")
        """,
        ALL_SDKS - own,
    )
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]


def test_a_missing_sdk_names_the_extra_to_install() -> None:
    result = run(
        """
        import finetune_hub as fh
        try:
            fh.TuningJob(provider="bedrock", base_model="m", training_file="t.jsonl").backend
        except fh.MissingDependencyError as exc:
            print(exc)
        """,
        {"boto3", "botocore"},
    )
    assert 'pip install "finetune-hub[aws]"' in result.stdout, result.stderr[-2000:]


def test_importing_the_package_imports_no_sdk() -> None:
    result = run(
        """
        import sys
        import finetune_hub as fh
        fh.validate, fh.TuningJob, fh.JobStore, fh.ProviderError, fh.registry.names()
        heavy = [m for m in sys.modules if m.split(".")[0] in {"openai", "boto3", "torch", "transformers"}
                 or m.startswith(("google.genai", "google.cloud.", "azure."))]
        print("heavy:", heavy)
        """,
        set(),
    )
    assert "heavy: []" in result.stdout, result.stdout + result.stderr[-2000:]
