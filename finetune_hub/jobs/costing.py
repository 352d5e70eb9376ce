"""Cost estimates for jobs: the training data's statistics and the rules' prices
(`checks/cost.py`), with each deployment type the rules name priced by its serving mode's own
`Deployer.cost()`, so the estimate and the sentence `deploy()` states never disagree.

>>> est = fh.estimate_cost("chat.jsonl", "azure-openai", "gpt-4.1",
...                        options={"training_type": "GlobalStandard"})  # doctest: +SKIP
>>> print(est)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from finetune_hub.checks.cost import CostEstimate, PriceSource, ServingCost, estimate
from finetune_hub.checks.report import ValidationReport
from finetune_hub.errors import FinetuneHubError, UnsupportedOperation
from finetune_hub.providers.base import TuningBackend, deployer_for, make_backend
from finetune_hub.rules.schema import ResolvedRules, ServingPlan


def estimate_cost(
    training_file: str | os.PathLike[str],
    provider: str,
    base_model: str,
    method: str = "sft",
    *,
    validation_file: str | os.PathLike[str] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    quotas: Mapping[str, int] | None = None,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    report: ValidationReport | None = None,
) -> CostEstimate:
    """What a job on these data would cost, before any job exists (`finetune-hub cost`).

    Validates the file to count its tokens (or uses `report`), resolves the rules' prices and
    asks each deployment type the rules name what it costs. Nothing leaves the machine.

    >>> est = fh.estimate_cost("train.jsonl", "bedrock", "amazon.titan-text-lite-v1",
    ...                        hyperparameters={"epochs": 2})  # doctest: +SKIP
    >>> est.trained_tokens, est.storage.usd, est.serving[0].monthly_usd  # doctest: +SKIP
    """
    from finetune_hub.checks.validation import validate
    from finetune_hub.rules import resolve

    if report is None:
        report = validate(
            training_file,
            provider,
            base_model,
            method,
            validation_file=validation_file,
            hyperparameters=hyperparameters,
            format=format,
            quotas=quotas,
            mapping=mapping,
        )
    rules, _ = resolve(provider, base_model, method, quotas=dict(quotas) if quotas else None)
    try:
        backend: TuningBackend | None = make_backend(provider, dict(options or {}))
        why = ""
    except FinetuneHubError as exc:  # a validation-only provider, a missing SDK, bad options
        backend, why = None, str(exc)
    serving = serving_costs(backend, rules, rules.model_id or base_model, why=why)
    return estimate(report, rules, options=dict(options or {}), serving=serving)


def serving_costs(
    backend: TuningBackend | None,
    rules: ResolvedRules,
    model: str,
    *,
    why: str = "",
) -> list[ServingCost]:
    """Each deployment type in `rules.serving`, priced by its deployer's `cost(model, options)`
    (`model`: the tuned model once it exists, else the base model). Without a backend (`why`
    says why) every line is unknown."""
    out = []
    for plan in rules.serving:
        out.append(_serving_cost(backend, plan, rules, model, why))
    return out


def _serving_cost(
    backend: TuningBackend | None, plan: ServingPlan, rules: ResolvedRules, model: str, why: str
) -> ServingCost:
    label = plan.label or plan.kind
    line = ServingCost(kind=plan.kind, label=label, term_hours=plan.term_hours)
    if backend is None:
        return line.model_copy(update={"note": f"price unknown: {why}"})
    try:
        deployer = deployer_for(backend, plan.kind)
        options = dict(plan.options)
        if "base_model" in deployer.Options.model_fields and "base_model" not in options:
            options["base_model"] = rules.model_id or rules.requested_model  # no look-up needed
        cost = deployer.cost(model, deployer.parse(options))
    except UnsupportedOperation as exc:
        return line.model_copy(update={"available": False, "note": str(exc)})
    except FinetuneHubError as exc:
        return line.model_copy(update={"note": f"price unknown: {exc}"})
    return line.model_copy(
        update={
            "hourly_usd": cost.hourly_usd,
            "note": cost.note,
            "source": PriceSource.from_text(cost.source, cost.as_of),
        }
    )
