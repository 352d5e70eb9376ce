"""`fh.validate`: check training (and validation) files against one backend's rules, in one pass.

>>> report = validate("train.jsonl", provider="bedrock", base_model="amazon.titan-text-lite-v1")  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.checks.report import FileStats, TokenStats, ValidationReport, ValidationStats
from finetune_hub.checks.scan import Scanner, ScanResult, ScanSpec, merge_results, scan_range
from finetune_hub.data.formats import DataFormat, candidate_formats
from finetune_hub.data.reader import JsonlReader, is_gzip
from finetune_hub.data.tokens import get_counter
from finetune_hub.errors import DataFileError
from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.catalog import Catalog, default_catalog
from finetune_hub.rules.schema import ResolvedRules

#: Files smaller than this are never split across processes.
MIN_PARALLEL_BYTES = 8 * 1024 * 1024
_DETECT_SAMPLE = 200


def validate(
    training_file: str | os.PathLike[str],
    provider: str,
    base_model: str,
    method: str = "sft",
    *,
    validation_file: str | os.PathLike[str] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    format: DataFormat | str | None = None,
    suffix: str | None = None,
    tokenizer: str | None = None,
    max_issues_per_code: int = 20,
    workers: int = 1,
    catalog: Catalog | None = None,
    today: dt.date | None = None,
    quotas: Mapping[str, int] | None = None,
) -> ValidationReport:
    """Check a job's data and settings against a backend's rules before anything is uploaded.

    Every problem becomes an `Issue` with a line number, a stable `code`, a `field` and a message;
    at most `max_issues_per_code` are listed per code (the rest are counted). `workers > 1` splits
    a big plain `.jsonl` file across processes by byte range. Never raises for bad data; raises
    `DataFileError` only for a file that cannot be opened.

    Limits come in three kinds (docs/rules.md): hard limits and default account quotas are
    errors, unconfirmed figures are warnings. `quotas` declares the raised quotas of your
    account (`{"max_training_records": 20000}`), which then replace the provider's defaults.
    `today` (default: `FINETUNE_HUB_TODAY` or the real date) decides which model dates have
    passed.

    >>> r = validate("chat.jsonl", "openai", "gpt-4.1-mini", hyperparameters={"epochs": 3})  # doctest: +SKIP
    >>> r.ok, r.stats.training.tokens.max  # doctest: +SKIP
    (True, 812)
    """
    cat = catalog or default_catalog()
    rules, notes = cat.resolve(
        provider, base_model, method, today=today, quotas=dict(quotas) if quotas else None
    )
    hp = check_hyperparameters(hyperparameters, rules)
    job_issues = (
        notes
        + hp.issues
        + _suffix_issues(suffix, rules)
        + _validation_presence(validation_file, rules)
    )
    batch_size = hp.effective.get("batch_size")
    batch_size = batch_size if isinstance(batch_size, int) else None
    job_issues += _batch_size_issues(batch_size, rules)
    tok = tokenizer or rules.tokenizer
    counter = get_counter(tok)

    fmt, fmt_issues = _decide_format(training_file, rules, format)
    train = _scan_file(training_file, fmt, rules, tok, batch_size, max_issues_per_code, workers)
    files = [(train, fmt_issues, rules.max_file_bytes, "max_file_bytes")]
    val = vfmt = None
    if validation_file is not None:
        vfmt, vfmt_issues = _decide_format(validation_file, rules, format)
        val = _scan_file(
            validation_file, vfmt, rules, tok, batch_size, max_issues_per_code, workers
        )
        max_val = rules.max_validation_file_bytes or rules.max_file_bytes
        files.append(
            (
                val,
                vfmt_issues,
                max_val,
                "max_validation_file_bytes"
                if rules.max_validation_file_bytes
                else "max_file_bytes",
            )
        )

    issues = list(job_issues)
    suppressed: dict[str, int] = {}
    for result, extra, max_bytes, size_field in files:
        issues += extra + _file_size_issue(result, max_bytes, rules, size_field)
        issues += result.issues
        for code, n in result.counts.items():
            listed = sum(1 for i in result.issues if i.code == code)
            if n > listed:
                suppressed[code] = suppressed.get(code, 0) + n - listed
    train_dups = _duplicates(train, None, max_issues_per_code)
    issues += train_dups[0]
    val_dups = _duplicates(val, train, max_issues_per_code) if val else ([], 0)
    issues += val_dups[0]
    issues += _record_caps(train, val, rules)

    epochs, epochs_source = _epochs(hp.effective.get("epochs"), rules, train.records)
    limit = rules.token_limit(batch_size)
    stats = ValidationStats(
        training=_file_stats(train, train_dups[1], counter, limit),
        validation=_file_stats(val, val_dups[1], counter, limit) if val else None,
        epochs=epochs,
        epochs_source=epochs_source,
        estimated_trained_tokens=train.capped_total * epochs if epochs else None,
    )
    issues = _apply_severity_overrides(issues, rules)
    return ValidationReport(
        provider=provider,
        base_model=base_model,
        method=method,
        format=fmt,
        validation_format=vfmt,
        errors=[i for i in issues if i.severity is Severity.ERROR],
        warnings=[i for i in issues if i.severity is Severity.WARNING],
        suppressed=suppressed,
        stats=stats,
        rules=_rules_summary(rules, tok, counter.description, limit),
        hyperparameters=hp.provider_values,
    )


def _apply_severity_overrides(issues: list[Issue], rules: ResolvedRules) -> list[Issue]:
    """A rules file's `severity` table can demote, promote or silence any code."""
    if not rules.severity:
        return issues
    out = []
    for issue in issues:
        wanted = rules.severity.get(issue.code)
        if wanted == "ignore":
            continue
        if wanted is not None and wanted != issue.severity.value:
            issue = issue.model_copy(update={"severity": Severity(wanted)})
        out.append(issue)
    return out


# -- format -----------------------------------------------------------------------------------
def _decide_format(
    path: str | os.PathLike[str], rules: ResolvedRules, given: DataFormat | str | None
) -> tuple[DataFormat, list[Issue]]:
    label = str(path)
    if given is not None:
        fmt = DataFormat(given)
    else:
        votes: dict[DataFormat, int] = {}
        first_choice: dict[DataFormat, int] = {}
        for n, (_line, _raw, record) in enumerate(JsonlReader(path)):
            cands = candidate_formats(record)
            for c in cands:
                votes[c] = votes.get(c, 0) + 1
            if cands:
                first_choice[cands[0]] = first_choice.get(cands[0], 0) + 1
            if n + 1 >= _DETECT_SAMPLE:
                break
        accepted = [f for f in votes if f in rules.formats]
        if accepted:
            fmt = max(accepted, key=votes.__getitem__)
        elif first_choice:
            fmt = max(first_choice, key=first_choice.__getitem__)
        else:
            fmt = rules.formats[0] if rules.formats else DataFormat.CHAT
            return fmt, [
                Issue(
                    code="unknown_format",
                    file=label,
                    message="no record has a known training-data shape (see docs/data-formats.md)",
                )
            ]
    if not rules.formats:
        note = f" ({rules.status_note})" if rules.status_note else ""
        return fmt, [
            Issue(
                code="format_not_checked",
                severity=Severity.WARNING,
                file=label,
                message=f"finetune_hub does not read the record shape {rules.model_id or rules.requested_model} takes yet{note}; "
                "only generic checks were made",
            )
        ]
    if fmt not in rules.formats:
        takes = ", ".join(f"{f.value} ({f.label})" for f in rules.formats)
        return fmt, [
            Issue(
                code="unsupported_format",
                file=label,
                message=f"{rules.model_id or rules.requested_model} ({rules.method}) takes {takes}; this file holds "
                f"{fmt.label} records. Convert it: fh.convert({label!r}, 'converted.jsonl', to={rules.formats[0].value!r})",
            )
        ]
    return fmt, []


# -- scanning ---------------------------------------------------------------------------------
def _scan_file(
    path: str | os.PathLike[str],
    fmt: DataFormat,
    rules: ResolvedRules,
    tok: str,
    batch_size: int | None,
    cap: int,
    workers: int,
) -> ScanResult:
    limit = rules.token_limit(batch_size)
    by_batch = (
        bool(rules.batch_token_limits)
        and batch_size is not None
        and limit != rules.max_tokens_per_example
    )
    spec = ScanSpec(
        rules=rules,
        format=fmt,
        tokenizer=tok,
        limit=limit,
        limit_field="batch_token_limits" if by_batch else "max_tokens_per_example",
        limit_note=f"batch size {batch_size}" if by_batch else "",
        cap=cap,
        label=str(path),
    )
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: no such file")
    size = p.stat().st_size
    if workers <= 1 or size < MIN_PARALLEL_BYTES or is_gzip(p):
        return Scanner(spec).scan(p)
    bounds = [size * k // workers for k in range(workers + 1)]
    fork = "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    if not fork:  # spawned workers do not share the parent's hash() seed
        spec.fingerprint = "blake2b"
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(scan_range, spec, str(p), bounds[k], bounds[k + 1]) for k in range(workers)
        ]
        parts = [f.result() for f in futures]
    return merge_results(parts, cap)


def _duplicates(result: ScanResult, other: ScanResult | None, cap: int) -> tuple[list[Issue], int]:
    """Duplicate records within a file (or, with `other`, validation records also in training)."""
    seen: dict[int, int] = dict(zip(other.hashes, other.hash_lines, strict=True)) if other else {}
    issues: list[Issue] = []
    count = 0
    code = "validation_in_training" if other else "duplicate_record"
    for h, line in zip(result.hashes, result.hash_lines, strict=True):
        first = seen.get(h)
        if first is None:
            if other is None:
                seen[h] = line
            continue
        count += 1
        if len(issues) < cap:
            where = f"training line {first}" if other else f"line {first}"
            issues.append(
                Issue(
                    code=code,
                    severity=Severity.WARNING,
                    line=line,
                    file=result.path,
                    message=f"same record as {where}",
                )
            )
    if count > cap:
        issues.append(
            Issue(
                code=code,
                severity=Severity.WARNING,
                file=result.path,
                message=f"{count - cap:,} more duplicate records not listed",
            )
        )
    return issues, count


# -- file- and job-level rules --------------------------------------------------------------------
def _record_caps(train: ScanResult, val: ScanResult | None, rules: ResolvedRules) -> list[Issue]:
    issues: list[Issue] = []
    checks = [
        (
            train,
            "training",
            rules.min_training_records,
            rules.max_training_records,
            "training_records",
        )
    ]
    if val is not None:
        checks.append(
            (
                val,
                "validation",
                rules.min_validation_records,
                rules.max_validation_records,
                "validation_records",
            )
        )
    for result, what, lo, hi, key in checks:
        n = result.records
        if lo is not None and n < lo:
            issues.append(
                _cap_issue(
                    rules,
                    f"min_{key}",
                    "too_few_records",
                    result.path,
                    f"{n:,} {what} records; at least {lo:,} are needed",
                )
            )
        if hi is not None and n > hi:
            issues.append(
                _cap_issue(
                    rules,
                    f"max_{key}",
                    "too_many_records",
                    result.path,
                    f"{n:,} {what} records; at most {hi:,} are allowed",
                )
            )
    total = train.records + (val.records if val else 0)
    cap = rules.max_total_records
    # without a validation file the total is the training count: say it once
    covered = (
        val is None
        and rules.max_training_records is not None
        and rules.max_training_records <= (cap or 0)
    )
    if cap is not None and total > cap and not covered:
        issues.append(
            _cap_issue(
                rules,
                "max_total_records",
                "too_many_records",
                None,
                f"{total:,} training + validation records; at most {rules.max_total_records:,} together",
            )
        )
    return issues


def _cap_issue(
    rules: ResolvedRules, field: str, code: str, file: str | None, message: str
) -> Issue:
    return Issue(
        code=code,
        severity=_limit_severity(rules, field),
        file=file,
        message=_limit_message(rules, field, message),
    )


def _limit_severity(rules: ResolvedRules, field: str) -> Severity:
    """Hard limits and default quotas are errors; unconfirmed figures are warnings."""
    return Severity.WARNING if rules.limit_kind(field) == "unconfirmed" else Severity.ERROR


def _limit_message(rules: ResolvedRules, field: str, message: str) -> str:
    kind = rules.limit_kind(field)
    if kind == "quota":
        return f"{message}: {rules.quota_text(field)} ({rules.cite(field)})"
    if kind == "unconfirmed":
        return f"{message}; this figure is unconfirmed, so the job may still pass ({rules.cite(field)})"
    return f"{message} ({rules.cite(field)})"


def _file_size_issue(
    result: ScanResult, max_bytes: int | None, rules: ResolvedRules, field: str
) -> list[Issue]:
    issues = []
    if result.records == 0 and not any(i.code in ("not_utf8",) for i in result.issues):
        issues.append(
            Issue(code="empty_file", file=result.path, message="the file holds no readable record")
        )
    size = os.path.getsize(result.path)
    if max_bytes is not None and size > max_bytes:
        issues.append(
            Issue(
                code="file_too_large",
                severity=_limit_severity(rules, field),
                file=result.path,
                message=_limit_message(rules, field, f"{size:,} bytes; at most {max_bytes:,}"),
            )
        )
    return issues


def _validation_presence(validation_file: Any, rules: ResolvedRules) -> list[Issue]:
    if validation_file is None and rules.validation == "required":
        return [
            Issue(
                code="validation_required",
                field="validation_file",
                message=f"{rules.method} on {rules.provider_display_name} needs a validation file ({rules.cite('validation')})",
            )
        ]
    if validation_file is not None and rules.validation == "unsupported":
        return [
            Issue(
                code="validation_not_supported",
                field="validation_file",
                message=f"{rules.model_id or rules.requested_model} takes no validation file ({rules.cite('validation')})",
            )
        ]
    return []


def _suffix_issues(suffix: str | None, rules: ResolvedRules) -> list[Issue]:
    if suffix is None:
        return []
    issues = []
    if rules.suffix_max_chars is not None and len(suffix) > rules.suffix_max_chars:
        issues.append(
            Issue(
                code="invalid_suffix",
                field="suffix",
                message=f"suffix {suffix!r} has {len(suffix)} characters; {rules.provider_display_name} allows at most {rules.suffix_max_chars} ({rules.cite('suffix_max_chars')})",
            )
        )
    if rules.suffix_pattern and not re.fullmatch(rules.suffix_pattern, suffix):
        issues.append(
            Issue(
                code="invalid_suffix",
                field="suffix",
                message=f"suffix {suffix!r} does not match {rules.suffix_pattern!r} ({rules.cite('suffix_pattern')})",
            )
        )
    return issues


def _batch_size_issues(batch_size: int | None, rules: ResolvedRules) -> list[Issue]:
    """A batch size the hyperparameter range allows but the per-record token table does not
    cover: the console may take it, the job can fail after it has started (Titan Text)."""
    table = rules.batch_token_limits
    if (
        batch_size is None
        or not table
        or any(r.min_batch <= batch_size <= r.max_batch for r in table)
    ):
        return []
    lo, hi = min(r.min_batch for r in table), max(r.max_batch for r in table)
    confirmed = rules.confirmed("batch_token_limits")
    return [
        Issue(
            code="batch_size_unsupported",
            severity=Severity.ERROR if confirmed else Severity.WARNING,
            field="hyperparameters.batch_size",
            message=f"batch_size={batch_size} is within the hyperparameter range the console "
            f"accepts, but the dataset requirements of {rules.model_id or rules.requested_model} "
            f"define per-record token limits only for batch sizes {lo}-{hi}, so the job can be "
            f"rejected after it has started; use a batch size from {lo} to {hi} (records are "
            f"checked against the tightest budget, {rules.token_limit(batch_size):,} tokens) "
            f"({rules.cite('batch_token_limits')})",
        )
    ]


def _epochs(value: Any, rules: ResolvedRules, records: int) -> tuple[int | None, str]:
    if isinstance(value, int):
        spec = rules.hyperparameters.get("epochs")
        given = spec is not None and value != spec.default
        return value, "given" if given else "default"
    heuristic = rules.auto_epochs
    if heuristic and records:
        n = heuristic.get("base", 3)
        if records * n < heuristic.get("min_target", 0):
            n = min(heuristic.get("max", n), heuristic["min_target"] // records)
        elif records * n > heuristic.get("max_target", 1 << 62):
            n = max(1, heuristic["max_target"] // records)
        return n, "auto heuristic"
    return None, ""


def _file_stats(result: ScanResult, duplicates: int, counter: Any, limit: int | None) -> FileStats:
    values = sorted(result.tokens)
    n = len(values)

    def pct(p: float) -> int:
        return values[min(n - 1, int(p * n))] if n else 0

    tokens = TokenStats(
        tokenizer=counter.name,
        exact=counter.exact,
        description=counter.description,
        total=sum(values),
        max=values[-1] if n else 0,
        mean=round(sum(values) / n, 1) if n else 0.0,
        p50=pct(0.5),
        p90=pct(0.9),
        p99=pct(0.99),
        trained=result.trained,
        limit=limit,
        over_limit=result.over_limit,
        near_limit=result.near_limit,
    )
    return FileStats(
        path=result.path,
        bytes=os.path.getsize(result.path),
        lines=result.lines,
        records=result.records,
        bom=result.bom,
        duplicates=duplicates,
        images=result.images,
        tokens=tokens,
    )


def _rules_summary(
    rules: ResolvedRules, tok: str, description: str, limit: int | None
) -> dict[str, Any]:
    fields = (
        "max_tokens_per_example",
        "max_input_tokens",
        "max_output_tokens",
        "min_training_records",
        "max_training_records",
        "max_validation_records",
        "max_total_records",
        "max_file_bytes",
    )
    summary: dict[str, Any] = {
        "model_id": rules.model_id,
        "formats": [f.value for f in rules.formats],
        "tokenizer": tok,
        "tokenizer_description": description,
        "token_limit_applied": limit,
    }
    for name in fields:
        value = getattr(rules, name)
        if value is not None:
            prov = rules.provenance.get(name)
            summary[name] = {
                "value": value,
                "source": prov.source if prov else "finetune_hub default",
                "as_of": prov.as_of.isoformat() if prov else None,
                "confirmed": prov.confirmed if prov else True,
            }
    return summary
