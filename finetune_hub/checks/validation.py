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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from finetune_hub.checks import autoconvert
from finetune_hub.checks.arguments import check_arguments
from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.checks.report import (
    FileStats,
    TokenStats,
    ValidationReport,
    ValidationStats,
    token_summary,
)
from finetune_hub.checks.scan import (
    Scanner,
    ScanResult,
    ScanSpec,
    duplicate_pairs,
    merge_results,
    scan_range,
)
from finetune_hub.data.formats import DataFormat, candidate_formats
from finetune_hub.data.mapped import mapped_copy
from finetune_hub.data.reader import JsonlReader, is_gzip
from finetune_hub.data.tokens import get_counter
from finetune_hub.errors import DataFileError
from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.catalog import Catalog, default_catalog
from finetune_hub.rules.schema import ResolvedRules

#: Files smaller than this are never split across processes.
MIN_PARALLEL_BYTES = 8 * 1024 * 1024
_DETECT_SAMPLE = 200
_DETECT_MAX_LINES = 1_000_000  # format detection gives up on a file of unreadable lines


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
    mapping: Mapping[str, str] | None = None,
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

    A file in a format the rules convert automatically (`auto_convert`, e.g. chat -> Gemini
    contents on Vertex AI) is checked as the converted records, with a warning saying it will
    be converted, or an error naming what the conversion would lose. `mapping` reads the
    format's fields from other columns (`{"instruction": "text"}`, as `fh.convert` takes it).
    """
    check_arguments(locals())  # a wrong type names the argument (JobSpecError)
    with ExitStack() as copies:  # converted copies live until the report is made
        return _validate(
            copies,
            training_file,
            provider,
            base_model,
            method,
            validation_file=validation_file,
            hyperparameters=hyperparameters,
            format=format,
            suffix=suffix,
            tokenizer=tokenizer,
            max_issues_per_code=max_issues_per_code,
            workers=workers,
            catalog=catalog,
            today=today,
            quotas=quotas,
            mapping=mapping,
        )


def _validate(
    copies: ExitStack,
    training_file: str | os.PathLike[str],
    provider: str,
    base_model: str,
    method: str,
    *,
    validation_file: str | os.PathLike[str] | None,
    hyperparameters: Mapping[str, Any] | None,
    format: DataFormat | str | None,
    suffix: str | None,
    tokenizer: str | None,
    max_issues_per_code: int,
    workers: int,
    catalog: Catalog | None,
    today: dt.date | None,
    quotas: Mapping[str, int] | None,
    mapping: Mapping[str, str] | None = None,
) -> ValidationReport:
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

    labels: dict[str, str] = {}  # converted copy -> the user's file, for issues and stats
    train_map: list[Issue] = []  # a mapped column no record of the file has
    val_map: list[Issue] = []
    if mapping:  # read through the column mapping: a copy with the same line numbers
        training_file, train_map = _mapped(copies, training_file, mapping, labels)
        if validation_file is not None:
            validation_file, val_map = _mapped(copies, validation_file, mapping, labels)
    fmt, fmt_issues = decide_format(
        training_file, rules, format, label=labels.get(str(training_file))
    )
    train_path, scan_fmt, fmt_issues = _converted(
        copies, training_file, fmt, rules, train_map + fmt_issues, labels, max_issues_per_code
    )
    train = _scan_file(train_path, scan_fmt, rules, tok, batch_size, max_issues_per_code, workers)
    files = [(train, fmt_issues, rules.max_file_bytes, "max_file_bytes")]
    val = vfmt = None
    if validation_file is not None:
        vfmt, vfmt_issues = decide_format(
            validation_file, rules, format, label=labels.get(str(validation_file))
        )
        val_path, val_fmt, vfmt_issues = _converted(
            copies, validation_file, vfmt, rules, val_map + vfmt_issues, labels, max_issues_per_code
        )
        val = _scan_file(val_path, val_fmt, rules, tok, batch_size, max_issues_per_code, workers)
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
        if result.path in labels:  # padding lines of a converted copy are no blank lines
            padding = ("blank_line", "blank_lines_skipped")  # one by one, or a long run
            result.issues = [i for i in result.issues if i.code not in padding]
            for code in padding:
                result.counts.pop(code, None)
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
        tokens_per_epoch=train.capped_total,
        estimated_trained_tokens=train.capped_total * epochs if epochs else None,
    )
    issues = _apply_severity_overrides(issues, rules)
    if labels:
        issues = [_relabel(i, labels) for i in issues]
        for file_stats in (stats.training, stats.validation):
            if file_stats is not None and file_stats.path in labels:
                file_stats.path = labels[file_stats.path]
    return ValidationReport(
        provider=provider,
        base_model=base_model,
        method=method,
        format=autoconvert.planned_target(fmt, rules) or fmt,
        validation_format=(autoconvert.planned_target(vfmt, rules) or vfmt) if vfmt else None,
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
def decide_format(
    path: str | os.PathLike[str],
    rules: ResolvedRules,
    given: DataFormat | str | None,
    *,
    label: str | None = None,
) -> tuple[DataFormat, list[Issue]]:
    """The file's format (given, else the accepted one most records match, else the most common
    first guess), with an issue when the rules do not take it and do not convert it either.
    `label` is the file the issues name, when `path` is a copy of it (a mapped copy): the
    user's file, which a suggestion such as `fh.convert(...)` must take."""
    label = label or str(path)
    if given is not None:
        fmt = DataFormat(given)
    else:
        votes: dict[DataFormat, int] = {}
        first_choice: dict[DataFormat, int] = {}
        detect = JsonlReader(path, max_lines=_DETECT_MAX_LINES, max_bytes=_read_cap(rules))
        for n, (_line, _raw, record) in enumerate(detect):
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
                    message="no record has a known training-data shape (see docs/data-formats.md); "
                    "a file whose columns have other names is read with a mapping of field to "
                    "column, e.g. mapping={'instruction': 'text', 'output': 'output'}",
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
    if fmt is DataFormat.PROMPTS and fmt not in rules.formats:
        return fmt, [
            Issue(
                code="unsupported_format",
                file=label,
                message="this file holds evaluation prompts (task_id/input, input or prompt) and "
                "no answers to train on: ask a model with them, "
                f"fh.evaluate(model, {label!r}, scorer=...)",
            )
        ]
    if fmt not in rules.formats and autoconvert.planned_target(fmt, rules) is None:
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


def _converted(
    copies: ExitStack,
    path: str | os.PathLike[str],
    fmt: DataFormat,
    rules: ResolvedRules,
    issues: list[Issue],
    labels: dict[str, str],
    cap: int,
) -> tuple[str | os.PathLike[str], DataFormat, list[Issue]]:
    """The path to scan and its format: `path` as it is, or a converted copy (line N = line N of
    `path`) in the target format when the rules convert `fmt` automatically. Adds the
    conversion's issue and what the reader said about the original (at most `cap` per code)."""
    target = autoconvert.planned_target(fmt, rules)
    if target is None:
        return path, fmt, issues
    if not Path(path).exists():
        raise DataFileError(f"{path}: no such file")
    conv = copies.enter_context(autoconvert.converted_copy(path, fmt, target, keep_lines=True))
    labels[conv.path] = labels.get(str(path), str(path))
    listed: dict[str, int] = {}
    read = []
    for issue in conv.reader_issues:
        listed[issue.code] = listed.get(issue.code, 0) + 1
        if listed[issue.code] <= cap:
            read.append(issue)
    return conv.path, target, [*issues, autoconvert.conversion_issue(conv, rules), *read]


def _mapped(
    copies: ExitStack,
    path: str | os.PathLike[str],
    mapping: Mapping[str, str],
    labels: dict[str, str],
) -> tuple[str, list[Issue]]:
    """A copy of `path` read through `mapping` (its issues name `path`, through `labels`), and
    an error for each mapped column that no JSON-object record of `path` has: a typo or the
    wrong file, which the format's own checks do not always catch (an instruction record
    without its instruction still scans) and whose messages would name the field, not the
    column. The columns are collected while the copy is written: no second pass."""
    if not Path(path).exists():
        raise DataFileError(f"{path}: no such file")
    columns: set[str] = set()
    copy = copies.enter_context(mapped_copy(path, mapping, columns=columns))
    labels[copy] = str(path)
    return copy, _mapping_issues(str(path), mapping, columns)


#: How many of the records' columns a `mapping_column_missing` message lists.
_SHOWN_COLUMNS = 12


def _mapping_issues(label: str, mapping: Mapping[str, str], columns: set[str]) -> list[Issue]:
    if not columns:  # no JSON object at all: the scan reports the lines themselves
        return []
    shown = ", ".join(sorted(columns)[:_SHOWN_COLUMNS])
    more = ", ..." if len(columns) > _SHOWN_COLUMNS else ""
    return [
        Issue(
            code="mapping_column_missing",
            file=label,
            field=f"mapping.{field}",
            message=f"the mapping reads {field} from the column {column!r}, which no record "
            f"has (the records' columns: {shown}{more}); map {field} to a column the records "
            f"have: mapping={{{field!r}: 'COLUMN'}}",
        )
        for field, column in mapping.items()
        if column not in columns
    ]


def _relabel(issue: Issue, labels: dict[str, str]) -> Issue:
    if issue.file in labels:
        return issue.model_copy(update={"file": labels[issue.file]})
    return issue


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
        max_bytes=_read_cap(rules),
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


def _read_cap(rules: ResolvedRules) -> int | None:
    """Where reading a .gz stops: past the larger file-size cap, the file is too large either
    way (a decompression bomb stops there instead of being read to its end)."""
    caps = [c for c in (rules.max_file_bytes, rules.max_validation_file_bytes) if c]
    return max(caps) if caps else None


def _duplicates(result: ScanResult, other: ScanResult | None, cap: int) -> tuple[list[Issue], int]:
    """Duplicate records within a file (or, with `other`, validation records also in training)."""
    issues: list[Issue] = []
    count = 0
    code = "validation_in_training" if other else "duplicate_record"
    lines = result.hash_lines
    first_lines = other.hash_lines if other else lines
    for i, j in duplicate_pairs(result.hashes, other.hashes if other else None):
        line, first = lines[i], first_lines[j]
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
    # a .gz is measured on its decompressed bytes: what the provider receives
    size = result.bytes if result.compressed else os.path.getsize(result.path)
    if max_bytes is not None and (size > max_bytes or result.over_max_bytes):
        what = f"{size:,} bytes"
        if result.compressed:
            packed = os.path.getsize(result.path)
            more = "more than " if result.over_max_bytes else ""
            what = f"{more}{size:,} bytes once decompressed ({packed:,} compressed)"
        stop = (
            "; reading stopped there and the rest was not checked" if result.over_max_bytes else ""
        )
        issues.append(
            Issue(
                code="file_too_large",
                severity=_limit_severity(rules, field),
                file=result.path,
                message=_limit_message(rules, field, f"{what}; at most {max_bytes:,}{stop}"),
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
    tokens = TokenStats(
        tokenizer=counter.name,
        exact=counter.exact,
        description=counter.description,
        **token_summary(result.tokens),
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
