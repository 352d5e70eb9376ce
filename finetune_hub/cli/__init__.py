"""The `finetune-hub` command line: `main.py` (validate, convert, split, rules, formats and the
entry point) and `jobs.py` (submit, status, jobs, watch, events, cancel, deploy, undeploy)."""

from finetune_hub.cli.main import main

__all__ = ["main"]
