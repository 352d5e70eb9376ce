"""The run folder of one local job: what the worker writes and what the provider reads.

```
<output_dir>/<job id>/
  job.json            the job (spec, effective hyperparameters, idempotency key)
  status.json         state (queued/running/succeeded/failed/cancelled), pid, step, error
  events.jsonl        one JSON event per line
  metrics.jsonl       step, epoch, train_loss, valid_loss, tokens_per_s
  worker.log          the worker's stdout/stderr
  checkpoint-<step>/  adapter (safetensors) + optimizer state, every `save_steps` and at the end
  adapter/            the final adapter: adapter_model.safetensors + adapter_config.json
  cancel              present when a cancel was asked for
```
Files are replaced atomically (temp file + rename), so a reader never sees half a status.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

TERMINAL_STATES = ("succeeded", "failed", "cancelled")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written right now
            continue
    return out


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


class RunDir:
    """Paths and atomic reads/writes of one run folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.job_path = self.path / "job.json"
        self.status_path = self.path / "status.json"
        self.events_path = self.path / "events.jsonl"
        self.metrics_path = self.path / "metrics.jsonl"
        self.cancel_path = self.path / "cancel"
        self.adapter_dir = self.path / "adapter"
        self.log_path = self.path / "worker.log"
        self._event_count: int | None = None

    def __repr__(self) -> str:
        return f"<RunDir {self.path}>"

    def exists(self) -> bool:
        return self.job_path.is_file()

    # -- job and status ---------------------------------------------------------------------------
    def job(self) -> dict[str, Any]:
        data = read_json(self.job_path)
        if data is None:
            raise FileNotFoundError(f"{self.job_path} is missing or unreadable")
        return data

    def status(self) -> dict[str, Any]:
        return read_json(self.status_path) or {"state": "queued"}

    def write_status(self, **fields: Any) -> dict[str, Any]:
        data = {**self.status(), **fields, "updated_at": now_iso()}
        write_json_atomic(self.status_path, data)
        return data

    # -- events and metrics -----------------------------------------------------------------------
    def add_event(
        self,
        message: str,
        *,
        level: str = "info",
        type: str = "message",
        data: dict[str, Any] | None = None,
    ) -> None:
        if self._event_count is None:
            self._event_count = len(read_jsonl(self.events_path))
        self._event_count += 1
        event = {
            "id": f"ev-{self._event_count:06d}",
            "created_at": now_iso(),
            "level": level,
            "message": message,
            "type": type,
        }
        if data:
            event["data"] = data
        with open(self.events_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self.events_path)

    def add_metric(self, point: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(point) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        """Metric points, the last one per step (a resumed run may repeat steps)."""
        by_step: dict[int, dict[str, Any]] = {}
        for point in read_jsonl(self.metrics_path):
            by_step[int(point["step"])] = point
        return [by_step[s] for s in sorted(by_step)]

    # -- checkpoints and cancel -------------------------------------------------------------------
    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of each complete checkpoint, oldest first."""
        found = []
        if self.path.is_dir():
            for child in self.path.iterdir():
                m = _CHECKPOINT.match(child.name)
                if (
                    m
                    and (child / "adapter_model.safetensors").is_file()
                    and (child / "trainer_state.json").is_file()
                ):
                    found.append((int(m.group(1)), child))
        return sorted(found)

    def last_checkpoint(self) -> tuple[int, Path] | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def new_folder(self, name: str) -> Path:
        """A temp folder beside `name`, to be moved into place with `commit_folder`."""
        return Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.path))

    def commit_folder(self, tmp: Path, name: str) -> Path:
        final = self.path / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    def request_cancel(self) -> None:
        self.cancel_path.write_text(now_iso(), encoding="utf-8")


class QuietRun(RunDir):
    """The run folder as a training rank other than 0 sees it: it reads, and writes nothing (rank
    0 writes status, events, metrics and checkpoints for the whole run; it also decides when a
    cancel stops every rank)."""

    def write_status(self, **fields: Any) -> dict[str, Any]:
        return self.status()

    def add_event(self, message: str, **kwargs: Any) -> None:
        pass

    def add_metric(self, point: dict[str, Any]) -> None:
        pass

    def cancel_requested(self) -> bool:
        return False
