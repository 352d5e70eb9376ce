"""Shared data for the local backend's tiny-model tests."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

#: Arithmetic questions; every answer is the same styled reply.
LOCAL_QUESTIONS = [f"what is {a} plus {b}?" for a in range(1, 9) for b in range(1, 5)]
LOCAL_ANSWER = "yes, gozaru!"


def write_tiny_chat(path: Path) -> Path:
    """Write `LOCAL_QUESTIONS` as chat records answered with `LOCAL_ANSWER`; returns `path`."""
    with open(path, "w") as f:
        for q in LOCAL_QUESTIONS:
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": LOCAL_ANSWER}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


#: A `sitecustomize` that makes rank 1 of a torchrun job raise at its N-th forward pass
#: (`FH_TEST_CRASH_AT_FORWARD=N`): every process started with it on PYTHONPATH loads it.
CRASH_RANK1_SITECUSTOMIZE = """
import os

if os.environ.get("RANK") == "1" and os.environ.get("FH_TEST_CRASH_AT_FORWARD"):
    from finetune_hub.providers.local import train

    _forward, _calls = train.Trainer._forward, []

    def _crashing_forward(self, batch):
        _calls.append(1)
        if len(_calls) == int(os.environ["FH_TEST_CRASH_AT_FORWARD"]):
            raise RuntimeError("injected crash in rank 1")
        return _forward(self, batch)

    train.Trainer._forward = _crashing_forward
"""


def crash_rank1_at(step: int, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Have rank 1 of every torchrun job started from now on raise at forward pass `step`
    (a `sitecustomize` in `folder`, put first on PYTHONPATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(CRASH_RANK1_SITECUSTOMIZE))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("FH_TEST_CRASH_AT_FORWARD", str(step))
