"""How the command line shows things: reports, rules and model tables, the console itself."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from finetune_hub.cli.output import shell_hint

if TYPE_CHECKING:
    from rich.console import Console

    from finetune_hub.checks.report import FileStats, ValidationReport
    from finetune_hub.issues import Issue
    from finetune_hub.rules.schema import ResolvedRules

#: Line width when stdout is not a terminal and COLUMNS is unset (rich would use 80).
PIPED_WIDTH = 120

#: Rule fields `rules --model` shows on their own lines rather than in the limits table.
SHOWN_APART = frozenset(
    {
        "formats",
        "tokenizer",
        "message_overhead",
        "reply_overhead",
        "roles",
        "hyperparameters",
        "quotas",
    }
)


def line(console: Console, text: str, style: str = "") -> None:
    """One unwrapped line (long lines stay whole when piped)."""
    console.print(text, style=style, soft_wrap=True)


def print_report(report: ValidationReport, console: Console) -> None:
    """Header, file and token statistics, then one table row per issue: errors first, each
    row led by its severity (so piped output keeps it), suggestions written as commands."""
    line(console, report.summary(), "bold green" if report.ok else "bold red")
    stats = report.stats
    for title, fs in (("training", stats.training), ("validation", stats.validation)):
        if fs is not None:
            _print_file_stats(title, fs, console)
    if stats.estimated_trained_tokens is not None:
        how = f"{stats.epochs} epochs, {stats.epochs_source}"
        line(console, f"  estimated trained tokens: {stats.estimated_trained_tokens:,} ({how})")
    issues = report.errors + report.warnings
    if issues and console.is_terminal:
        console.print(_issue_table(issues, stats.training.path))
    elif issues:  # piped: one whole line per issue, to grep and cut
        for issue in _ordered(issues):
            where = _where(issue, stats.training.path) or "-"
            fld = f"  {issue.field}" if issue.field else ""
            text = f"{issue.severity.value:<7}  {where:>5}  {issue.code}{fld}  "
            line(console, text + shell_hint(issue.message), _STYLE[issue.severity.value])
    for code, n in sorted(report.suppressed.items(), key=lambda c: report._severity_of(c[0])):
        severity = report._severity_of(code)
        line(console, f"{severity}: ... and {n:,} more {code}", _STYLE[severity])


def _print_file_stats(title: str, fs: FileStats, console: Console) -> None:
    from finetune_hub.checks.report import _file_line, _token_line

    line(console, f"  {title}: {_file_line(fs)}")
    if fs.tokens is not None:
        line(console, f"    tokens: {_token_line(fs.tokens)}", "dim")


_STYLE = {"error": "red", "warning": "yellow"}


def _ordered(issues: list[Issue]) -> list[Issue]:
    """Errors first, then warnings; each in file and line order."""
    return sorted(issues, key=lambda i: (not i.is_error, i.file or "", i.line or 0))


def _issue_table(issues: list[Issue], training_path: str) -> Any:
    from rich.text import Text

    table = new_table("severity", "line", "code", "field", "message")
    table.columns[1].justify = "right"
    for column in table.columns[:3]:
        column.no_wrap = True
    for issue in _ordered(issues):
        style = _STYLE[issue.severity.value]
        table.add_row(
            Text(issue.severity.value, style=style),
            _where(issue, training_path),
            Text(issue.code, style=style),
            issue.field or "",
            shell_hint(issue.message),
        )
    return table


def print_estimate(estimate: Any, console: Console) -> None:
    """A `CostEstimate` as `print(estimate)` shows it, unknown amounts in yellow."""
    for text in estimate.lines():
        style = "bold" if text.startswith("cost estimate") else ""
        if "unknown" in text or "UNCONFIRMED" in text:
            style = "yellow"
        line(console, text, style)


def _where(issue: Issue, training_path: str) -> str:
    """The line number, prefixed with the file name for issues outside the training file."""
    line = str(issue.line or "")
    if issue.file and issue.file != training_path:
        name = os.path.basename(issue.file)
        return f"{name}:{line}" if line else name
    return line


def print_models(provider: str, catalog: Any, console: Console) -> None:
    """One row per model the provider's rules list, with its state today and lifecycle dates."""
    from finetune_hub.rules.lifecycle import today

    models = catalog.models(provider)
    if not models:
        line(console, f"{provider}: no models listed; its generic rules apply to any model")
        return
    day = today()
    pinfo = catalog.provider_data(provider).get("provider", {})
    headers = ("id", "aliases", "state", "methods", "new jobs end", "shutdown", "replacement")
    table = new_table(*headers, title=f"{provider} models on {day}")
    for m in models:
        end = m.get("new_jobs_end") or pinfo.get("new_jobs_end")
        shutdown = m.get("shutdown_on") or m.get("retired_on")
        state = m.get("status", "active")
        if shutdown is not None and shutdown <= day:
            state, end = "shut down", None
        elif end is not None and end <= day:
            state = "no new jobs"
        elif m.get("deprecated_on") is not None and m["deprecated_on"] <= day:
            state = "deprecated"
        aliases, methods = ", ".join(m.get("aliases", [])), ", ".join(m.get("methods", {}))
        style = {"active": "", "shut down": "red", "no new jobs": "red"}.get(state, "yellow")
        row = (m["id"], aliases, state, methods, str(end or ""), str(shutdown or ""))
        table.add_row(*row, m.get("replacement", ""), style=style)
    console.print(table)


def print_rules(rules: ResolvedRules, notes: list[Issue], console: Console) -> None:
    """Limits (with their kind: hard limit, default quota or unconfirmed), formats, tokenizer,
    roles, hyperparameters, lifecycle dates, notices, and every source as a link."""
    refs: dict[Any, int] = {}

    def ref(prov: Any) -> str:
        if prov is None:
            return "finetune_hub default"
        nums = []
        for src in prov.sources:
            refs.setdefault(src, len(refs) + 1)
            nums.append(f"[{refs[src]}]")
        return " ".join(nums) + f" read {prov.as_of}"

    name = rules.model_id or f"{rules.requested_model} (not listed: generic rules)"
    if rules.model_id and rules.requested_model != rules.model_id:
        name += f" (requested as {rules.requested_model})"
    head = f"{rules.provider_display_name} {name} ({rules.method}), status: {rules.model_status}"
    line(console, head, "bold")
    limits = new_table("rule", "value", "kind", "sources", title="limits")
    for field in _limit_fields(rules):
        kind = _KIND_TEXT[rules.limit_kind(field)]
        if kind == "hard limit" and not _is_limit(field):
            kind = "rule"
        if field in rules.quotas and rules.limit_kind(field) == "quota":
            kind += f": {rules.quotas[field]}"
        elif field in rules.declared_quotas:
            kind = "your declared quota"
        style = "" if rules.confirmed(field) else "yellow"
        value = _format_rule(field, getattr(rules, field))
        limits.add_row(field, value, kind, ref(rules.provenance.get(field)), style=style)
    console.print(limits)
    formats = ", ".join(f"{f.value} ({f.label})" for f in rules.formats) or "none"
    line(console, f"formats: {formats}")
    tok = rules.provenance.get("tokenizer")
    line(console, f"tokenizer: {_tokenizer_text(rules)} {ref(tok)}")
    line(console, f"roles: {_roles_text(rules)}")
    if rules.hyperparameters:
        hp = new_table(
            "name", "provider name", "range", "default", "sources", title="hyperparameters"
        )
        for s in rules.hyperparameters.values():
            default = "" if s.default is None else str(s.default)
            kind = "" if s.provenance.confirmed else "UNCONFIRMED "
            style = "" if s.provenance.confirmed else "yellow"
            hp.add_row(
                s.name,
                s.provider_name,
                s.range_text(),
                default,
                kind + ref(s.provenance),
                style=style,
            )
        console.print(hp)
    for text, prov in _lifecycle_lines(rules):
        line(console, f"{text} {ref(prov)}")
    for note in sorted(notes, key=lambda n: not n.is_error):
        text = f"{note.severity.value}: {shell_hint(note.message)} [{note.code}]"
        line(console, text, "red" if note.is_error else "yellow")
    _print_prices(rules, console, ref)
    if refs:
        _print_sources(refs, console)


_KIND_TEXT = {"hard": "hard limit", "quota": "default quota", "unconfirmed": "UNCONFIRMED"}


def _is_limit(field: str) -> bool:
    return field.startswith(("min_", "max_")) or field in ("batch_token_limits", "suffix_max_chars")


def _lifecycle_lines(rules: ResolvedRules) -> list[tuple[str, Any]]:
    out = []
    for field, label in (
        ("deprecated_on", "deprecated on"),
        ("restricted_on", "restricted from"),
        ("new_jobs_end", "new fine-tuning jobs end"),
        ("shutdown_on", "shuts down" if rules.shutdown_word == "shuts down" else "retires"),
    ):
        value = getattr(rules, field)
        if value is None:
            continue
        flag = "" if rules.confirmed(field) else " (UNCONFIRMED)"
        extra = (
            f" ({rules.restriction} only)" if field == "restricted_on" and rules.restriction else ""
        )
        out.append((f"lifecycle: {label} {value}{extra}{flag}", rules.provenance.get(field)))
    if rules.replacement:
        out.append(
            (
                f"lifecycle: replacement named by the provider: {rules.replacement}",
                rules.provenance.get("replacement"),
            )
        )
    return out


def _print_prices(rules: ResolvedRules, console: Console, ref: Any) -> None:
    """The prices the rules hold for this model and method (docs/costs.md), with sources."""
    from finetune_hub.rules.schema import PRICE_FIELDS

    shown = [
        f
        for f in sorted(PRICE_FIELDS)
        if f in rules.provenance and getattr(rules, f) not in (None, {}, [], "")
    ]
    if not shown:
        return
    table = new_table("price", "value", "sources", title="prices")
    for field in shown:
        value = getattr(rules, field)
        if field == "serving":
            value = "; ".join(p.label or p.kind for p in value)
        style = "" if rules.confirmed(field) else "yellow"
        flag = "" if rules.confirmed(field) else "UNCONFIRMED "
        table.add_row(
            field, _format_rule(field, value), flag + ref(rules.provenance[field]), style=style
        )
    console.print(table)


def _print_sources(refs: dict[Any, int], console: Console) -> None:
    """Every source once, numbered, its URL printed as a link."""
    from rich.text import Text

    line(console, "sources", "bold")
    for src, n in refs.items():
        text = Text(f"  [{n}] {src.title}")
        if src.url:
            text.append("\n      ")
            text.append(src.url, style=f"link {src.url}" if src.url.startswith("http") else "")
        console.print(text, soft_wrap=True)


def print_stale(found: list[tuple[str, str, Any]], days: int, day: Any, console: Console) -> None:
    """Facts read more than `days` days before `day`, oldest first, with their sources."""
    if not found:
        line(console, f"no fact was read more than {days} days before {day}")
        return
    table = new_table(
        "provider",
        "entry",
        "read",
        "days",
        "sources",
        title=f"facts read more than {days} days ago",
    )
    for provider, where, prov in sorted(found, key=lambda f: (f[2].as_of, f[0], f[1])):
        links = "; ".join(s.url or s.title for s in prov.sources) or "unknown"
        table.add_row(provider, where, str(prov.as_of), str((day - prov.as_of).days), links)
    console.print(table)
    line(
        console,
        f"{len(found)} fact(s); re-read their sources and update as_of in finetune_hub/rules/",
    )


def print_live_diff(diff: Any, display_name: str, console: Console) -> None:
    """What the provider says it can tune today against the rules data."""
    line(
        console,
        f"{display_name}: {len(diff.offered)} model(s) tunable per its API on {diff.day}",
        "bold",
    )
    if diff.agrees:
        line(console, f"the rules agree with the provider ({len(diff.matched)} model(s))", "green")
        return
    for text in diff.lines():
        line(console, f"  {text}", "yellow")
    if diff.matched:
        line(console, f"agreeing: {', '.join(diff.matched)}")


def _limit_fields(rules: ResolvedRules) -> list[str]:
    """Rule fields the rules data sets, or whose value differs from finetune_hub's default."""
    from finetune_hub.rules.schema import BLOCK_FIELDS, PRICE_FIELDS

    shown = []
    for field, info in type(rules).model_fields.items():
        value = getattr(rules, field)
        apart = field in SHOWN_APART or field in PRICE_FIELDS  # prices: their own table
        if field not in BLOCK_FIELDS or apart or value in (None, [], {}):
            continue
        if field in rules.provenance or value != info.get_default(call_default_factory=True):
            shown.append(field)
    return shown


def new_table(*headers: str, title: str | None = None) -> Any:
    """A plain-looking table; long cells wrap rather than being cut."""
    from rich import box
    from rich.table import Table

    style = {"header_style": "bold", "title_style": "bold", "title_justify": "left"}
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, **style)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _format_rule(field: str, value: Any) -> str:
    if field == "batch_token_limits":
        return "; ".join(
            f"batch {r.min_batch}-{r.max_batch}: {r.max_tokens:,} tokens" for r in value
        )
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _tokenizer_text(rules: ResolvedRules) -> str:
    counts = ((rules.message_overhead, "message"), (rules.reply_overhead, "example"))
    extra = "".join(f", +{n} per {what}" for n, what in counts if n)
    flag = "" if rules.confirmed("tokenizer") else " (UNCONFIRMED estimate)"
    return f"{rules.tokenizer}{extra}{flag}"


def _roles_text(rules: ResolvedRules) -> str:
    r = rules.roles
    lists = (("allowed", r.allowed), ("first", r.first), ("last", r.last))
    flags = (("user/assistant alternate", r.alternate), ("system only first", r.system_only_first))
    parts = [f"{name} {', '.join(roles) or 'any'}" for name, roles in lists]
    return "; ".join(parts + [text for text, on in flags if on])


# -- entry point --------------------------------------------------------------------------------
def make_console() -> Console:
    """A rich console: colours in a terminal, plain text when piped or when NO_COLOR is set."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH
    color = None if plain else "auto"
    return Console(highlight=False, markup=False, emoji=False, color_system=color, width=width)
