"""One call from a job on a retired (or retiring) base model to the same job on its successor.

`job.migrate(to=...)` (and `finetune-hub migrate JOB --to MODEL`) takes the job's data, method,
hyperparameters, suffix and options to the successor: the data are re-validated against the
successor's rules, converted first (`fh.convert`) when the successor takes another format, the
hyperparameters it still takes are carried over and the others named with the reason they were
dropped. The new job is submitted and linked to the old one in the store, both ways:
`extra.migrated_from` on the new record (with the plan) and `extra.migrated_to` on the old one.
Without `to`, the rules' `replacement` for the old model is proposed.

>>> new = fh.TuningJob.attach("ftj_1a2b3c4d5e6f").migrate()  # doctest: +SKIP
>>> new.migration.to_model, new.migration.dropped  # doctest: +SKIP
('gpt-4.1-mini', {'seed': 'Azure OpenAI gpt-4.1-mini (sft) takes no seed ...'})
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from finetune_hub.errors import FinetuneHubError

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.rules.schema import ResolvedRules

FROM_KEY, TO_KEY = "migrated_from", "migrated_to"


class MigrationError(FinetuneHubError):
    """The job cannot be taken to that model (no successor named, a model or method the
    provider does not have, data that cannot be converted)."""


class MigrationPlan(BaseModel):
    """What `migrate` does: the models, the data (converted or not), the hyperparameters kept
    and those dropped with why."""

    from_job: str
    provider: str
    from_model: str
    to_model: str
    proposed_by: str  # "the rules' replacement" or "you"
    method: str
    training_file: str
    validation_file: str | None = None
    converted: list[str] = Field(default_factory=list)  # one sentence per converted file
    kept: dict[str, Any] = Field(default_factory=dict)
    dropped: dict[str, str] = Field(default_factory=dict)  # hyperparameter -> why

    def lines(self) -> list[str]:
        out = [
            f"{self.from_job} ({self.provider}, {self.from_model}) -> {self.to_model} "
            f"({self.proposed_by}), method {self.method}"
        ]
        out += [f"  data: {text}" for text in self.converted] or ["  data: used as it is"]
        kept = ", ".join(f"{k}={v!r}" for k, v in self.kept.items()) or "none"
        out.append(f"  hyperparameters kept: {kept}")
        out += [f"  dropped {name}: {why}" for name, why in self.dropped.items()]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def successor(provider: str, base_model: str, method: str) -> str | None:
    """The replacement the rules name for `base_model`, or None."""
    from finetune_hub.rules import resolve

    rules, _ = resolve(provider, base_model, method)
    return rules.replacement or None


def plan_migration(
    job: TuningJob,
    to: str | None = None,
    *,
    hyperparameters: dict[str, Any] | None = None,
    workdir: str | Path | None = None,
) -> tuple[MigrationPlan, dict[str, Any]]:
    """The plan and the new job's spec fields (nothing is sent). `hyperparameters` override or
    add to those carried over; converted files go under `workdir`."""
    from finetune_hub.rules import resolve

    spec = job.spec
    proposed_by = "you"
    if to is None:
        to = successor(spec.provider, spec.base_model, spec.method)
        proposed_by = "the rules' replacement"
        if to is None:
            raise MigrationError(
                f"the rules name no replacement for {spec.base_model} on {spec.provider}; pass "
                f"to= (see `finetune-hub rules --provider {spec.provider}` for the models there)"
            )
    rules, notes = resolve(spec.provider, to, spec.method)
    refused = [n for n in notes if n.is_error and n.code in ("unknown_model", "unsupported_method")]
    if refused:
        raise MigrationError(f"cannot migrate {job.id} to {to}: {refused[0].message}")
    plan = MigrationPlan(
        from_job=job.id,
        provider=spec.provider,
        from_model=spec.base_model,
        to_model=to,
        proposed_by=proposed_by,
        method=spec.method,
        training_file=spec.training_file,
        validation_file=spec.validation_file,
    )
    folder = Path(workdir) if workdir else _workdir(job)
    fmt = spec.format
    files = {"training": spec.training_file, "validation": spec.validation_file}
    for purpose, path in files.items():
        if path is None:
            continue
        done = _convert_if_needed(path, spec.format, rules, folder / f"{purpose}.jsonl", plan)
        if done is not None:
            setattr(plan, f"{purpose}_file", done)
            fmt = None  # the converted file is read as what it now is
    _carry_hyperparameters(spec.hyperparameters, rules, plan)
    plan.kept.update(hyperparameters or {})
    fields = {
        "base_model": to,
        "training_file": plan.training_file,
        "validation_file": plan.validation_file,
        "hyperparameters": dict(plan.kept),
        "format": fmt,
    }
    return plan, fields


def migrate(
    job: TuningJob,
    to: str | None = None,
    *,
    submit: bool = True,
    hyperparameters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    workdir: str | Path | None = None,
) -> TuningJob:
    """The new job on the successor (submitted unless `submit=False`, then only validated),
    with the plan as `new_job.migration`; once submitted, both records link to each other."""
    from finetune_hub.jobs.tuning_job import TuningJob

    plan, fields = plan_migration(job, to, hyperparameters=hyperparameters, workdir=workdir)
    spec = job.spec.model_copy(
        update={**fields, "options": {**job.spec.options, **(options or {})}}
    )
    new = TuningJob(spec=spec, store=job.store)
    new.migration = plan  # type: ignore[attr-defined]
    if not submit:
        new.validate()
        return new
    new.submit()
    now = dt.datetime.now(dt.UTC).isoformat()
    rec = new.store.require(new.id)
    link = {**plan.model_dump(mode="json"), "at": now}
    new.store.update(new.id, extra={**rec.extra, FROM_KEY: link})
    old = job.store.get(job.id)
    if old is not None:
        note = {"job": new.id, "to_model": plan.to_model, "at": now}
        job.store.update(job.id, extra={**old.extra, TO_KEY: note})
    return new


# -- the pieces -----------------------------------------------------------------------------------
def _workdir(job: TuningJob) -> Path:
    from finetune_hub.store.job_store import default_home

    home = job.store.home or default_home()
    return Path(home) / "migrations" / job.id


def _convert_if_needed(
    path: str, given: str | None, rules: ResolvedRules, dst: Path, plan: MigrationPlan
) -> str | None:
    """Convert `path` to the first format the successor takes, when it takes neither the
    file's format nor converts it itself; returns the converted file's path, or None."""
    from finetune_hub.data.convert import convert
    from finetune_hub.data.formats import DataFormat, detect_format

    fmt = DataFormat(given) if given else detect_format(path)
    if not rules.formats or fmt in rules.formats or fmt in rules.auto_convert:
        return None
    target = rules.formats[0]
    dst.parent.mkdir(parents=True, exist_ok=True)
    summary = convert(path, dst, to=target, source_format=fmt)
    if not summary.records_out:
        raise MigrationError(
            f"{plan.to_model} takes {', '.join(f.value for f in rules.formats)}, and none of "
            f"the {summary.records_in} {fmt.value} records of {path} converts to {target.value} "
            f"(skipped: {summary.skipped}); convert the data yourself and submit a new job"
        )
    lost = (
        "" if summary.lossless else f"; skipped {summary.skipped}, dropped {summary.dropped_fields}"
    )
    plan.converted.append(
        f"{path} ({fmt.value}) converted to {target.value} for {plan.to_model}: "
        f"{summary.records_out} of {summary.records_in} records -> {dst}{lost}"
    )
    return str(dst)


def _carry_hyperparameters(
    values: dict[str, Any], rules: ResolvedRules, plan: MigrationPlan
) -> None:
    from finetune_hub.checks.hyperparams import check_hyperparameters

    for name, value in values.items():
        checked = check_hyperparameters({name: value}, rules)
        errors = [i for i in checked.issues if i.is_error and i.code != "missing_hyperparameter"]
        if errors:
            plan.dropped[name] = errors[0].message
        else:
            plan.kept[name] = value
