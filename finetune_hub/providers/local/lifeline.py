"""Tie a process's life to its parent's, so a killed supervisor leaves no orphans behind.

A local job with several processes is a chain: the worker (supervisor) starts torchrun, torchrun
starts the training ranks. If the worker is SIGKILLed (the OOM killer, `kill -9`) nothing runs
its cleanup, and torchrun and the ranks would keep training as orphans. On Linux the kernel can
signal a process when its parent dies (`prctl(PR_SET_PDEATHSIG)`); elsewhere these helpers do
nothing.

The setting survives `exec` but not `fork`, so each link of the chain arms it for itself: the
worker starts torchrun with `preexec_fn=parent_death_signal()`, each rank calls
`die_with_parent()` when it starts. Note that Linux sends the signal when the *thread* that forked
the child ends, so start the child from a thread that lives as long as the process (the main
thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

#: `<linux/prctl.h>`: set the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    """libc's `prctl`, or None off Linux (or when libc cannot be loaded)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _arm(prctl: Callable[..., int], sig: int, parent: int) -> bool:
    if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False  # best effort: the process runs as it would have without it
    # The parent may have died before the prctl call: then no signal will come, and this
    # process was already reparented (to init or a subreaper). Leave as if signalled.
    if os.getppid() != parent:
        os._exit(128 + int(sig))
    return True


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Have the kernel send `sig` to this process when its parent dies (Linux only).

    Call it early in a process started by another (a training rank started by torchrun).
    `parent` is the pid the parent should have (default: the parent now); if the process was
    reparented before the signal was armed, it exits at once with status 128 + `sig`. Returns
    whether the signal is armed (False off Linux or when `prctl` fails)."""
    prctl = _prctl()
    if prctl is None:
        return False
    return _arm(prctl, sig, os.getppid() if parent is None else parent)


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that makes the child get `sig` when this process
    (its parent) dies; None off Linux, where Popen then runs the child as usual.

    libc is loaded here, in the parent, so the child between fork and exec only calls `prctl`
    and `getppid`. If this process died before the child armed the signal, the child exits
    before `exec`."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        _arm(prctl, sig, parent)

    return arm
