"""Compare what a provider says it can tune today with what the rules data says.

Pure: `diff_tunable` takes the provider's list of tunable model ids (optionally with the methods
each takes) and returns the differences; fetching that list is the backend's `tunable_models()`
(see docs/rules.md, "finetune-hub rules check --live").

>>> d = diff_tunable("openai", ["gpt-4.1-2025-04-14", "gpt-9"], today=dt.date(2026, 11, 30))
>>> d.unknown_to_rules
['gpt-9']
>>> "gpt-4.1-mini-2025-04-14" in d.not_offered
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from finetune_hub.rules.catalog import Catalog, default_catalog
from finetune_hub.rules.lifecycle import today as current_day


@dataclass
class LiveDiff:
    """The differences between a provider's tunable models and the rules data.

    `unknown_to_rules`: the provider tunes it, the rules do not list it (add it).
    `not_offered`: the rules accept it today, the provider does not list it (retired or moved?).
    `ended_but_offered`: the rules say its fine-tuning has ended, the provider still lists it.
    `method_differences`: `(model, provider's methods, rules' methods)` where both are known and
    differ. `matched`: listed by both, consistent.
    """

    provider: str
    day: dt.date
    offered: list[str] = field(default_factory=list)
    unknown_to_rules: list[str] = field(default_factory=list)
    not_offered: list[str] = field(default_factory=list)
    ended_but_offered: list[str] = field(default_factory=list)
    method_differences: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        """True when the rules and the provider agree on every model."""
        return not (
            self.unknown_to_rules
            or self.not_offered
            or self.ended_but_offered
            or self.method_differences
        )

    def lines(self) -> list[str]:
        """The differences as plain sentences (what the command line prints)."""
        out = []
        for model in self.unknown_to_rules:
            out.append(f"{model}: the provider can tune it; the rules do not list it")
        for model in self.not_offered:
            out.append(f"{model}: the rules accept it; the provider does not list it as tunable")
        for model in self.ended_but_offered:
            out.append(
                f"{model}: the rules say its fine-tuning has ended; the provider still lists it"
            )
        for model, theirs, ours in self.method_differences:
            out.append(
                f"{model}: the provider tunes it with {', '.join(theirs) or 'nothing'}; "
                f"the rules say {', '.join(ours) or 'nothing'}"
            )
        return out


def diff_tunable(
    provider: str,
    tunable: Iterable[str] | Mapping[str, Iterable[str]],
    *,
    catalog: Catalog | None = None,
    today: dt.date | None = None,
) -> LiveDiff:
    """Differences between `tunable` (model ids the provider can tune, or id -> methods in
    finetune_hub's names: sft, continued-pretraining, distillation, ...) and the rules."""
    cat = catalog or default_catalog()
    day = today or current_day()
    methods_of = (
        {m: sorted(set(v)) for m, v in tunable.items()} if isinstance(tunable, Mapping) else None
    )
    offered = sorted(set(tunable))
    diff = LiveDiff(provider=provider, day=day, offered=offered)
    pinfo = cat.provider_data(provider).get("provider", {})
    by_name: dict[str, dict[str, Any]] = {}
    for model in cat.models(provider):
        for name in [model["id"], *model.get("aliases", [])]:
            by_name[name.lower()] = model
    seen: set[str] = set()
    for model_id in offered:
        model = by_name.get(model_id.lower())
        if model is None:
            diff.unknown_to_rules.append(model_id)
            continue
        seen.add(model["id"])
        if _ended(model, pinfo, day):
            diff.ended_but_offered.append(model["id"])
            continue
        ours = sorted(model.get("methods", {}))
        theirs = methods_of.get(model_id) if methods_of is not None else None
        if theirs is not None and not set(theirs) <= set(ours):
            diff.method_differences.append((model["id"], theirs, ours))
        else:
            diff.matched.append(model["id"])
    for model in cat.models(provider):
        if model["id"] not in seen and model.get("methods") and not _ended(model, pinfo, day):
            diff.not_offered.append(model["id"])
    return diff


def _ended(model: dict[str, Any], pinfo: dict[str, Any], day: dt.date) -> bool:
    """The rules say no new jobs can be made for this model on `day`."""
    ends = [
        model.get("new_jobs_end", pinfo.get("new_jobs_end")),
        model.get("shutdown_on", model.get("retired_on")),
    ]
    return any(d is not None and d <= day for d in ends)
