"""A one-line live status (state + latest event) while a job is followed, in terminals and
notebooks; silent when output is not interactive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.status import JobStatus


class Progress:
    """Context manager around `wait()`: `update(status, event)` redraws the line."""

    def __init__(self, job: TuningJob, enabled: bool) -> None:
        self.job = job
        self.enabled = enabled
        self._status: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console

            console = Console(stderr=True)
            if console.is_terminal or console.is_jupyter:
                self._status = console.status(f"{self.job.id}: submitting")
                self._status.__enter__()
        return self

    @property
    def active(self) -> bool:
        """True when a live line is shown (a terminal or a notebook)."""
        return self._status is not None

    def update(self, status: JobStatus, event: str | None) -> None:
        if self._status is not None:
            raw = self.job.raw_status
            tail = f" — {event}" if event else ""
            self._status.update(
                f"{self.job.id} on {self.job.provider}: {status.value} ({raw}){tail}"
            )

    def __exit__(self, *exc: Any) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
