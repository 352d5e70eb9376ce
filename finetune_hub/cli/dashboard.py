"""`finetune-hub dashboard`: serve the read-only web page over the job store on 127.0.0.1.

finetune-hub dashboard                          # http://127.0.0.1:8765
finetune-hub dashboard --port 9000 --poll 60    # also refresh the jobs every minute
FINETUNE_HUB_STORE_URL=postgresql://fh@db/hub finetune-hub dashboard
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from finetune_hub.cli.store import add_store_location, open_store

if TYPE_CHECKING:
    from rich.console import Console


def add_dashboard_command(sub: Any) -> None:
    """Register `finetune-hub dashboard` on the main parser's subparsers."""
    p = sub.add_parser("dashboard", help="serve a live, read-only web page of every job")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    p.add_argument(
        "--refresh", type=float, default=10.0, metavar="S", help="page reloads its data every S s"
    )
    p.add_argument(
        "--poll", type=float, metavar="S", help="also ask the providers about jobs every S s"
    )
    add_store_location(p)
    p.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace, console: Console) -> int:
    """Serve until interrupted (Ctrl-C)."""
    from finetune_hub.dashboard.app import serve

    store = open_store(args)
    console.print(f"finetune_hub dashboard over {store.location}", soft_wrap=True)
    console.print(f"open http://127.0.0.1:{args.port}/  (Ctrl-C stops it)")
    serve(store, port=args.port, refresh_seconds=args.refresh, poll=args.poll)
    return 0
