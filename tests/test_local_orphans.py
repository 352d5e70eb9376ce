"""No orphans when the local worker is SIGKILLed: torchrun (and a rank) die with their parent.

Real processes, nothing trained: an intermediate process starts a sleeping child the way the
worker starts torchrun (or a rank arms itself the way a training rank does), the intermediate is
SIGKILLed, and the child must be gone. The bounds are generous: only eventual termination is
checked, not its speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from finetune_hub.providers.local.runner import pid_alive

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only"
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether `pid` ends (or is a zombie) within `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def read_pids(path: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return [int(p) for p in lines[:count]]
        assert proc.poll() is None, f"the intermediate process ended: {proc.communicate()}"
        time.sleep(0.05)
    raise AssertionError(f"no {count} pids in {path} after {timeout}s")


def start_intermediate(script: str, tmp_path: Path) -> subprocess.Popen[str]:
    """A Python process that runs `script` (it writes the pids to kill for into `pids.txt`)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_and_reap(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def cleanup(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_a_child_started_with_parent_death_signal_dies_with_its_parent(tmp_path):
    middle = start_intermediate(
        f"""
        import subprocess, time
        from finetune_hub.providers.local.lifeline import parent_death_signal
        child = subprocess.Popen({SLEEPER!r}, preexec_fn=parent_death_signal())
        open("pids.txt", "w").write(str(child.pid))
        time.sleep(60)
        """,
        tmp_path,
    )
    [child] = read_pids(tmp_path / "pids.txt", 1, middle)
    try:
        assert pid_alive(child)
        kill_and_reap(middle)
        assert gone(child), "the child outlived its SIGKILLed parent"
    finally:
        cleanup([child])


def test_a_child_without_it_is_orphaned(tmp_path):
    """The control: the sleeper does outlive a SIGKILLed parent when nothing ties it."""
    middle = start_intermediate(
        f"""
        import subprocess, time
        child = subprocess.Popen({SLEEPER!r})
        open("pids.txt", "w").write(str(child.pid))
        time.sleep(60)
        """,
        tmp_path,
    )
    [child] = read_pids(tmp_path / "pids.txt", 1, middle)
    try:
        kill_and_reap(middle)
        time.sleep(0.5)
        assert pid_alive(child)
    finally:
        cleanup([child])


def test_die_with_parent_arms_a_running_process(tmp_path):
    """A training rank arms itself (torchrun starts it; SIGKILL when torchrun dies)."""
    rank = (
        "import os, signal, time\n"
        "from finetune_hub.providers.local.lifeline import die_with_parent\n"
        "assert die_with_parent(signal.SIGKILL)\n"
        "open('pids.txt', 'a').write(f'{os.getpid()}\\n')\n"
        "time.sleep(60)\n"
    )
    middle = start_intermediate(
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", {rank!r}], start_new_session=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    [child] = read_pids(tmp_path / "pids.txt", 1, middle)
    try:
        kill_and_reap(middle)
        assert gone(child), "the rank outlived its SIGKILLed parent"
    finally:
        cleanup([child])


def test_a_child_whose_parent_is_already_gone_exits_at_once():
    """The race: the parent died before the signal was armed (the pid it expects is not its
    parent's), so no signal would ever come; the process leaves by itself."""
    code = (
        "import os, signal\n"
        "from finetune_hub.providers.local.lifeline import die_with_parent\n"
        "die_with_parent(signal.SIGTERM, parent=os.getppid() + 1_000_000)\n"
        "print('still here')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 128 + signal.SIGTERM
    assert "still here" not in done.stdout


def test_supervisor_died_reads_the_supervisor_pid(monkeypatch):
    from finetune_hub.providers.local import worker

    monkeypatch.delenv(worker.SUPERVISOR_PID, raising=False)
    assert not worker._supervisor_died()  # not started by a supervisor: a cancel stays a cancel
    monkeypatch.setenv(worker.SUPERVISOR_PID, str(os.getpid()))
    assert not worker._supervisor_died()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    monkeypatch.setenv(worker.SUPERVISOR_PID, str(dead.pid))
    assert worker._supervisor_died()


def test_killing_the_supervisor_stops_torchrun_and_its_ranks(tmp_path):
    """`supervise()` as the worker runs it, with torchrun launching a sleeping script in place of
    the training ranks: SIGKILL the supervisor, and torchrun and both ranks end."""
    pytest.importorskip("torch")
    (tmp_path / "rank.py").write_text(
        "import os, time\n"
        "with open('pids.txt', 'a') as f:\n"
        "    f.write(f'{os.getpid()} {os.getppid()}\\n')\n"
        "time.sleep(120)\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    middle = start_intermediate(
        f"""
        import sys
        from finetune_hub.providers.local import distributed, worker
        from finetune_hub.providers.local.runner import RunDir

        real_launch = distributed.launch_command

        def fake_launch(run_path, options):
            cmd = real_launch(run_path, options)
            return [*cmd[: cmd.index("-m", 3)], "rank.py"]

        distributed.launch_command = fake_launch
        worker.supervise(RunDir({str(run)!r}), {{"num_processes": 2}})
        """,
        tmp_path,
    )
    pids = read_pids(tmp_path / "pids.txt", 4, middle, timeout=120)
    ranks, torchrun = pids[0::2], set(pids[1::2])
    assert len(torchrun) == 1 and torchrun != {middle.pid}  # the ranks' parent is torchrun
    try:
        kill_and_reap(middle)
        assert all(gone(pid, timeout=90) for pid in [*torchrun, *ranks]), "orphans left"
    finally:
        cleanup([*ranks, *torchrun])
