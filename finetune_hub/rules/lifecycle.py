"""Model lifecycle as behaviour: dates in the rules data become notices on the right day.

Each model may carry `deprecated_on`, `new_jobs_end`, `shutdown_on` (or `retired_on`),
`restricted_on` with `restriction`, and a `replacement`. At check time, with today's date:

* past `new_jobs_end` or `shutdown_on`: an error naming the date and the replacement (a warning
  when the date is UNCONFIRMED);
* within `WARN_DAYS` of either: a warning with the date;
* past `restricted_on`: a warning saying who may still fine-tune;
* past `deprecated_on` (or `status = "deprecated"` / `"legacy"`): a warning.

Today's date is `FINETUNE_HUB_TODAY=YYYY-MM-DD` when set, else the real date, read on every call,
so the same rules turn into errors on the right day without a release.

>>> import os
>>> os.environ["FINETUNE_HUB_TODAY"] = "2027-01-07"
>>> today()
datetime.date(2027, 1, 7)
>>> del os.environ["FINETUNE_HUB_TODAY"]
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable

from finetune_hub.errors import RulesError
from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.schema import ResolvedRules

#: Days before an end date from which a warning is given.
WARN_DAYS = 90
TODAY_ENV = "FINETUNE_HUB_TODAY"


def today() -> dt.date:
    """`FINETUNE_HUB_TODAY` (YYYY-MM-DD) when set, else the real date; read on every call."""
    value = os.environ.get(TODAY_ENV, "").strip()
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RulesError(f"{TODAY_ENV}={value!r} is not a date; use YYYY-MM-DD") from None


def lifecycle_notes(
    rules: ResolvedRules,
    fine_tuned_from: str | None,
    day: dt.date,
    alternatives: Iterable[str] = (),
) -> list[Issue]:
    """The notices one model's dates give on `day` (see the module docstring).

    `alternatives` are the models the rules still accept for the same method, named when the
    provider gives no replacement.
    """
    name = rules.model_id or rules.requested_model
    if fine_tuned_from:
        name = f"{fine_tuned_from} (fine-tuned from {name})"
    provider = rules.provider_display_name
    notes: list[Issue] = []
    shut = rules.shutdown_on
    end = rules.new_jobs_end
    shut_passed = shut is not None and shut <= day
    end_passed = end is not None and end <= day and not shut_passed
    alternatives = list(alternatives)

    if shut is not None:
        past = "was shut down" if rules.shutdown_word == "shuts down" else "was retired"
        if shut_passed:
            notes.append(
                _note(
                    rules,
                    "shutdown_on",
                    "model_shutdown",
                    f"{name} {past} on {shut}{_instead(rules, alternatives)}",
                )
            )
        elif (shut - day).days <= WARN_DAYS:
            left = (shut - day).days
            text = f"{name} {rules.shutdown_word} on {shut} (in {left} days){_repl(rules)}"
            notes.append(_note(rules, "shutdown_on", "model_shutdown_announced", text, warn=True))
    if end is not None and not shut_passed:
        if end_passed:
            others = _others(rules, alternatives)
            text = f"{provider} takes no new fine-tuning jobs for {name} since {end}{others}"
            notes.append(_note(rules, "new_jobs_end", "fine_tuning_ending", text))
        elif (end - day).days <= WARN_DAYS:
            left = (end - day).days
            text = (
                f"{provider} stops taking new fine-tuning jobs for {name} on {end} (in {left} days)"
            )
            notes.append(
                _note(rules, "new_jobs_end", "fine_tuning_ending_announced", text, warn=True)
            )
    if any(n.is_error for n in notes):
        return notes
    dated = bool(notes)
    restricted = rules.restricted_on
    if restricted is not None and restricted <= day and not end_passed:
        who = rules.restriction or "some customers"
        text = f"since {restricted} only {who} can create fine-tuning jobs for {name} on {provider}"
        notes.append(_note(rules, "restricted_on", "fine_tuning_restricted", text, warn=True))
    deprecated = rules.deprecated_on is not None and rules.deprecated_on <= day
    if (deprecated or rules.model_status in ("legacy", "deprecated")) and not dated:
        status = "deprecated" if deprecated else rules.model_status
        since = f" since {rules.deprecated_on}" if deprecated else ""
        why = f": {rules.status_note}" if rules.status_note else ""
        field = "deprecated_on" if deprecated else "model_status"
        text = f"{name} is {status}{since}{why}{_repl(rules)}"
        notes.append(_note(rules, field, f"model_{status}", text, warn=True))
    return notes


def _note(rules: ResolvedRules, field: str, code: str, text: str, *, warn: bool = False) -> Issue:
    severity = Severity.WARNING if warn or not rules.confirmed(field) else Severity.ERROR
    extra = f"; {rules.lifecycle_note}" if rules.lifecycle_note else ""
    return Issue(
        code=code,
        severity=severity,
        field="base_model",
        message=f"{text}{extra} ({rules.cite(field)})",
    )


def _repl(rules: ResolvedRules) -> str:
    return (
        f"; the provider names {rules.replacement} as its replacement" if rules.replacement else ""
    )


def _instead(rules: ResolvedRules, alternatives: list[str]) -> str:
    return _repl(rules) if rules.replacement else _others(rules, alternatives)


def _others(rules: ResolvedRules, alternatives: list[str]) -> str:
    others = [a for a in alternatives if a != rules.model_id]
    if others:
        return f"; models these rules still accept for {rules.method}: {', '.join(others)}"
    return (
        f"; no {rules.provider_display_name} model in these rules still takes {rules.method} jobs"
    )
