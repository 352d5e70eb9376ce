"""Guardrails while a job runs: a time budget and stall detection, and what a cancel still costs.

- `submit(max_duration=...)` records a budget on the job (`extra.max_duration`: seconds and the
  deadline on the job's clock), so a `wait()` in any process can hold the job to it.
- A job is *stalled* when its state has not changed and no new event has come for `stall_after`
  seconds. The default per provider is rules data (`[guardrails.stall]` in each rules TOML,
  finetune_hub's own figure, cited as such); `wait(stall_after=...)` overrides it.
- `wait()` warns once per stall (the progress line, the `finetune_hub.guardrails` logger and the
  store: `extra.stalled`), and with `on_stall="cancel"` cancels a stalled job or one over its
  budget, recording why (`extra.guardrail_cancel`, `error`, `error_code`) and what the provider
  still charges for (`[guardrails.cancel]`, with its source, or "unknown").

>>> job.submit(max_duration=4 * 3600)  # doctest: +SKIP
>>> job.wait(on_stall="cancel")  # doctest: +SKIP
Traceback (most recent call last):
finetune_hub.errors.JobFailed: job ftj_... on bedrock cancelled: no state change and no new event ...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from finetune_hub.errors import FinetuneHubError, JobFailed
from finetune_hub.status import JobStatus

if TYPE_CHECKING:
    from finetune_hub.jobs.progress import Progress
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.store import JobRecord

log = logging.getLogger("finetune_hub.guardrails")

#: keys in a job record's `extra`
BUDGET_KEY = "max_duration"  # {"seconds", "deadline" (job clock), "deadline_at" (ISO, UTC)}
STALL_KEY = "stalled"  # {"since_at", "stalled_for_s", "stall_after_s", "noticed_at", "message"}
OVER_KEY = "over_max_duration"  # {"noticed_at", "message"} once the budget is spent
CANCEL_KEY = "guardrail_cancel"  # {"kind", "reason", "charges", "at"} after a guardrail cancel

ON_STALL = ("warn", "cancel")
STALLED, OVER_BUDGET = "stalled", "max_duration_exceeded"


class GuardrailFact(BaseModel):
    """One guardrail figure of a provider's rules, with its citation (or None: no figure)."""

    value: Any = None
    cite: str = ""


# -- the rules data -----------------------------------------------------------------------------
def _table(provider: str, name: str) -> tuple[dict[str, Any], str]:
    from finetune_hub.rules import default_catalog
    from finetune_hub.rules.schema import Provenance

    catalog = default_catalog()
    try:
        table = catalog.provider_data(provider).get("guardrails", {}).get(name) or {}
    except FinetuneHubError:
        return {}, ""
    if not table:
        return {}, ""
    unconfirmed = table.get("unconfirmed", False)
    prov = Provenance(
        sources=catalog.sources(provider, table.get("source")),
        as_of=table.get("as_of", dt.date(1970, 1, 1)),
        confirmed=not unconfirmed,
        note=table.get("note", "") if unconfirmed else "",
    )
    return table, prov.cite()


def stall_rule(provider: str) -> GuardrailFact:
    """The provider's default `stall_after` in seconds (rules `[guardrails.stall] after_hours`),
    with its citation; `value` None when the rules give none (no stall detection by default).

    >>> stall_rule("bedrock").value
    86400.0
    """
    table, cite = _table(provider, "stall")
    hours = table.get("after_hours")
    return GuardrailFact(value=None if hours is None else float(hours) * 3600, cite=cite)


def cancel_charges(provider: str) -> str:
    """What the provider still charges for once a job is cancelled, with the source; "unknown"
    where the rules hold nothing.

    >>> "tokens" in cancel_charges("bedrock")
    True
    """
    table, cite = _table(provider, "cancel")
    if not table.get("charges"):
        return "what the provider still charges for after a cancel is unknown to finetune_hub"
    return f"{table['charges']} ({cite})"


# -- budgets --------------------------------------------------------------------------------------
def seconds(value: float | dt.timedelta | None, what: str) -> float | None:
    """`value` (seconds, or a timedelta) as seconds > 0; None stays None.

    >>> seconds(dt.timedelta(hours=2), "max_duration")
    7200.0
    """
    if value is None:
        return None
    out = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if isinstance(out, bool) or not isinstance(out, int | float) or not out > 0:
        raise ValueError(f"{what} must be a number of seconds > 0 or a timedelta, not {value!r}")
    return float(out)


def record_budget(job: TuningJob, max_duration: float) -> None:
    """Note the time budget on the job: `max_duration` seconds from now, on the job's clock."""
    rec = job.store.require(job.id)
    deadline = job.clock() + max_duration
    at = dt.datetime.fromtimestamp(deadline, dt.UTC).isoformat()
    budget = {"seconds": max_duration, "deadline": deadline, "deadline_at": at}
    extra = {k: v for k, v in rec.extra.items() if k != OVER_KEY}
    job.store.update(job.id, extra={**extra, BUDGET_KEY: budget})


# -- what a stall or a spent budget says ----------------------------------------------------------
def stall_text(rec: JobRecord, status: JobStatus, quiet: float, after: float, cite: str) -> str:
    """The warning for a job that has not moved for `quiet` seconds (`wait()` and refreshes).

    >>> from finetune_hub.store import JobRecord
    >>> rec = JobRecord(id="ftj_1", provider="bedrock", base_model="m", training_file="t")
    >>> stall_text(rec, JobStatus.RUNNING, 7300, 3600, "the rules")
    'ftj_1 on bedrock: no state change and no new event for 2h 1m (still running); stall_after=1h (the rules)'
    """
    raw = f" ({rec.raw_status})" if rec.raw_status else ""
    return (
        f"{rec.id} on {rec.provider}: no state change and no new event for {human(quiet)} "
        f"(still {status.value}{raw}); stall_after={human(after)} ({cite})"
    )


def budget_text(rec: JobRecord, status: JobStatus, spent: float, allowed: float) -> str:
    """The warning for a job that has run `spent` seconds of a `max_duration` of `allowed`."""
    return (
        f"{rec.id} on {rec.provider} has run {human(spent)}, over its max_duration of "
        f"{human(allowed)} (still {status.value})"
    )


# -- the watch inside wait() ----------------------------------------------------------------------
class StallWatch:
    """Called with each poll's status inside `wait()`: notes progress (a state change, a new
    event), warns once per stall or spent budget, and cancels when `on_stall="cancel"`.

    Events are fetched when the progress line fetched them anyway, else at most every quarter
    of `stall_after`, so a stall is declared at most a quarter late and costs few extra calls.
    Time in which the provider could not be reached does not count as a stall.
    """

    def __init__(
        self,
        job: TuningJob,
        *,
        on_stall: str = "warn",
        stall_after: float | dt.timedelta | None = None,
        bar: Progress | None = None,
    ) -> None:
        if on_stall not in ON_STALL:
            raise ValueError(f"on_stall must be one of {', '.join(ON_STALL)}, not {on_stall!r}")
        self.job = job
        self.on_stall = on_stall
        rule = stall_rule(job.provider)
        given = seconds(stall_after, "stall_after")
        self.after = given if given is not None else rule.value
        self.cite = "given to wait()" if given is not None else rule.cite
        self.bar = bar
        now = job.clock()
        self.since = now
        self.events_checked = now
        rec = job.record
        self.key = (rec.status, rec.raw_status) if rec else None
        self.last_event = self._latest_event_id()
        self.warned: set[str] = set()

    @property
    def active(self) -> bool:
        rec = self.job.record
        return self.after is not None or bool(rec and BUDGET_KEY in rec.extra)

    def __call__(self, status: JobStatus) -> JobStatus:
        if status.is_terminal or not self.active:
            return status
        job = self.job
        now = job.clock()
        rec = job.store.require(job.id)
        key = (rec.status, rec.raw_status)
        if key != self.key or self._new_events(now):
            self.key = key
            self._moved(now, rec)
            return status
        budget = rec.extra.get(BUDGET_KEY)
        if budget and now >= float(budget["deadline"]):
            spent = now - (float(budget["deadline"]) - float(budget["seconds"]))
            text = budget_text(rec, status, spent, float(budget["seconds"]))
            return self._trip(OVER_BUDGET, text, status, OVER_KEY, {})
        unreachable = job._unreachable_since is not None
        if self.after is not None and not unreachable and now - self.since >= self.after:
            text = stall_text(rec, status, now - self.since, self.after, self.cite)
            since_at = _iso_clock(self.since)
            return self._trip(
                STALLED,
                text,
                status,
                STALL_KEY,
                {
                    "since_at": since_at,
                    "stalled_for_s": now - self.since,
                    "stall_after_s": self.after,
                },
            )
        return status

    # -- progress ---------------------------------------------------------------------------------
    def _latest_event_id(self) -> str | None:
        latest = self.job.store.latest_events([self.job.id]).get(self.job.id)
        return latest.id if latest is not None else None

    def _new_events(self, now: float) -> bool:
        """True when an event came since the last progress (fetching them when it is time)."""
        fetched = self.bar is not None and self.bar.active  # _poll_once fetched them already
        if not fetched and self.after is not None and now - self.events_checked >= self.after / 4:
            self.events_checked = now
            with contextlib.suppress(FinetuneHubError):  # none to be had: the state decides
                self.job.events()
        latest = self._latest_event_id()
        if latest != self.last_event:
            self.last_event = latest
            return True
        return False

    def _moved(self, now: float, rec: JobRecord) -> None:
        self.since = now
        self.warned.discard(STALLED)
        if STALL_KEY in rec.extra:
            extra = {k: v for k, v in rec.extra.items() if k != STALL_KEY}
            self.job.store.update(self.job.id, extra=extra)
            log.info("%s is moving again (%s)", self.job.id, rec.status.value)

    # -- warn, then cancel ------------------------------------------------------------------------
    def _trip(
        self, kind: str, text: str, status: JobStatus, key: str, fields: dict[str, Any]
    ) -> JobStatus:
        job = self.job
        if kind not in self.warned:
            self.warned.add(kind)
            log.warning("%s", text)
            if self.bar is not None:
                self.bar.update(status, text)
            rec = job.store.require(job.id)
            note = {**fields, "noticed_at": _now_iso(), "message": text}
            job.store.update(job.id, extra={**rec.extra, key: note})
        if self.on_stall != "cancel":
            return status
        return self._cancel(kind, text)

    def _cancel(self, kind: str, reason: str) -> JobStatus:
        job = self.job
        after, charges = cancel_for_guardrail(job, kind, reason)
        if after is JobStatus.SUCCEEDED:
            return after  # it finished before the cancel arrived: the wait ends with the model
        raise JobFailed(
            job.id,
            job.provider,
            f"{reason}; cancelled by finetune_hub (wait(on_stall='cancel')). "
            f"What it still costs: {charges}",
            code=kind,
            status=after.value,
        )


def cancel_for_guardrail(job: TuningJob, kind: str, reason: str) -> tuple[JobStatus, str]:
    """Cancel `job` for a guardrail (`kind`: "stalled" or "max_duration_exceeded") and record why
    and what the provider still charges (`extra.guardrail_cancel`, `error`, `error_code`);
    returns the state after the cancel and the charges. A job that finished before the cancel
    arrived is left as it is."""
    after = job.cancel()
    charges = cancel_charges(job.provider)
    if after is JobStatus.SUCCEEDED:
        return after, charges
    rec = job.store.require(job.id)
    note = {"kind": kind, "reason": reason, "charges": charges, "at": _now_iso()}
    job.store.update(
        job.id,
        extra={**rec.extra, CANCEL_KEY: note},
        error=f"cancelled by finetune_hub: {reason}",
        error_code=kind,
    )
    log.warning("%s cancelled (%s); still charged: %s", job.id, kind, charges)
    return after, charges


# -- what the store shows -------------------------------------------------------------------------
def guardrail_mark(record: JobRecord, *, now: dt.datetime | None = None) -> str:
    """A short note for job lists: `stalled 3h`, `over max_duration`, `cancelled: stalled`, or ""

    >>> from finetune_hub.store import JobRecord
    >>> guardrail_mark(JobRecord(provider="openai", base_model="m", training_file="t"))
    ''
    """
    extra = record.extra
    if CANCEL_KEY in extra:
        return f"cancelled: {extra[CANCEL_KEY].get('kind', 'guardrail')}"
    if record.status.is_terminal:
        return ""
    if STALL_KEY in extra:
        note = extra[STALL_KEY]
        try:
            noticed = dt.datetime.fromisoformat(note["noticed_at"])
            stalled = float(note.get("stalled_for_s") or 0)
        except (KeyError, TypeError, ValueError):
            return "stalled"
        now = now or dt.datetime.now(dt.UTC)
        since_noticed = max(0.0, (now - noticed).total_seconds())  # a skewed clock adds nothing
        return f"stalled {human(since_noticed + stalled)}"
    if OVER_KEY in extra:
        return "over max_duration"
    return ""


def human(secs: float) -> str:
    """`45s`, `12m`, `3h 5m`, `2d 4h`.

    >>> human(3 * 3600 + 300)
    '3h 5m'
    """
    s = max(0, int(secs))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, sec = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{sec}s"


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _iso_clock(value: float) -> str:
    """A job-clock time (Unix seconds) as ISO text; a clock that is not Unix time stays readable."""
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(value)
