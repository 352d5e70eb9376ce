"""Shared data for the local backend's tiny-model tests."""

from __future__ import annotations

import json
from pathlib import Path

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
