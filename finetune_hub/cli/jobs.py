"""The job commands of `finetune-hub`: submit, status, watch, events, cancel, deploy, undeploy
(`jobs`, `adopt`, `refresh`, `deployments` are in team.py).

    finetune-hub submit job.yaml --wait
    finetune-hub submit --provider openai --model gpt-4.1-mini --training-file train.jsonl --hp epochs=3
    finetune-hub submit --provider local --model smollm2-135m-instruct --training-file qa.jsonl \
        --format instruction --map instruction=text --map output=output
    finetune-hub jobs --provider openai --status running
    finetune-hub watch ftj_1a2b3c4d5e6f
    finetune-hub deploy ftj_1a2b3c4d5e6f --sku standard --yes
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from finetune_hub.cli.output import confirm, emit_json, shell_hint
from finetune_hub.cli.render import print_estimate

if TYPE_CHECKING:
    from rich.console import Console

    from finetune_hub.jobs.tuning_job import TuningJob

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_job_commands(sub: Any) -> None:
    """Register the job subcommands on the main parser's subparsers."""
    from finetune_hub.cli.args import add_map_flag, add_quota_flag, parse_dataset, parse_hp

    p = sub.add_parser(
        "submit", help="validate, upload and submit a job (from a job file or flags)"
    )
    p.add_argument("job_file", nargs="?", help="a YAML or TOML job description")
    p.add_argument(
        "--provider", help="openai, azure-openai, azure-foundry, bedrock, vertex or local"
    )
    p.add_argument(
        "--model",
        dest="base_model",
        help="base model id or alias (or a tuned model to train further)",
    )
    p.add_argument("--training-file", help="training file (.jsonl or .jsonl.gz)")
    p.add_argument("--validation-file", help="validation file")
    p.add_argument(
        "--dataset",
        action="append",
        type=parse_dataset,
        default=[],
        metavar="NAME=PATH",
        help="a named data set (Vertex RLHF: prompt, preference, eval), repeatable; without --training-file the first one is also the training file",
    )
    p.add_argument(
        "--method", help="training method: sft (default), dpo, rft, rlhf, continued-pretraining"
    )
    p.add_argument("--suffix", help="suffix of the tuned model's name")
    p.add_argument("--format", help="data format (default: detected), see `formats`")
    add_map_flag(p)
    p.add_argument(
        "--hp",
        action="append",
        type=parse_hp,
        default=[],
        metavar="K=V",
        help="hyperparameter (repeatable)",
    )
    p.add_argument(
        "--option",
        action="append",
        type=parse_hp,
        default=[],
        metavar="K=V",
        help="provider option (repeatable)",
    )
    add_quota_flag(p)
    p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=10.0,
        help="seconds between polls with --wait (backs off)",
    )
    p.add_argument(
        "--yes", action="store_true", help="submit without asking after the cost estimate"
    )
    p.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="refuse a job whose estimated training cost is over USD, or unknown",
    )
    p.add_argument(
        "--preflight",
        action="store_true",
        help="ask the provider first (model access, permissions, bucket); stop on an error before any upload",
    )
    p.add_argument(
        "--json", action="store_true", help="print the estimate, the job and its warnings as JSON"
    )
    p.add_argument(
        "--home", help="job store folder (default $FINETUNE_HUB_HOME or ~/.finetune_hub)"
    )
    p.set_defaults(handler=cmd_submit, json_native=True)

    for name, handler, help_text in (
        ("status", cmd_status, "refresh and show one job"),
        ("watch", cmd_watch, "follow a job until it ends"),
        ("events", cmd_events, "show a job's events"),
        ("cancel", cmd_cancel, "cancel a job"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("job_id", help="the local job id (ftj_...), as `finetune-hub jobs` lists it")
        p.add_argument(
            "--home", help="job store folder (default $FINETUNE_HUB_HOME or ~/.finetune_hub)"
        )
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "watch":
            from finetune_hub.cli.guardrails import add_watch_flags

            p.add_argument(
                "--timeout",
                type=float,
                help="stop following after this many seconds (exit 1; the job goes on)",
            )
            p.add_argument(
                "--poll-interval",
                type=float,
                default=10.0,
                help="seconds between polls, backing off to 60 (default 10)",
            )
            add_watch_flags(p)
        p.set_defaults(handler=handler, json_native=name != "watch")

    p = sub.add_parser("deploy", help="deploy a job's tuned model (states the hourly cost first)")
    p.add_argument("job_id", help="the local job id (ftj_...) of a succeeded job")
    p.add_argument("--name", help="deployment name (default fh-<job id>)")
    p.add_argument(
        "--kind", help="serving mode (default: the provider's first; see docs/providers/)"
    )
    p.add_argument(
        "--sku", help="Azure OpenAI deployment SKU: standard, globalstandard, developertier, ..."
    )
    p.add_argument("--capacity", type=int, help="Azure OpenAI deployment capacity")
    p.add_argument(
        "--option",
        action="append",
        type=parse_hp,
        default=[],
        metavar="K=V",
        help="deployment option (repeatable)",
    )
    p.add_argument("--yes", action="store_true", help="accept the hourly cost without asking")
    p.add_argument(
        "--max-hourly-cost",
        type=float,
        metavar="USD",
        help="refuse a deployment billed over USD per hour, or at an unknown rate",
    )
    p.add_argument("--json", action="store_true", help="print the cost and the deployment as JSON")
    p.add_argument(
        "--home", help="job store folder (default $FINETUNE_HUB_HOME or ~/.finetune_hub)"
    )
    p.set_defaults(handler=cmd_deploy, json_native=True)

    p = sub.add_parser("undeploy", help="delete a job's deployments (safe to repeat)")
    p.add_argument("job_id", help="the local job id (ftj_...)")
    p.add_argument("--name", help="only this deployment")
    p.add_argument(
        "--home", help="job store folder (default $FINETUNE_HUB_HOME or ~/.finetune_hub)"
    )
    p.set_defaults(handler=cmd_undeploy)


# -- commands -------------------------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace, console: Console) -> int:
    """Validate, show the cost estimate, ask (or --yes), submit; then the report's warnings."""
    from finetune_hub.cli.main import _data_format
    from finetune_hub.errors import CostLimitExceeded, ValidationError
    from finetune_hub.jobs.spec import JobSpec
    from finetune_hub.jobs.tuning_job import TuningJob

    fields = {
        k: v
        for k, v in {
            "provider": args.provider,
            "base_model": args.base_model,
            "training_file": args.training_file,
            "validation_file": args.validation_file,
            "method": args.method,
            "suffix": args.suffix,
        }.items()
        if v is not None
    }
    if args.hp:
        fields["hyperparameters"] = dict(args.hp)
    if args.option:
        fields["options"] = dict(args.option)
    if args.quota:
        fields["quotas"] = dict(args.quota)
    if args.dataset:
        fields["datasets"] = dict(args.dataset)
    if args.format is not None:  # an unknown name ends as validate's does: exit 2, the known ones
        fields["format"] = _data_format(args.format).value
    if args.map:
        fields["mapping"] = dict(args.map)
    store = _store(args)
    if args.job_file:
        if args.map:  # a --map merges over the file's mapping, as --hp over its hyperparameters
            fields["mapping"] = {**JobSpec.from_file(args.job_file).mapping, **fields["mapping"]}
        job = TuningJob.from_file(
            args.job_file, store=store, **fields
        )  # --hp/--option merge into the file's
    else:
        if args.dataset:  # named data sets alone: the first stands for the training file too
            fields.setdefault("training_file", args.dataset[0][1])
        flags = {
            "provider": "--provider",
            "base_model": "--model",
            "training_file": "--training-file",
        }
        missing = [flag for key, flag in flags.items() if key not in fields]
        if missing:
            console.print(f"submit needs a job file or {', '.join(missing)}")
            return EXIT_USAGE
        job = TuningJob(store=store, **fields)
    report = job.validate()
    if not report.ok:
        return _refused(report, console, args.json)
    if args.preflight:
        from finetune_hub.cli.guardrails import preflight_refused

        if preflight_refused(job, console, args.json):
            return EXIT_FAILED
    estimate = job.estimate_cost()
    if args.json:
        sys.stderr.write("\n".join(estimate.lines()) + "\n")
    else:
        print_estimate(estimate, console)
    if not confirm(f"Submit {job.spec.provider} job {job.id}?", yes=args.yes):
        return _declined(
            "not submitted: nothing was uploaded (answer y, or pass --yes: finetune-hub submit ... --yes)",
            console,
            args.json,
        )
    try:
        job.submit(max_cost=args.max_cost)
    except ValidationError as exc:
        return _refused(exc.report, console, args.json)
    except CostLimitExceeded as exc:
        return _declined(shell_hint(str(exc)), console, args.json)
    warnings = job.report.warnings if job.report else []
    if args.json:
        rec = job.store.require(job.id)
        emit_json(
            {
                "job": rec.model_dump(mode="json"),
                "estimate": estimate.to_dict(),
                "warnings": [w.model_dump(mode="json") for w in warnings],
            }
        )
    else:
        console.print(
            f"submitted {job.id} ({job.spec.provider} job {job.provider_job_id}): {job.status.value}"
        )
        for warning in warnings:  # a legacy model, the date fine-tuning ends: still worth knowing
            console.print(f"warning: {shell_hint(str(warning))}", style="yellow", soft_wrap=True)
    if args.wait:
        return _follow(job, console, timeout=None, poll_interval=args.poll_interval)
    return EXIT_OK


def _refused(report: Any, console: Console, as_json: bool) -> int:
    """Data that break the rules: the report, and the promise that nothing left the machine."""
    from finetune_hub.cli.render import print_report

    if as_json:
        emit_json({"submitted": False, "report": report.to_dict()})
        return EXIT_FAILED
    print_report(report, console)
    console.print("nothing was uploaded or submitted")
    return EXIT_FAILED


def _declined(text: str, console: Console, as_json: bool) -> int:
    """Not done (the user said no, nobody could answer, a cost limit): exit 1."""
    if as_json:
        emit_json({"declined": True, "message": text})
    else:
        console.print(text, soft_wrap=True)
    return EXIT_FAILED


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    job = _attach(args)
    job.refresh()
    rec = job.store.require(job.id)
    if args.json:
        emit_json(rec.model_dump(mode="json"))
        return EXIT_OK
    console.print(
        f"{rec.id}  {rec.provider}  {rec.base_model}  {rec.status.value} ({rec.raw_status})"
    )
    console.print(f"  provider job: {rec.provider_job_id}")
    if rec.fine_tuned_model:
        console.print(f"  model: {rec.fine_tuned_model}")
    if rec.error:
        code = f"{rec.error_code}: " if rec.error_code else ""
        console.print(f"  error: {code}{rec.error}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, console: Console) -> int:
    from finetune_hub.cli.guardrails import watch_job

    return watch_job(_attach(args), console, args)


def cmd_events(args: argparse.Namespace, console: Console) -> int:
    events = _attach(args).events()
    if args.json:
        emit_json([e.model_dump(mode="json") for e in events])
        return EXIT_OK
    for e in events:
        console.print(f"{e.created_at:%Y-%m-%d %H:%M:%S}  {e.level:7}  {e.message}")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    """Cancel a job; one that has already ended is left as it is (exit 0), and says so."""
    from finetune_hub.status import JobStatus

    status = _attach(args).cancel()
    ended = status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    text = (
        f"{args.job_id} had already ended ({status.value}): nothing to cancel"
        if ended
        else f"{args.job_id}: {status.value}"
    )
    if args.json:
        emit_json({"job_id": args.job_id, "status": status.value, "already_ended": ended})
    else:
        console.print(text)
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace, console: Console) -> int:
    from finetune_hub.errors import (
        CostConfirmationRequired,
        CostLimitExceeded,
        UnsupportedOperation,
    )

    job = _attach(args)
    model = job.result
    if model is None:
        console.print(f"{job.id} has no tuned model yet (status {job.refresh().value})")
        return EXIT_FAILED
    options = {
        k: v for k, v in {"sku": args.sku, "capacity": args.capacity}.items() if v is not None
    }
    options.update(dict(args.option))
    try:  # the cost first: "not needed" (OpenAI) is an answer, not a failure
        deployer = model.deployer(args.kind)
        cost = deployer.cost(model.id, deployer.parse(options))
    except UnsupportedOperation as exc:
        text = str(exc).replace("model.chat(...)", f"the model id {model.id}")
        if args.json:
            emit_json({"deployed": False, "needed": False, "message": text})
        else:
            console.print(text)
        return EXIT_OK
    sentence = cost.sentence(f"deploying {model.id} on {model.provider} ({deployer.display_name})")
    if args.json:
        sys.stderr.write(sentence + "\n")
    else:
        console.print(sentence, soft_wrap=True)
    if args.max_hourly_cost is None and not confirm("Deploy it?", yes=args.yes):
        return _declined(
            "not deployed: nothing was created (answer y, or pass --yes: finetune-hub deploy --yes)",
            console,
            args.json,
        )
    try:
        deployment = model.deploy(
            args.kind,
            confirm_cost=True,
            name=args.name,
            max_hourly_cost=args.max_hourly_cost,
            **options,
        )
    except CostConfirmationRequired as exc:  # a commitment needs its own yes
        console.print(shell_hint(str(exc)))
        return EXIT_FAILED
    except CostLimitExceeded as exc:
        return _declined(shell_hint(str(exc)), console, args.json)
    rate = deployment.record.hourly_cost_usd
    if args.json:
        emit_json(
            {
                "deployed": True,
                "cost": cost.model_dump(mode="json"),
                "deployment": deployment.record.model_dump(mode="json"),
            }
        )
        return EXIT_OK
    extra = f", ${rate:,.2f}/hour until deleted" if rate is not None else ""
    console.print(
        f"deployed {model.id} as {deployment.name} ({deployment.kind}): "
        f"{deployment.status.value}{extra}"
    )
    console.print(f"delete it with: finetune-hub undeploy {job.id}")
    return EXIT_OK


def cmd_undeploy(args: argparse.Namespace, console: Console) -> int:
    from finetune_hub.jobs.deployment import Deployment

    job = _attach(args)
    records = [
        d
        for d in job.store.list_deployments(active_only=True)
        if d.job_id == job.id and (args.name is None or d.name == args.name)
    ]
    if not records:
        console.print(f"{job.id} has no active deployment")
        return EXIT_OK
    for rec in records:
        Deployment.from_record(job, rec).delete()
        console.print(f"deleted {rec.name}")
    return EXIT_OK


# -- helpers --------------------------------------------------------------------------------------
def _store(args: argparse.Namespace) -> Any:
    from finetune_hub.store import JobStore

    return JobStore(args.home) if getattr(args, "home", None) else JobStore()


def _attach(args: argparse.Namespace) -> TuningJob:
    from finetune_hub.jobs.tuning_job import TuningJob

    return TuningJob.attach(args.job_id, store=_store(args))


def _follow(
    job: TuningJob, console: Console, *, timeout: float | None, poll_interval: float
) -> int:
    from finetune_hub.errors import JobFailed, WaitTimeout

    try:
        model = job.wait(timeout=timeout, poll_interval=poll_interval, progress=True)
    except JobFailed as exc:
        console.print(str(exc))
        return EXIT_FAILED
    except WaitTimeout as exc:
        console.print(str(exc))
        return EXIT_FAILED
    console.print(f"{job.id} succeeded: {model.id}")
    return EXIT_OK
