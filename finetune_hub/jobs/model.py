"""`TunedModel`: what a job produces, ready to try, deploy or delete.

>>> model = job.wait()  # doctest: +SKIP
>>> model.chat([{"role": "user", "content": "こんにちは"}])  # doctest: +SKIP
>>> with model.deploy(confirm_cost=True, delete_on_exit=True) as d:  # doctest: +SKIP
...     d.chat([{"role": "user", "content": "hi"}])
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from finetune_hub.errors import CostConfirmationRequired

if TYPE_CHECKING:
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.providers.base import Deployer, DeploymentCost


class TunedModel:
    """A fine-tuned model of a `TuningJob`."""

    def __init__(self, job: TuningJob, model_id: str) -> None:
        self.job = job
        self.id = model_id

    @property
    def provider(self) -> str:
        return self.job.spec.provider

    def __repr__(self) -> str:
        return f"<TunedModel {self.id} on {self.provider} (job {self.job.id})>"

    @property
    def smoke_test(self) -> dict[str, Any] | None:
        """The report of the check run right after training, where the backend runs one (local:
        does a reply stop where the chat template ends a turn? docs/guardrails.md), else None.

        >>> model.smoke_test["ok"], [i["code"] for i in model.smoke_test["issues"]]  # doctest: +SKIP
        (False, ['end_of_turn_not_a_stop_token'])
        """
        rec = self.job.record
        return None if rec is None else rec.extra.get("smoke_test")

    def _repr_html_(self) -> str:
        from finetune_hub.jobs.display import model_html

        return model_html(self)

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One chat turn with the tuned model where the provider serves it without a deployment
        (OpenAI, Bedrock on-demand Converse where allowed, local); returns the reply text."""
        backend = self.job.backend
        return self.job._call("chat", lambda: backend.chat(self.id, messages, **kwargs))

    def generate(self, prompt: str, **kwargs: Any) -> str:
        """A reply to one user prompt (a one-turn `chat`)."""
        return self.chat([{"role": "user", "content": prompt}], **kwargs)

    def deployer(self, kind: str | None = None) -> Deployer:
        """The provider's deployer for serving mode `kind` (default: its first)."""
        from finetune_hub.providers.base import deployer_for

        return deployer_for(self.job.backend, kind)

    def deployment_cost(self, kind: str | None = None, **options: Any) -> DeploymentCost:
        """What a deployment of this model costs while it exists (hourly price with its source,
        or unknown)."""
        deployer = self.deployer(kind)
        return deployer.cost(self.id, deployer.parse(options))

    def hourly_cost(self, kind: str | None = None, **options: Any) -> float | None:
        """The hourly price in USD of a deployment, where the rules know it."""
        return self.deployment_cost(kind, **options).hourly_usd

    def deploy(
        self,
        kind: str | None = None,
        *,
        confirm_cost: bool = False,
        name: str | None = None,
        delete_on_exit: bool = False,
        max_hourly_cost: float | None = None,
        ttl: float | dt.timedelta | None = None,
        **options: Any,
    ) -> Deployment:
        """Deploy the model in serving mode `kind` (the provider's first when not given: see
        `finetune-hub rules --provider P` or docs/providers/). A deployment that bills states its
        cost and needs `confirm_cost=True`, or a `max_hourly_cost` (USD) it is within: over it,
        or at a price the rules do not know, it is refused (`fh.CostLimitExceeded`) before
        anything is created. Safe to repeat: a deployment of the same name is found, not
        created twice. A provider whose tuned models need no deployment (OpenAI) raises
        `fh.UnsupportedOperation` saying how to use the model instead. `ttl` (seconds or a
        timedelta) records when the deployment expires: `finetune-hub reap` (or
        `fh.reap_expired()`) deletes it after that (docs/guardrails.md).

        >>> d = model.deploy(max_hourly_cost=2.0)  # doctest: +SKIP
        """
        from finetune_hub.jobs.deployment import Deployment, deployment_name
        from finetune_hub.jobs.guardrails import seconds

        life = seconds(ttl, "ttl")
        expires_at = None if life is None else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=life)
        deployer = self.deployer(kind)
        opts = deployer.parse(options)
        cost = deployer.cost(self.id, opts)
        what = f"deploying {self.id} on {self.provider} ({deployer.display_name})"
        if max_hourly_cost is not None:
            _within(cost, max_hourly_cost, what)
            confirm_cost = True  # the cap you gave is your yes, up to that rate
        if not confirm_cost:
            raise CostConfirmationRequired(
                f"{cost.sentence(what)}; call deploy(confirm_cost=True) to go ahead"
            )
        return Deployment.create(
            self,
            deployer,
            opts,
            name or deployment_name(self.job.id),
            cost,
            delete_on_exit,
            expires_at=expires_at,
        )

    def delete(self) -> None:
        """Delete the tuned model at the provider (teardown; the job record stays, marked with
        `model_deleted_at` so that `finetune-hub jobs prune` can clear it)."""
        import datetime as dt

        backend = self.job.backend
        self.job._call("delete_model", lambda: backend.delete_model(self.id))
        rec = self.job.record
        if rec is not None:
            deleted = {"model_deleted_at": dt.datetime.now(dt.UTC).isoformat()}
            self.job.store.update(self.job.id, extra={**rec.extra, **deleted})


def _within(cost: DeploymentCost, max_hourly_cost: float, what: str) -> None:
    """`CostLimitExceeded` when the hourly price is over `max_hourly_cost` or unknown."""
    from finetune_hub.errors import CostLimitExceeded

    if cost.hourly_usd is None:
        raise CostLimitExceeded(
            f"{cost.sentence(what)}; deploy(max_hourly_cost={max_hourly_cost:g}) refuses a "
            "deployment whose hourly price is unknown; nothing was created",
            cost,
        )
    if cost.hourly_usd > max_hourly_cost:
        raise CostLimitExceeded(
            f"{cost.sentence(what)}; that is over max_hourly_cost=${max_hourly_cost:,.2f}, so "
            "nothing was created",
            cost,
        )
