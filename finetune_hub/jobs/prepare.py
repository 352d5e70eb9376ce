"""From a job description to what a backend receives: rules resolved and hyperparameters put in
the provider's names and types, once, here (backends never resolve rules themselves).

>>> prepare_job(JobSpec(provider="openai", base_model="gpt-4.1-mini", training_file="t.jsonl",
...                     hyperparameters={"epochs": 3}), "ftj_0").hyperparameters  # doctest: +SKIP
{'n_epochs': 3}
"""

from __future__ import annotations

import re

from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.jobs.spec import JobSpec
from finetune_hub.providers.base import PreparedJob
from finetune_hub.rules import default_catalog, resolve


def prepare_job(spec: JobSpec, job_id: str) -> PreparedJob:
    """The `PreparedJob` for `spec` under the local id `job_id`."""
    # the user's declared (raised) quotas, as validation used them: a backend's own checks
    # (Bedrock's preflight of Service Quotas) then compare with what the user said
    rules, _ = resolve(spec.provider, spec.base_model, spec.method, quotas=spec.quotas or None)
    values = check_hyperparameters(spec.hyperparameters, rules).provider_values
    return PreparedJob(
        job_id=job_id,
        provider=spec.provider,
        base_model=spec.base_model,
        model_id=model_id(spec.provider, spec.base_model, rules.model_id),
        method=spec.method,
        format=spec.format,
        hyperparameters=dict(values),
        suffix=spec.suffix,
        training_file=spec.training_file,
        validation_file=spec.validation_file,
        datasets=dict(spec.datasets),
        rules=rules,
    )


def model_id(provider: str, base_model: str, resolved: str | None) -> str:
    """The id to send: a tuned model's own name when training continues from it (the rules'
    `fine_tuned_pattern` recognises it), else the rules' id for the base model."""
    if is_fine_tuned_name(provider, base_model):
        return base_model
    return resolved or base_model


def is_fine_tuned_name(provider: str, name: str) -> bool:
    """True for a tuned model's name (`ft:...` on OpenAI, `<base>.ft-<id>` on Azure)."""
    data = default_catalog().provider_data(provider).get("provider", {})
    pattern = data.get("fine_tuned_pattern")
    return bool(pattern and re.match(pattern, name))
