"""Reading command-line values: `key=value` hyperparameters, sizes, counts.

>>> parse_hp("epochs=3")
('epochs', 3)
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


class UsageError(Exception):
    """A command-line argument that argparse accepted but the command cannot use."""


def parse_value(text: str) -> Any:
    """A hyperparameter value from the command line: int, then float, then bool, else the string.

    Python's digit separators are refused (`3_0` would silently read as 30):

    >>> parse_value("3"), parse_value("0.5"), parse_value("true"), parse_value("gpt-4.1")
    (3, 0.5, True, 'gpt-4.1')
    """
    if "_" in text and text.replace("_", "").replace(".", "").lstrip("+-").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: write numbers without '_' separators")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def parse_hp(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, parsed value); an argparse `type`."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), parse_value(value.strip())


def parse_quota(text: str) -> tuple[str, int]:
    """`--quota max_training_records=20000` -> ("max_training_records", 20000); an argparse `type`.

    >>> parse_quota("max_total_records=20000")
    ('max_total_records', 20000)
    """
    key, value = parse_hp(text)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise argparse.ArgumentTypeError(f"expected KEY=N with a whole number N >= 1, got {text!r}")
    return key, value


def parse_dataset(text: str) -> tuple[str, str]:
    """`--dataset prompt=prompts.jsonl` -> ("prompt", "prompts.jsonl"); an argparse `type`.

    >>> parse_dataset("preference=data/prefs.jsonl")
    ('preference', 'data/prefs.jsonl')
    """
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), path.strip()


def parse_mapping(text: str) -> tuple[str, str]:
    """`--map instruction=text` -> ("instruction", "text"): the source format's field and the
    column to read it from; an argparse `type`.

    >>> parse_mapping("instruction=text")
    ('instruction', 'text')
    """
    field, sep, column = text.partition("=")
    if not sep or not field.strip() or not column.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=COLUMN, got {text!r}")
    return field.strip(), column.strip()


def add_quota_flag(p: argparse.ArgumentParser) -> None:
    """`--quota K=N` (repeatable) on a command that checks data against a provider's default
    quotas; the command passes `quotas=dict(args.quota) or None` on."""
    p.add_argument(
        "--quota",
        action="append",
        type=parse_quota,
        default=[],
        metavar="K=N",
        help="your account's raised default quota, repeatable (max_training_records=20000)",
    )


def add_map_flag(p: argparse.ArgumentParser) -> None:
    """`--map FIELD=COLUMN` (repeatable) on a command that reads data through a column mapping;
    the command passes `mapping=dict(args.map) or None` on."""
    p.add_argument(
        "--map",
        action="append",
        type=parse_mapping,
        default=[],
        metavar="FIELD=COLUMN",
        help="read FIELD of the source format from COLUMN, repeatable (instruction=text)",
    )


def parse_size(text: str) -> float | int:
    """`--validation-size`: a fraction (0.1) or a record count (200)."""
    value = parse_value(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise argparse.ArgumentTypeError(f"expected a fraction or a count, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse `type` for counts that must be at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)
