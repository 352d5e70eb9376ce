"""The `finetune-hub` command: validate, convert and split training data, and show the rules.

    finetune-hub validate train.jsonl --provider openai --model gpt-4.1-mini --hp epochs=3
    finetune-hub convert chat.jsonl gemini.jsonl --to gemini
    finetune-hub split all.jsonl train.jsonl valid.jsonl --provider bedrock --model amazon.titan-text-lite-v1
    finetune-hub rules --provider bedrock --model amazon.titan-text-lite-v1
    finetune-hub rules --stale 30
    finetune-hub rules check --live --provider bedrock
    finetune-hub cost train.jsonl --provider azure-openai --model gpt-4.1 --option training_type=GlobalStandard

Every command takes `--json` (valid JSON on stdout, whatever happens), and a closed pipe
(`| head`) ends it quietly. docs/cli.md describes every command and flag.

Exit codes: 0 success, 1 the data breaks the backend's rules, 2 usage error or a file/provider
that cannot be used (every provider error is one line), 3 an unexpected internal error (one line;
`--debug` shows the traceback). Output is coloured in a terminal and plain text when piped or NO_COLOR is set.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from finetune_hub.cli.args import (
    UsageError,
    add_map_flag,
    add_quota_flag,
    parse_hp,
    parse_size,
    parse_value,
    positive_int,
)
from finetune_hub.cli.output import emit_json, shell_hint
from finetune_hub.cli.render import (
    line,
    make_console,
    new_table,
    print_estimate,
    print_live_diff,
    print_models,
    print_report,
    print_rules,
    print_stale,
)

if TYPE_CHECKING:
    from rich.console import Console


EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from finetune_hub import __version__

    parser = argparse.ArgumentParser(
        prog="finetune-hub",
        description="Check fine-tuning data against a backend's rules; convert and split it.",
        epilog="Exit codes: 0 ok, 1 the data breaks the rules, 2 usage, file or provider error, "
        "3 internal error (--debug shows the traceback).",
    )
    parser.add_argument("--version", action="version", version=f"finetune-hub {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an unexpected error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a training file against a backend's rules")
    p.add_argument("file", help="training file (.jsonl or .jsonl.gz)")
    _add_target(p, required=True)
    p.add_argument("--validation-file", metavar="FILE", help="validation file to check too")
    hp_help = "hyperparameter in finetune_hub's names, repeatable (epochs=3)"
    p.add_argument("--hp", action="append", type=parse_hp, default=[], metavar="K=V", help=hp_help)
    p.add_argument("--format", help="data format (default: detected), see `formats`")
    add_map_flag(p)
    p.add_argument("--suffix", help="fine-tuned model name suffix to check")
    add_quota_flag(p)
    p.add_argument("--tokenizer", metavar="SPEC", help="o200k_base, chars:4:1, hf:PATH, ...")
    p.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="processes for big files"
    )
    p.add_argument(
        "--max-issues", type=positive_int, default=20, metavar="N", help="issues listed per code"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_validate, json_native=True)

    p = sub.add_parser(
        "cost",
        help="estimate what a job on a training file would cost, before any job exists",
        description="Count the file's trained tokens (tokens x epochs) and price the training, "
        "the storage and each way of serving the model from the rules data, every price with "
        "its source and the date it was read (docs/costs.md). Nothing is uploaded.",
    )
    p.add_argument("file", help="training file (.jsonl or .jsonl.gz)")
    _add_target(p, required=True)
    p.add_argument("--validation-file", metavar="FILE", help="validation file to check too")
    p.add_argument("--hp", action="append", type=parse_hp, default=[], metavar="K=V", help=hp_help)
    p.add_argument(
        "--option",
        action="append",
        type=parse_hp,
        default=[],
        metavar="K=V",
        help="job option that changes the price, repeatable (training_type=GlobalStandard)",
    )
    add_quota_flag(p)
    p.add_argument("--format", help="data format (default: detected), see `formats`")
    add_map_flag(p)
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(handler=cmd_cost, json_native=True)

    p = sub.add_parser("convert", help="convert a file to another record format")
    p.add_argument("src", help="the file to convert (.jsonl or .jsonl.gz)")
    p.add_argument("dst", help="where to write (gzip when it ends in .gz); never the input")
    p.add_argument("--to", required=True, metavar="FORMAT", help="target format, see `formats`")
    p.add_argument("--from", dest="source_format", metavar="FORMAT", help="default: detected")
    p.add_argument("--system-prompt", metavar="TEXT", help="system prompt for every record")
    p.add_argument(
        "--template",
        metavar="TEXT",
        help="prompt of instruction data from the placeholders {instruction} and {input} (both, "
        "no others; an empty input gives the instruction alone); default: "
        "'{instruction}\\n\\n{input}'",
    )
    p.add_argument("--max-chars", type=positive_int, metavar="N", help="skip longer records")
    p.add_argument("--max-tokens", type=positive_int, metavar="N", help="skip longer records")
    p.add_argument("--tokenizer", metavar="SPEC", help="token counter for --max-tokens")
    add_map_flag(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_convert, json_native=True)

    p = sub.add_parser("split", help="split a file into training and validation files")
    for name, text in (
        ("src", "the file to split"),
        ("train", "where the training records go"),
        ("valid", "where the validation records go"),
    ):
        p.add_argument(name, help=text)
    size_help = "fraction (0.1) or record count (200)"
    p.add_argument(
        "--validation-size", type=parse_size, default=0.1, metavar="SIZE", help=size_help
    )
    p.add_argument(
        "--seed", type=int, default=0, help="shuffle seed: the same seed, the same split"
    )
    _add_target(p, required=False)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_split, json_native=True)

    p = sub.add_parser(
        "rules",
        help="list a provider's models, show one model's rules, list stale facts, or check live",
        description="Without an action: list the models (or, with --model, one model's rules). "
        "`rules check --live --provider P` asks the provider what it can tune today and prints "
        "the differences from the rules data.",
    )
    p.add_argument("action", nargs="?", choices=["check"], help="check: compare with the provider")
    p.add_argument("--provider", metavar="P", help="openai, azure-openai, bedrock, ...")
    p.add_argument("--model", metavar="M", help="show this model's resolved rules")
    p.add_argument("--method", default="sft", help="training method (default: sft)")
    p.add_argument(
        "--stale", type=int, metavar="DAYS", help="list facts read more than DAYS days ago"
    )
    p.add_argument("--live", action="store_true", help="with check: ask the provider's API")
    option_help = "provider option for --live, repeatable (region=us-east-1)"
    p.add_argument(
        "--option", action="append", type=parse_hp, default=[], metavar="K=V", help=option_help
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_rules, json_native=True)

    p = sub.add_parser("formats", help="list the data formats")
    p.add_argument("--json", action="store_true", help="print the formats as JSON")
    p.set_defaults(handler=cmd_formats, json_native=True)

    from finetune_hub.cli.jobs import add_job_commands

    add_job_commands(sub)
    from finetune_hub.cli.store import add_store_commands
    from finetune_hub.cli.team import add_team_commands

    add_team_commands(sub)
    add_store_commands(sub)
    from finetune_hub.cli.dashboard import add_dashboard_command

    add_dashboard_command(sub)
    from finetune_hub.cli.guardrails import add_guardrail_commands

    add_guardrail_commands(sub)
    _json_everywhere(parser)
    return parser


def _json_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command a `--json` flag; a command that has no JSON of its own then
    prints what it would have printed as `{"command", "exit_code", "output"}` (see main)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--json" in sub._option_string_actions:
                    if sub.get_default("json_native") is None:  # its own --json: its own JSON
                        sub.set_defaults(json_native=True)
                else:
                    sub.add_argument("--json", action="store_true", help="print the output as JSON")
                _json_everywhere(sub)


def _add_target(p: argparse.ArgumentParser, *, required: bool) -> None:
    providers = "openai, azure-openai, azure-foundry, bedrock, vertex or local"
    p.add_argument("--provider", required=required, metavar="P", help=providers)
    p.add_argument("--model", required=required, metavar="M", help="base model id or alias")
    p.add_argument("--method", default="sft", help="training method (default: sft)")


# -- commands -----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """Validate a training file; exit 1 when the report has errors."""
    from finetune_hub.checks.validation import validate

    report = validate(
        args.file,
        args.provider,
        args.model,
        args.method,
        validation_file=args.validation_file,
        hyperparameters=dict(args.hp) or None,
        format=_data_format(args.format),
        mapping=dict(args.map) or None,
        suffix=args.suffix,
        tokenizer=args.tokenizer,
        max_issues_per_code=args.max_issues,
        workers=args.workers,
        quotas=dict(args.quota) or None,
    )
    if args.json:
        emit_json(report.to_dict())
    else:
        print_report(report, console)
    return EXIT_OK if report.ok else EXIT_INVALID


def cmd_cost(args: argparse.Namespace, console: Console) -> int:
    """Estimate a job's cost from a training file and the rules' prices; nothing is uploaded.
    Exit 1 when the data break the backend's rules (the estimate is printed all the same)."""
    from finetune_hub.checks.validation import validate
    from finetune_hub.jobs.costing import estimate_cost

    report = validate(
        args.file,
        args.provider,
        args.model,
        args.method,
        validation_file=args.validation_file,
        hyperparameters=dict(args.hp) or None,
        format=_data_format(args.format),
        quotas=dict(args.quota) or None,
        mapping=dict(args.map) or None,
    )
    estimate = estimate_cost(
        args.file,
        args.provider,
        args.model,
        args.method,
        options=dict(args.option),
        quotas=dict(args.quota) or None,
        report=report,
    )
    if args.json:
        emit_json(
            {
                **estimate.to_dict(),
                "validation_ok": report.ok,
                "errors": [i.model_dump(mode="json") for i in report.errors],
            }
        )
    else:
        print_estimate(estimate, console)
        if not report.ok:
            line(console, "")
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
        mapping=dict(args.map) or None,
    )
    if args.json:
        emit_json(summary.model_dump(mode="json"))
        return EXIT_OK if summary.ok else EXIT_INVALID
    head, *_ = str(summary).split("\nnothing was converted", 1)
    line(console, head, "" if summary.ok else "red")
    if not summary.ok:
        for text in summary.why_nothing("--map FIELD=COLUMN (or --from FORMAT)"):
            line(console, text, "red")
    return EXIT_OK if summary.ok else EXIT_INVALID


def cmd_split(args: argparse.Namespace, console: Console) -> int:
    """Split SRC into training and validation files, capped by the backend's rules when given."""
    from finetune_hub.checks.splitting import split

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
    if args.json:
        emit_json(summary.model_dump(mode="json"))
    else:
        line(console, str(summary))
    return EXIT_OK


def cmd_rules(args: argparse.Namespace, console: Console) -> int:
    """List a provider's models, show one model's rules (exit 1 when a notice is an error), list
    facts read more than --stale DAYS ago, or `check --live` against the provider (exit 1 on a
    difference)."""
    from finetune_hub.rules import default_catalog, resolve
    from finetune_hub.rules.lifecycle import today

    catalog = default_catalog()
    if args.action == "check":
        if not args.live:
            raise UsageError("rules check needs --live (the only check there is: ask the provider)")
        if args.provider is None:
            raise UsageError("rules check --live needs --provider P")
        return _live_check(args, console)
    if args.stale is not None:
        if args.stale < 0:
            raise UsageError("--stale takes a number of days, 0 or more")
        providers = [args.provider] if args.provider else None
        found = catalog.stale(args.stale, providers)
        if args.json:
            emit_json(
                [
                    {"provider": p, "entry": where, **prov.model_dump(mode="json")}
                    for p, where, prov in found
                ]
            )
        else:
            print_stale(found, args.stale, today(), console)
        return EXIT_OK
    if args.provider is None:
        raise UsageError("rules needs --provider P (or --stale DAYS)")
    if args.model is None:
        if args.json:
            emit_json(catalog.models(args.provider))
        else:
            print_models(args.provider, catalog, console)
        return EXIT_OK
    rules, notes = resolve(args.provider, args.model, args.method)
    if args.json:
        emit_json(
            {
                "rules": rules.model_dump(mode="json"),
                "notes": [n.model_dump(mode="json") for n in notes],
            }
        )
    else:
        print_rules(rules, notes, console)
    return EXIT_INVALID if any(n.is_error for n in notes) else EXIT_OK


def _live_check(args: argparse.Namespace, console: Console) -> int:
    """Ask the provider's backend what it can tune today (`tunable_models()`) and print the
    differences from the rules data; exit 1 when there is one, 2 when there is no such API."""
    from finetune_hub import registry
    from finetune_hub.rules.live import diff_tunable

    entry = registry.entry(args.provider)
    if entry.backend is None:
        line(
            console,
            f"{entry.display_name}: finetune_hub has no backend for it yet, so no live check",
        )
        return EXIT_USAGE
    backend = entry.load(entry.backend).from_options(dict(args.option))
    tunable = backend.tunable_models()
    if tunable is None:
        line(
            console,
            f"{entry.display_name}: no list of tunable models (the provider has no API for it, "
            "or finetune_hub's backend does not ask it yet)",
        )
        return EXIT_USAGE
    diff = diff_tunable(args.provider, tunable)
    if args.json:
        emit_json(diff.model_dump(mode="json") if hasattr(diff, "model_dump") else vars(diff))
    else:
        print_live_diff(diff, entry.display_name, console)
    return EXIT_OK if diff.agrees else EXIT_INVALID


def cmd_formats(args: argparse.Namespace, console: Console) -> int:
    """List the data formats finetune_hub reads and writes."""
    from finetune_hub.data.formats import DataFormat

    if args.json:
        emit_json([{"format": f.value, "description": f.label} for f in DataFormat])
        return EXIT_OK
    table = new_table("format", "description")
    for fmt in DataFormat:
        table.add_row(fmt.value, fmt.label)
    console.print(table)
    return EXIT_OK


# -- display ------------------------------------------------------------------------------------
def _data_format(value: str | None) -> Any:
    if value is None:
        return None
    from finetune_hub.data.formats import DataFormat

    try:
        return DataFormat(value)
    except ValueError:
        known = ", ".join(f.value for f in DataFormat)
        raise UsageError(f"unknown format {value!r}; known formats: {known}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace, Console], int] = args.handler
    as_json = bool(getattr(args, "json", False))
    captured = io.StringIO() if as_json and not getattr(args, "json_native", False) else None
    try:
        if captured is None:
            code = _run(handler, args, make_console())
        else:  # a command without JSON of its own: its text output, wrapped in JSON
            with contextlib.redirect_stdout(captured):
                code = _run(handler, args, make_console())
            emit_json(
                {
                    "command": args.command,
                    "exit_code": code,
                    "output": captured.getvalue().splitlines(),
                }
            )
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `| head` closed the pipe: end quietly, as `cat` would
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE


#: The exit code of a command whose reader closed the pipe (128 + SIGPIPE), as shells report it.
EXIT_PIPE = 141


def _run(
    handler: Callable[[argparse.Namespace, Console], int],
    args: argparse.Namespace,
    console: Console,
) -> int:
    """Run one command; errors are one line on stderr (suggestions as flags of this command
    line), and under --json stdout still gets valid JSON: `{"error", "exit_code"}`."""
    from finetune_hub.errors import FinetuneHubError

    as_json = bool(getattr(args, "json", False))

    def fail(text: str, code: int) -> int:
        print(text, file=sys.stderr)
        if as_json and getattr(args, "json_native", False):
            emit_json({"error": text, "exit_code": code})
        return code

    try:
        return handler(args, console)
    except BrokenPipeError:
        raise
    except (FinetuneHubError, UsageError, OSError, ValueError) as exc:
        return fail(f"finetune-hub {args.command}: error: {shell_hint(str(exc))}", EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug of ours: one line, exit 3, the traceback on request
        if args.debug:
            raise
        return fail(
            f"finetune-hub {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)",
            EXIT_INTERNAL,
        )


__all__ = ["main", "parse_hp", "parse_value", "UsageError"]
