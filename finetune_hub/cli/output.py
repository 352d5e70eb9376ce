"""What every command shares on its way out: JSON on stdout, a yes/no question, and Python
suggestions rewritten as the flags of the command line.

>>> shell_hint("pass options={'confirm_cost': True} to submit it")
'pass --option confirm_cost=true to submit it'
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any


def emit_json(data: Any) -> None:
    """`data` as indented JSON on stdout (dates and paths as strings), then a newline."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def confirm(question: str, *, yes: bool) -> bool:
    """`yes` (the command's `--yes`), else the answer read from standard input: "y" or "yes"
    goes ahead; anything else, an empty line, no standard input at all, or one that cannot be
    read (a pipe closed, CI) is no. The question goes to stderr, so stdout stays the output."""
    if yes:
        return True
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):  # no terminal, a closed stream, pytest's captured stdin
        answer = ""
    if not answer:
        sys.stderr.write("(no answer on standard input: no)\n")
    return answer.strip().lower() in ("y", "yes")


def _value(text: str) -> str:
    text = text.strip().strip("'\"")
    return {"True": "true", "False": "false"}.get(text, text)


def _pairs(body: str, flag: str) -> str:
    """`'k': v, 'k2': v2` -> `--flag k=v --flag k2=v2`."""
    out = []
    for part in re.split(r",\s*(?=['\"])", body.strip()):
        key, _, value = part.partition(":")
        if key.strip():
            out.append(f"{flag} {_value(key)}={_value(value)}")
    return " ".join(out)


#: Python spellings of a fix -> the command line's, applied in order.
_RULES: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(r"fh\.convert\(\s*'([^']*)',\s*'([^']*)',\s*to='([^']*)'\s*\)"),
        lambda m: f"finetune-hub convert {m[1]} {m[2]} --to {m[3]}",
    ),
    (re.compile(r"options=\{\{?([^{}]*)\}?\}"), lambda m: _pairs(m[1], "--option")),
    (re.compile(r"quotas=\{\{?([^{}]*)\}?\}"), lambda m: _pairs(m[1], "--quota")),
    (re.compile(r"hyperparameters=\{\{?([^{}]*)\}?\}"), lambda m: _pairs(m[1], "--hp")),
    (re.compile(r"\bmapping=\{\{?([^{}]*)\}?\}"), lambda m: _pairs(m[1], "--map")),
    (re.compile(r"\bsource_format=(?!\w)"), lambda m: "--from FORMAT"),
    (re.compile(r"\bdeploy\(confirm_cost=True\)"), lambda m: "finetune-hub deploy --yes"),
    (re.compile(r"\bconfirm_commitment=True\b"), lambda m: "--option confirm_commitment=true"),
    (re.compile(r"\bpass to=(?!\w)"), lambda m: "pass --to MODEL"),
    (re.compile(r"\bmax_cost=([\d.]+)"), lambda m: f"--max-cost {m[1]}"),
    (re.compile(r"\bmax_hourly_cost=([\d.]+)"), lambda m: f"--max-hourly-cost {m[1]}"),
    (re.compile(r"\s*\(command line: [^)]*\)"), lambda m: ""),
]


def shell_hint(text: str) -> str:
    """`text` with the Python suggestions in it (`fh.convert(...)`, `options={...}`,
    `source_format=`, `quotas={...}`, `mapping={...}`) written as `finetune-hub` commands and
    flags.

    >>> shell_hint("Convert it: fh.convert('a.jsonl', 'converted.jsonl', to='chat')")
    'Convert it: finetune-hub convert a.jsonl converted.jsonl --to chat'
    >>> shell_hint("no readable record; pass source_format=")
    'no readable record; pass --from FORMAT'
    """
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text
