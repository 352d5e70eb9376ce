"""A controllable clock for the fakes: fake time only moves when a test (or a poll) moves it."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]

#: 2025-01-01T00:00:00Z, so fake timestamps look like real ones.
DEFAULT_START = 1_735_689_600.0


class FakeClock:
    """Fake time in Unix seconds. Real time never matters to a fake that uses it.

    >>> clock = FakeClock(start=100.0)
    >>> clock.advance(30)
    130.0
    >>> clock.now()
    130.0
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current fake time, in Unix seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move fake time forward by `seconds` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance: seconds must be >= 0, got {seconds}")
        with self._lock:
            self._now += float(seconds)
            return self._now

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now()})"
