"""One hyperparameter vocabulary, mapped and range-checked per backend.

>>> from finetune_hub.rules import resolve
>>> rules, _ = resolve("bedrock", "amazon.titan-text-lite-v1", "sft")  # doctest: +SKIP
>>> check_hyperparameters({"epochs": 3, "batch_size": 2}, rules)  # doctest: +SKIP
HyperparameterCheck(provider_values={'epochCount': '3', 'batchSize': '2'}, ...)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.schema import HyperparameterSpec, ResolvedRules


@dataclass
class HyperparameterCheck:
    """Result of checking a job's hyperparameters against one backend.

    `provider_values` holds what is sent, in the backend's names and types; `effective` holds our
    names with defaults filled in (what the job will run with, where known).
    """

    provider_values: dict[str, Any] = field(default_factory=dict)
    effective: dict[str, Any] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)


def check_hyperparameters(
    params: Mapping[str, Any] | None, rules: ResolvedRules
) -> HyperparameterCheck:
    """Check `params` (our vocabulary) against `rules.hyperparameters`; never raises."""
    result = HyperparameterCheck()
    specs = rules.hyperparameters
    by_provider_name = {s.provider_name: s for s in specs.values()}
    where = (
        f"{rules.provider_display_name} {rules.model_id or rules.requested_model} ({rules.method})"
    )
    for name, value in (params or {}).items():
        spec = specs.get(name) or _accepted(name, params or {}, rules, result.issues)
        if spec is None:
            result.issues.append(_unknown(name, rules, by_provider_name, where))
            continue
        checked = _check_value(spec, value, where, result.issues)
        if checked is not None:
            result.provider_values[spec.provider_name] = _wire(spec, checked)
            result.effective[spec.name] = checked
    for name, spec in specs.items():
        if name not in result.effective:
            if spec.required:
                result.issues.append(
                    Issue(
                        code="missing_hyperparameter",
                        field=f"hyperparameters.{name}",
                        message=f"{where} requires {name} ({spec.range_text()})",
                    )
                )
            elif spec.default is not None:
                result.effective[name] = spec.default
    return result


def _accepted(
    name: str, params: Mapping[str, Any], rules: ResolvedRules, issues: list[Issue]
) -> HyperparameterSpec | None:
    """The spec a hint with `accept` maps `name` to (`per_device_train_batch_size` ->
    `batch_size` on the local backend), noting the mapping as a warning; None when there is no
    such hint, or when the job also gives the target name (then `name` is refused)."""
    hint = rules.hyperparameter_hints.get(name)
    if hint is None or not hint.accept or hint.use not in rules.hyperparameters:
        return None
    if hint.use in params:
        return None
    issues.append(
        Issue(
            code="hyperparameter_renamed",
            severity=Severity.WARNING,
            field=f"hyperparameters.{name}",
            message=f"{name!r} is taken as {hint.use!r} ({hint.note}; {hint.provenance.cite()})",
        )
    )
    return rules.hyperparameters[hint.use]


def _unknown(
    name: str, rules: ResolvedRules, by_provider: Mapping[str, HyperparameterSpec], where: str
) -> Issue:
    """`unknown_hyperparameter`, with the rules' hint for names people often type."""
    specs = rules.hyperparameters
    takes = ", ".join(sorted(specs)) or "none"
    hint = ""
    known = rules.hyperparameter_hints.get(name)
    if known is not None:
        use = f"use {known.use!r}: " if known.use and known.use in specs else ""
        hint = f" ({use}{known.note}; {known.provenance.cite()})"
    elif name in by_provider:
        hint = f" ({name!r} is the provider's own name: use {by_provider[name].name!r})"
    return Issue(
        code="unknown_hyperparameter",
        field=f"hyperparameters.{name}",
        message=f"{where} does not take {name!r}{hint}; it takes: {takes}",
    )


def _check_value(spec: HyperparameterSpec, value: Any, where: str, issues: list[Issue]) -> Any:
    path = f"hyperparameters.{spec.name}"
    if spec.auto and isinstance(value, str) and value.lower() == "auto":
        return spec.auto_value
    absurd = _absurd(value)
    if absurd:  # refused here, so nothing like 'nan' is ever sent (Bedrock takes strings)
        issues.append(
            Issue(
                code="invalid_hyperparameter",
                field=path,
                message=f"{spec.name} must be {_article(spec.type, finite=True)}, found {absurd}",
            )
        )
        return None
    coerced = _coerce(spec.type, value)
    if coerced is None:
        issues.append(
            Issue(
                code="invalid_hyperparameter",
                field=path,
                message=f"{spec.name} must be {_article(spec.type)}, found {value!r}"
                + (f" (or {spec.auto_value!r})" if spec.auto else ""),
            )
        )
        return None
    if _in_range(spec, coerced):
        return coerced
    severity = Severity.ERROR if spec.provenance.confirmed else Severity.WARNING
    issues.append(
        Issue(
            code="hyperparameter_out_of_range",
            severity=severity,
            field=path,
            message=f"{spec.name}={value!r} is outside what {where} accepts: {spec.range_text()} ({spec.provenance.cite()})",
        )
    )
    return coerced if severity is Severity.WARNING else None


#: Larger integers fit no provider's field (and overflow a float): refused as absurd.
_MAX_INT = 2**63 - 1


def _absurd(value: Any) -> str | None:
    """How a number that no provider can take reads in a message (NaN, infinities and integers
    beyond 64 bits, e.g. `1e400` written as an integer), or None for any other value."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
        return f"an integer of {value.bit_length()} bits (more than 64)"
    return None


def _coerce(kind: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value if kind == "bool" else None
    if kind == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if kind == "float":
        return float(value) if isinstance(value, int | float) else None
    if kind == "str":
        return value if isinstance(value, str) else None
    return None


def _in_range(spec: HyperparameterSpec, value: Any) -> bool:
    if spec.choices is not None:
        return value in spec.choices
    if not isinstance(value, int | float):
        return True
    if spec.min is not None and (value < spec.min or (spec.min_exclusive and value == spec.min)):
        return False
    return not (
        spec.max is not None and (value > spec.max or (spec.max_exclusive and value == spec.max))
    )


def _wire(spec: HyperparameterSpec, value: Any) -> Any:
    if spec.wire == "string" and not isinstance(value, str):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value


def _article(kind: str, *, finite: bool = False) -> str:
    if finite and kind in ("int", "float"):
        return "a finite integer of at most 64 bits" if kind == "int" else "a finite number"
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}[
        kind
    ]
