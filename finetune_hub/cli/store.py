"""The store commands of `finetune-hub`: where the store is, copy it into PostgreSQL, export it.

    finetune-hub store info
    finetune-hub store migrate --to postgresql://fh@db.internal/finetune_hub
    finetune-hub store export --output jobs.json

Every command reads the store named by `--store URL`, else `--home DIR`, else
`$FINETUNE_HUB_STORE_URL`, else `$FINETUNE_HUB_HOME` (default ~/.finetune_hub).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from finetune_hub.store import JobStore

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_store_location(p: argparse.ArgumentParser) -> None:
    """`--store URL` and `--home DIR`, shared by the commands that read a store."""
    p.add_argument("--store", metavar="URL", help="store URL (default $FINETUNE_HUB_STORE_URL)")
    p.add_argument("--home", help="folder of a SQLite store (default $FINETUNE_HUB_HOME)")


def open_store(args: argparse.Namespace) -> JobStore:
    """The store named by `--store` or `--home`, else the default one."""
    from finetune_hub.store import JobStore

    if getattr(args, "store", None):
        return JobStore(url=args.store)
    return JobStore(args.home) if getattr(args, "home", None) else JobStore()


def add_store_commands(sub: Any) -> None:
    """Register `finetune-hub store ...` on the main parser's subparsers."""
    store = sub.add_parser("store", help="where the job store is; copy it to PostgreSQL; export it")
    actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")

    p = actions.add_parser("info", help="the store's location, kind, schema and size")
    add_store_location(p)
    p.set_defaults(handler=cmd_store_info)

    p = actions.add_parser(
        "migrate",
        help="copy this store (jobs, history, deployments) into another, e.g. PostgreSQL",
        description="Copy every job with its transitions, events and metrics, and every "
        "deployment record, into the store at --to (created and brought to the current schema "
        "if new). Safe to repeat: what is there already is skipped. Then point "
        "FINETUNE_HUB_STORE_URL at the new store.",
    )
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://USER@HOST/DATABASE")
    add_store_location(p)
    p.set_defaults(handler=cmd_store_migrate)

    p = actions.add_parser("export", help="the whole store as JSON (secret-free, as stored)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    add_store_location(p)
    p.set_defaults(handler=cmd_store_export)


def cmd_store_info(args: argparse.Namespace, console: Console) -> int:
    """Print the store's location, kind, schema version and how many jobs it holds."""
    with open_store(args) as store:
        jobs = len(store.list())
        deployments = len(store.list_deployments())
        version = store.db.schema_version()
        console.print(f"{store.location}", soft_wrap=True)
        console.print(f"  kind: {store.kind}, schema {version}")
        console.print(f"  {jobs} jobs, {deployments} active deployments")
    return EXIT_OK


def cmd_store_migrate(args: argparse.Namespace, console: Console) -> int:
    """Copy the current store into the one at --to."""
    from finetune_hub.store import JobStore
    from finetune_hub.store.transfer import copy_store

    with open_store(args) as source, JobStore(url=args.to) as target:
        if source.location == target.location:
            console.print(f"{source.location} is already the store in use: nothing to copy")
            return EXIT_USAGE
        summary = copy_store(source, target)
    console.print(str(summary), soft_wrap=True)
    console.print(f"use it with: export FINETUNE_HUB_STORE_URL='{target.location}'", soft_wrap=True)
    return EXIT_OK


def cmd_store_export(args: argparse.Namespace, console: Console) -> int:
    """Write the store as JSON to --output or stdout."""
    from finetune_hub.store.transfer import export_store

    with open_store(args) as store:
        data = export_store(store)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        console.print(f"wrote {len(data['jobs'])} jobs to {args.output}")
    else:
        sys.stdout.write(text + "\n")
    return EXIT_OK
