"""The `finetune-hub` command: validate, convert and split training data, and show the rules.

    finetune-hub validate train.jsonl --provider openai --model gpt-4.1-mini --hp epochs=3
    finetune-hub convert chat.jsonl gemini.jsonl --to gemini
    finetune-hub split all.jsonl train.jsonl valid.jsonl --provider bedrock --model amazon.titan-text-lite-v1
    finetune-hub rules --provider bedrock --model amazon.titan-text-lite-v1

Exit codes: 0 success, 1 the data breaks the backend's rules, 2 usage error or a file/provider
that cannot be used. Output is coloured in a terminal and plain text when piped or NO_COLOR is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from finetune_hub.issues import Issue
    from finetune_hub.report import FileStats, ValidationReport
    from finetune_hub.rules.schema import ResolvedRules

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
#: Line width when stdout is not a terminal and COLUMNS is unset (rich would use 80).
PIPED_WIDTH = 120

#: Rule fields `rules --model` shows on their own lines rather than in the limits table.
SHOWN_APART = frozenset(
    {"formats", "tokenizer", "message_overhead", "reply_overhead", "roles", "hyperparameters"}
)


class UsageError(Exception):
    """A command-line argument that argparse accepted but the command cannot use."""


# -- argument parsing ---------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A hyperparameter value from the command line: int, then float, then bool, else the string."""
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from finetune_hub import __version__

    parser = argparse.ArgumentParser(
        prog="finetune-hub",
        description="Check fine-tuning data against a backend's rules; convert and split it.",
        epilog="Exit codes: 0 ok, 1 the data breaks the rules, 2 usage or file error.",
    )
    parser.add_argument("--version", action="version", version=f"finetune-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a training file against a backend's rules")
    p.add_argument("file", help="training file (.jsonl or .jsonl.gz)")
    _add_target(p, required=True)
    p.add_argument("--validation-file", metavar="FILE", help="validation file to check too")
    hp_help = "hyperparameter in finetune_hub's names, repeatable (epochs=3)"
    p.add_argument("--hp", action="append", type=parse_hp, default=[], metavar="K=V", help=hp_help)
    p.add_argument("--format", help="data format (default: detected), see `formats`")
    p.add_argument("--suffix", help="fine-tuned model name suffix to check")
    p.add_argument("--tokenizer", metavar="SPEC", help="o200k_base, chars:4:1, hf:PATH, ...")
    p.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="processes for big files"
    )
    p.add_argument(
        "--max-issues", type=positive_int, default=20, metavar="N", help="issues listed per code"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("convert", help="convert a file to another record format")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to", required=True, metavar="FORMAT", help="target format, see `formats`")
    p.add_argument("--from", dest="source_format", metavar="FORMAT", help="default: detected")
    p.add_argument("--system-prompt", metavar="TEXT", help="system prompt for every record")
    p.add_argument("--template", metavar="TEXT", help="prompt template for instruction data")
    p.add_argument("--max-chars", type=positive_int, metavar="N", help="skip longer records")
    p.add_argument("--max-tokens", type=positive_int, metavar="N", help="skip longer records")
    p.add_argument("--tokenizer", metavar="SPEC", help="token counter for --max-tokens")
    p.set_defaults(handler=cmd_convert)

    p = sub.add_parser("split", help="split a file into training and validation files")
    for name in ("src", "train", "valid"):
        p.add_argument(name)
    size_help = "fraction (0.1) or record count (200)"
    p.add_argument(
        "--validation-size", type=parse_size, default=0.1, metavar="SIZE", help=size_help
    )
    p.add_argument("--seed", type=int, default=0)
    _add_target(p, required=False)
    p.set_defaults(handler=cmd_split)

    p = sub.add_parser("rules", help="list a provider's models or show one model's rules")
    p.add_argument("--provider", required=True, metavar="P")
    p.add_argument("--model", metavar="M", help="show this model's resolved rules")
    p.add_argument("--method", default="sft", help="training method (default: sft)")
    p.set_defaults(handler=cmd_rules)

    sub.add_parser("formats", help="list the data formats").set_defaults(handler=cmd_formats)

    from finetune_hub.cli_jobs import add_job_commands

    add_job_commands(sub)
    return parser


def _add_target(p: argparse.ArgumentParser, *, required: bool) -> None:
    providers = "openai, azure-openai, azure-foundry, bedrock, vertex or local"
    p.add_argument("--provider", required=required, metavar="P", help=providers)
    p.add_argument("--model", required=required, metavar="M", help="base model id or alias")
    p.add_argument("--method", default="sft", help="training method (default: sft)")


# -- commands -----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """Validate a training file; exit 1 when the report has errors."""
    from finetune_hub.validation import validate

    report = validate(
        args.file,
        args.provider,
        args.model,
        args.method,
        validation_file=args.validation_file,
        hyperparameters=dict(args.hp) or None,
        format=_data_format(args.format),
        suffix=args.suffix,
        tokenizer=args.tokenizer,
        max_issues_per_code=args.max_issues,
        workers=args.workers,
    )
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_report(report, console)
    return EXIT_OK if report.ok else EXIT_INVALID


def cmd_convert(args: argparse.Namespace, console: Console) -> int:
    """Convert SRC to another format and print what was converted and skipped."""
    from finetune_hub.data.convert import convert

    if args.max_tokens and not args.tokenizer:
        raise UsageError("--max-tokens needs --tokenizer SPEC (e.g. o200k_base or chars:4:1)")
    tokenizer = None
    if args.tokenizer:
        from finetune_hub.data.tokens import get_counter

        tokenizer = get_counter(args.tokenizer)
    summary = convert(
        args.src,
        args.dst,
        args.to,
        source_format=args.source_format,
        system_prompt=args.system_prompt,
        template=args.template,
        max_tokens=args.max_tokens,
        max_chars=args.max_chars,
        tokenizer=tokenizer,
    )
    _line(console, str(summary))
    return EXIT_OK


def cmd_split(args: argparse.Namespace, console: Console) -> int:
    """Split SRC into training and validation files, capped by the backend's rules when given."""
    from finetune_hub.splitting import split

    if (args.provider is None) != (args.model is None):
        raise UsageError("--provider and --model go together")
    summary = split(
        args.src,
        args.train,
        args.valid,
        validation_size=args.validation_size,
        seed=args.seed,
        provider=args.provider,
        base_model=args.model,
        method=args.method,
    )
    _line(console, str(summary))
    return EXIT_OK


def cmd_rules(args: argparse.Namespace, console: Console) -> int:
    """List a provider's models, or show one model's rules (exit 1 when a notice is an error)."""
    from finetune_hub.rules import default_catalog, resolve

    if args.model is None:
        print_models(args.provider, default_catalog().models(args.provider), console)
        return EXIT_OK
    rules, notes = resolve(args.provider, args.model, args.method)
    print_rules(rules, notes, console)
    return EXIT_INVALID if any(n.is_error for n in notes) else EXIT_OK


def cmd_formats(args: argparse.Namespace, console: Console) -> int:
    """List the data formats finetune_hub reads and writes."""
    from finetune_hub.data.formats import DataFormat

    table = _table("format", "description")
    for fmt in DataFormat:
        table.add_row(fmt.value, fmt.label)
    console.print(table)
    return EXIT_OK


# -- display ------------------------------------------------------------------------------------
def _line(console: Console, text: str, style: str = "") -> None:
    """One unwrapped line (long lines stay whole when piped)."""
    console.print(text, style=style, soft_wrap=True)


def print_report(report: ValidationReport, console: Console) -> None:
    """Header, file and token statistics, then one table row per issue."""
    _line(console, report.summary(), "bold green" if report.ok else "bold red")
    stats = report.stats
    for title, fs in (("training", stats.training), ("validation", stats.validation)):
        if fs is not None:
            _print_file_stats(title, fs, console)
    if stats.estimated_trained_tokens is not None:
        how = f"{stats.epochs} epochs, {stats.epochs_source}"
        _line(console, f"  estimated trained tokens: {stats.estimated_trained_tokens:,} ({how})")
    issues = report.errors + report.warnings
    if issues:
        console.print(_issue_table(issues, stats.training.path))
    for code, n in sorted(report.suppressed.items()):
        style = "red" if report._severity_of(code) == "error" else "yellow"
        _line(console, f"... and {n:,} more {code}", style)


def _print_file_stats(title: str, fs: FileStats, console: Console) -> None:
    from finetune_hub.report import _file_line, _token_line

    _line(console, f"  {title}: {_file_line(fs)}")
    if fs.tokens is not None:
        _line(console, f"    tokens: {_token_line(fs.tokens)}", "dim")


def _issue_table(issues: list[Issue], training_path: str) -> Any:
    from rich.text import Text

    table = _table("line", "code", "field", "message")
    table.columns[0].justify = "right"
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    for issue in sorted(issues, key=lambda i: (i.file or "", i.line or 0, not i.is_error)):
        code = Text(issue.code, style="red" if issue.is_error else "yellow")
        table.add_row(_where(issue, training_path), code, issue.field or "", issue.message)
    return table


def _where(issue: Issue, training_path: str) -> str:
    """The line number, prefixed with the file name for issues outside the training file."""
    line = str(issue.line or "")
    if issue.file and issue.file != training_path:
        name = os.path.basename(issue.file)
        return f"{name}:{line}" if line else name
    return line


def print_models(provider: str, models: list[dict[str, Any]], console: Console) -> None:
    """One row per model the provider's rules list."""
    if not models:
        _line(console, f"{provider}: no models listed; its generic rules apply to any model")
        return
    table = _table("id", "aliases", "status", "methods", "shutdown", title=f"{provider} models")
    for m in models:
        status = m.get("status", "active")
        aliases, methods = ", ".join(m.get("aliases", [])), ", ".join(m.get("methods", {}))
        shutdown = str(m.get("shutdown_on") or "")
        style = "" if status == "active" else "yellow"
        table.add_row(m["id"], aliases, status, methods, shutdown, style=style)
    console.print(table)


def print_rules(rules: ResolvedRules, notes: list[Issue], console: Console) -> None:
    """Limits with their sources, formats, tokenizer, roles, hyperparameters and notices."""
    name = rules.model_id or f"{rules.requested_model} (not listed: generic rules)"
    if rules.model_id and rules.requested_model != rules.model_id:
        name += f" (requested as {rules.requested_model})"
    head = f"{rules.provider_display_name} {name} ({rules.method}), status: {rules.model_status}"
    _line(console, head, "bold")
    limits = _table("rule", "value", "source", title="limits")
    for field in _limit_fields(rules):
        style = "" if rules.confirmed(field) else "yellow"
        value = _format_rule(field, getattr(rules, field))
        limits.add_row(field, value, rules.cite(field), style=style)
    console.print(limits)
    formats = ", ".join(f"{f.value} ({f.label})" for f in rules.formats) or "none"
    _line(console, f"formats: {formats}")
    _line(console, f"tokenizer: {_tokenizer_text(rules)}")
    _line(console, f"roles: {_roles_text(rules)}")
    if rules.hyperparameters:
        hp = _table("name", "provider name", "range", "default", "source", title="hyperparameters")
        for s in rules.hyperparameters.values():
            default = "" if s.default is None else str(s.default)
            style = "" if s.provenance.confirmed else "yellow"
            row = (s.name, s.provider_name, s.range_text(), default, s.provenance.cite())
            hp.add_row(*row, style=style)
        console.print(hp)
    for note in notes:
        text = f"{note.severity.value}: {note.message} [{note.code}]"
        _line(console, text, "red" if note.is_error else "yellow")


def _limit_fields(rules: ResolvedRules) -> list[str]:
    """Rule fields the rules data sets, or whose value differs from finetune_hub's default."""
    from finetune_hub.rules.schema import BLOCK_FIELDS

    shown = []
    for field, info in type(rules).model_fields.items():
        value = getattr(rules, field)
        if field not in BLOCK_FIELDS or field in SHOWN_APART or value in (None, [], {}):
            continue
        if field in rules.provenance or value != info.get_default(call_default_factory=True):
            shown.append(field)
    return shown


def _table(*headers: str, title: str | None = None) -> Any:
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
    return f"{rules.tokenizer}{extra} ({rules.cite('tokenizer')})"


def _roles_text(rules: ResolvedRules) -> str:
    r = rules.roles
    lists = (("allowed", r.allowed), ("first", r.first), ("last", r.last))
    flags = (("user/assistant alternate", r.alternate), ("system only first", r.system_only_first))
    parts = [f"{name} {', '.join(roles) or 'any'}" for name, roles in lists]
    return "; ".join(parts + [text for text, on in flags if on])


def _data_format(value: str | None) -> Any:
    if value is None:
        return None
    from finetune_hub.data.formats import DataFormat

    try:
        return DataFormat(value)
    except ValueError:
        known = ", ".join(f.value for f in DataFormat)
        raise UsageError(f"unknown format {value!r}; known formats: {known}") from None


# -- entry point --------------------------------------------------------------------------------
def make_console() -> Console:
    """A rich console: colours in a terminal, plain text when piped or when NO_COLOR is set."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH
    color = None if plain else "auto"
    return Console(highlight=False, markup=False, emoji=False, color_system=color, width=width)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    from finetune_hub.errors import FinetuneHubError

    handler: Callable[[argparse.Namespace, Console], int] = args.handler
    try:
        return handler(args, make_console())
    except (FinetuneHubError, UsageError, OSError, ValueError) as exc:
        print(f"finetune-hub {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
