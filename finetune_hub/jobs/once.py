"""At most one create, ever: the guard around every call that makes a paid resource (a tuning
job, a deployment).

A create that failed ambiguously (a timeout, a dropped connection, a 5xx, a killed process) may
still take effect on the provider's side, and a look-up right after may not see it yet. So once a
create has been attempted, no second create is sent until the look-up has answered "no such
resource" for a whole window (`window` seconds, counted from the attempt, two minutes by default),
polling it meanwhile. A window in which the look-up could not be asked ends in a clear error that
says how to check and resume, never in a second create.

>>> guard = AtMostOnce("job ftj_1", find=lambda: None, create=lambda: "made", sleep=lambda s: None)
>>> guard()
'made'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from finetune_hub.backoff import Backoff
from finetune_hub.errors import ProviderError

T = TypeVar("T")

DEFAULT_WINDOW = 120.0
#: The key, in a job's or a deployment's stored `extra`, of when a create was last sent.
ATTEMPT_KEY = "create_attempted_at"
LOOKUP_BACKOFF = Backoff(initial=2.0, maximum=15.0)


class AtMostOnce(Generic[T]):
    """`find()` first; `create()` only when nothing was found and no earlier attempt can still
    take effect. Safe to call again under a retry policy (each call re-checks)."""

    def __init__(
        self,
        what: str,
        *,
        find: Callable[[], T | None],
        create: Callable[[], T],
        sleep: Callable[[float], None] = time.sleep,
        window: float = DEFAULT_WINDOW,
        attempted_at: float | None = None,
        on_attempt: Callable[[float | None], None] = lambda at: None,
        clock: Callable[[], float] = time.time,
        resume_hint: str = "",
        backoff: Backoff = LOOKUP_BACKOFF,
    ) -> None:
        self.what = what
        self.find = find
        self.create = create
        self.sleep = sleep
        self.window = window
        self.attempted_at = attempted_at
        self.on_attempt = on_attempt
        self.clock = clock
        self.resume_hint = resume_hint
        self.backoff = backoff

    def __call__(self) -> T:
        found = self.find() if self.attempted_at is None else self._watch()
        if found is not None:
            return found
        self.attempted_at = self.clock()
        self.on_attempt(self.attempted_at)
        try:
            return self.create()
        except ProviderError as exc:
            if _definitely_not_created(exc):
                self.attempted_at = None
                self.on_attempt(None)
            raise

    def _watch(self) -> T | None:
        """Poll the look-up until it finds the resource or the window since the attempt ends.
        None: every look-up answered and none found it, so a create is safe."""
        assert self.attempted_at is not None
        elapsed = max(0.0, self.clock() - self.attempted_at)
        unanswered: ProviderError | None = None
        pauses = self.backoff.pauses()
        while True:
            try:
                found = self.find()
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                unanswered = exc
            else:
                unanswered = None
                if found is not None:
                    return found
            if elapsed >= self.window:
                break
            pause = min(next(pauses), self.window - elapsed)
            self.sleep(pause)
            elapsed += pause
        if unanswered is not None:
            raise ProviderError(
                unanswered.provider,
                "create",
                f"an earlier attempt to create {self.what} may have taken effect and the "
                f"provider could not be asked for {self.window:g} s ({unanswered.message}); "
                f"nothing more was created. {self.resume_hint}".strip(),
                retryable=False,
            )
        return None


def with_attempt(extra: dict[str, Any], at: float | None) -> dict[str, Any]:
    """`extra` with the create-attempt mark set to `at`, or removed when `at` is None.

    >>> with_attempt({"a": 1}, 5.0), with_attempt({"a": 1, ATTEMPT_KEY: 5.0}, None)
    ({'a': 1, 'create_attempted_at': 5.0}, {'a': 1})
    """
    kept = {k: v for k, v in extra.items() if k != ATTEMPT_KEY}
    return {**kept, ATTEMPT_KEY: at} if at else kept


def _definitely_not_created(exc: ProviderError) -> bool:
    """A 4xx answer (other than a timeout, a conflict or a rate limit) means the create was
    refused; provider code that knows it made nothing says so with `not_created=True`."""
    if exc.not_created:
        return True
    code = exc.status_code
    return code is not None and 400 <= code < 500 and code not in (408, 409, 429)
