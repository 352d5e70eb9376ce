"""Where a `TuningJob`'s `JobSpec` comes from: its keyword arguments, a job file with overrides,
or the store's record of it. Pure functions: nothing here touches a provider or the store.

>>> spec = spec_from_arguments(provider="openai", base_model="gpt-4.1-mini-2025-04-14",
...     training_file="train.jsonl", validation_file=None, datasets=None, method="sft",
...     hyperparameters=None, suffix=None, format=None, mapping=None, options=None, quotas=None)
>>> spec.hyperparameters
{}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_hub.checks.arguments import check_arguments
from finetune_hub.jobs.spec import JobSpec
from finetune_hub.store import JobRecord


def spec_from_arguments(**args: Any) -> JobSpec:
    """The `JobSpec` for `TuningJob(...)`'s arguments; a wrong type names the argument, in the
    words `fh.validate` uses for its arguments of the same name (`checks/arguments.py`), and
    pydantic's for the rest."""
    from pydantic import ValidationError as PydanticValidationError

    from finetune_hub.errors import JobSpecError

    missing = [k for k in ("provider", "base_model", "training_file") if args[k] is None]
    if missing:
        raise JobSpecError(
            f"TuningJob needs {', '.join(missing)} (provider, base_model and training_file, "
            "or spec=)"
        )
    check_arguments(args, where="TuningJob")  # the wording fh.validate uses, for the same names
    for key in ("training_file", "validation_file"):
        if isinstance(args[key], Path):
            args[key] = str(args[key])
    if isinstance(args["datasets"], dict):
        args["datasets"] = {
            k: str(v) if isinstance(v, Path) else v for k, v in args["datasets"].items()
        }
    for key in ("datasets", "hyperparameters", "options", "quotas", "mapping"):
        if args[key] is None:
            args[key] = {}
    try:
        return JobSpec(**args)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"argument {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']}"
            f" (got {type(e['input']).__name__})"
            for e in exc.errors()
        )
        raise JobSpecError(f"TuningJob: {problems}") from None


def spec_from_file(path: str | Path, overrides: dict[str, Any]) -> JobSpec:
    """A job file's spec with `overrides` applied; mappings merge, so a flag changes one key of
    `hyperparameters`, `options`, `datasets` or `quotas`, not all of them."""
    spec = JobSpec.from_file(path)
    for key in ("hyperparameters", "options", "datasets", "quotas"):
        if key in overrides:
            overrides[key] = {**getattr(spec, key), **overrides[key]}
    if overrides:
        spec = spec.model_copy(update=overrides)
    return spec


def spec_from_record(rec: JobRecord, options: dict[str, Any] | None = None) -> JobSpec:
    """The spec of a stored job (`TuningJob.attach`); `options` adds what was not stored."""
    return JobSpec(
        provider=rec.provider,
        base_model=rec.base_model,
        training_file=rec.training_file,
        validation_file=rec.validation_file,
        datasets=rec.datasets,
        method=rec.method,
        hyperparameters=rec.hyperparameters,
        suffix=rec.suffix,
        options={**rec.options, **(options or {})},
        quotas=rec.quotas,
        format=rec.format,
        mapping=rec.mapping,
    )
