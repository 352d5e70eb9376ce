"""The one polling schedule every wait uses: growing pauses with jitter, a deadline, an
injectable sleep. `TuningJob.wait`, its async twin, `Deployment.wait_ready` and a provider's own
short waits (a file being processed) all poll through `poll` / `poll_async`.

>>> from itertools import islice
>>> list(islice(Backoff(initial=1, maximum=4, jitter=0).pauses(), 5))
[1, 1.5, 2.25, 3.375, 4]
>>> poll(lambda: 3, lambda v: v == 3, backoff=Backoff(), sleep=lambda s: None)
3
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pauses from `initial` seconds, times `factor` each poll, up to `maximum`, each jittered by
    up to +-`jitter` (a fraction) so that many waiting jobs do not poll in step."""

    initial: float = 10.0
    maximum: float = 60.0
    factor: float = 1.5
    jitter: float = 0.2

    def pauses(self) -> Iterator[float]:
        pause = self.initial
        while True:
            yield pause * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else pause
            pause = min(self.maximum, pause * self.factor)


class _Deadline:
    def __init__(self, timeout: float | None, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.at = None if timeout is None else clock() + timeout

    def allows(self, pause: float) -> bool:
        return self.at is None or self.clock() + pause <= self.at


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    backoff: Backoff,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_timeout: Callable[[T], Exception] = lambda last: TimeoutError(f"still {last!r}"),
) -> T:
    """Call `fetch` until `done(value)`; pause per `backoff` between calls; past `timeout`
    seconds raise `on_timeout(last value)`."""
    deadline = _Deadline(timeout, clock)
    for pause in backoff.pauses():
        value = fetch()
        if done(value):
            return value
        if not deadline.allows(pause):
            raise on_timeout(value)
        sleep(pause)
    raise AssertionError("unreachable: pauses() never ends")


async def poll_async(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    backoff: Backoff,
    timeout: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_timeout: Callable[[T], Exception] = lambda last: TimeoutError(f"still {last!r}"),
) -> T:
    """The async twin of `poll`: the same schedule and deadline, awaiting `fetch` and `sleep`."""
    deadline = _Deadline(timeout, clock)
    for pause in backoff.pauses():
        value = await fetch()
        if done(value):
            return value
        if not deadline.allows(pause):
            raise on_timeout(value)
        await sleep(pause)
    raise AssertionError("unreachable: pauses() never ends")
