"""The types of `fh.validate`'s and `TuningJob`'s arguments, checked before anything is read.

A wrong type is a `JobSpecError` naming the argument, never an `AttributeError` from deep
inside the validator (`hyperparameters=[...]`, `suffix=5`, `workers="2"`).

>>> check_arguments({"suffix": 5})
Traceback (most recent call last):
...
finetune_hub.errors.JobSpecError: fh.validate: suffix must be a string or None, found int (5)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any

from finetune_hub.errors import JobSpecError


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def _optional_path(value: Any) -> bool:
    return value is None or _path(value)


def _optional_mapping(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


def _count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "training_file": (_path, "a path (str or os.PathLike)"),
    "provider": (_text, "a string"),
    "base_model": (_text, "a string"),
    "method": (_text, "a string"),
    "validation_file": (_optional_path, "a path (str or os.PathLike) or None"),
    "hyperparameters": (_optional_mapping, "a mapping of names to values (a dict) or None"),
    "format": (_optional_text, "a format name or None"),
    "suffix": (_optional_text, "a string or None"),
    "tokenizer": (_optional_text, "a counter spec string or None"),
    "max_issues_per_code": (lambda v: _count(v, 0), "a whole number >= 0"),
    "workers": (lambda v: _count(v, 1), "a whole number >= 1"),
    "today": (lambda v: v is None or isinstance(v, dt.date), "a datetime.date or None"),
    "quotas": (_optional_mapping, "a mapping of quota names to whole numbers (a dict) or None"),
    "mapping": (_optional_mapping, "a mapping of field names to column names (a dict) or None"),
    "options": (_optional_mapping, "a mapping of provider option names to values (a dict) or None"),
    "datasets": (_optional_mapping, "a mapping of data set names to paths (a dict) or None"),
}


def check_arguments(arguments: Mapping[str, Any], where: str = "fh.validate") -> None:
    """Raise `JobSpecError` for the first argument of a wrong type; names not known here pass."""
    for name, value in arguments.items():
        rule = _RULES.get(name)
        if rule is not None and not rule[0](value):
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise JobSpecError(
                f"{where}: {name} must be {rule[1]}, found {type(value).__name__} ({shown})"
            )
