"""`TunedModel` (what a job produces) and `Deployment` (what may bill by the hour)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from finetune_hub.errors import CostConfirmationRequired
from finetune_hub.providers.base import Capability, DeploymentInfo, ProviderError, call_with_retries

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.store import DeploymentRecord


class TunedModel:
    """A fine-tuned model, ready to try, deploy or delete.

    >>> model = job.wait()  # doctest: +SKIP
    >>> model.chat([{"role": "user", "content": "こんにちは"}])  # doctest: +SKIP
    """

    def __init__(self, job: TuningJob, model_id: str) -> None:
        self.job = job
        self.id = model_id

    @property
    def provider(self) -> str:
        return self.job.spec.provider

    def __repr__(self) -> str:
        return f"<TunedModel {self.id} on {self.provider} (job {self.job.id})>"

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One chat turn with the tuned model, for a quick try; returns the reply text."""
        return call_with_retries(lambda: self.job.provider.chat(self.id, messages, **kwargs), sleep=self.job.sleep)

    def generate(self, prompt: str, **kwargs: Any) -> str:
        """A reply to one user prompt (a one-turn `chat`)."""
        return self.chat([{"role": "user", "content": prompt}], **kwargs)

    def hourly_cost(self, **options: Any) -> float | None:
        """What a deployment of this model costs per hour in USD, where the rules know it."""
        return self.job.provider.hourly_cost(self.id, options)

    def deploy(self, *, confirm_cost: bool = False, name: str | None = None, delete_on_exit: bool = False, **options: Any) -> Deployment:
        """Deploy the model where the provider needs a deployment to serve it.

        A deployment that bills by the hour states its cost and needs `confirm_cost=True`.

        >>> with model.deploy(confirm_cost=True, delete_on_exit=True) as d:  # doctest: +SKIP
        ...     d.chat([{"role": "user", "content": "hi"}])
        """
        from finetune_hub.store import DeploymentRecord, is_secret_key

        provider = self.job.provider
        if Capability.DEPLOY not in provider.capabilities:
            raise provider._unsupported("deploy")
        cost = self.hourly_cost(**options)
        if not confirm_cost:
            note = provider.cost_note(self.id, options)
            if note:
                raise CostConfirmationRequired(f"deploying {self.id} on {self.provider}: {note}; call deploy(confirm_cost=True) to go ahead")
            what = f"${cost:,.2f} per hour (about ${cost * 24 * 30:,.0f} a month)" if cost is not None else "an hourly fee that finetune_hub does not know"
            raise CostConfirmationRequired(
                f"deploying {self.id} on {self.provider} costs {what} until it is deleted; "
                "call deploy(confirm_cost=True) to go ahead"
            )
        name = name or _deployment_name(self.job.id)
        info = call_with_retries(lambda: provider.deploy(self.id, name, options), sleep=self.job.sleep)
        record = DeploymentRecord(
            id=f"{self.provider}:{name}",
            job_id=self.job.id,
            provider=self.provider,
            name=name,
            model=self.id,
            status=info.status,
            endpoint=info.endpoint,
            hourly_cost_usd=cost,
            extra={k: v for k, v in options.items() if isinstance(v, str | int | float | bool) and not is_secret_key(k)},
        )
        self.job.store.save_deployment(record)
        return Deployment(self, info, options, record, delete_on_exit=delete_on_exit)

    def delete(self) -> None:
        """Delete the tuned model at the provider (teardown; the job record stays)."""
        call_with_retries(lambda: self.job.provider.delete_model(self.id), sleep=self.job.sleep)


class Deployment:
    """A deployed tuned model. `delete()` is idempotent; as a context manager it deletes itself on
    exit when `delete_on_exit=True`."""

    def __init__(self, model: TunedModel, info: DeploymentInfo, options: dict[str, Any], record: DeploymentRecord, *, delete_on_exit: bool = False) -> None:
        self.model = model
        self.info = info
        self.options = options
        self.record = record
        self.delete_on_exit = delete_on_exit

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def status(self) -> str:
        return self.info.status

    def __repr__(self) -> str:
        return f"<Deployment {self.name} of {self.model.id} ({self.status})>"

    def refresh(self) -> str:
        job = self.model.job
        info = call_with_retries(lambda: job.provider.get_deployment(self.name, self.options), sleep=job.sleep)
        self.info = info or self.info.model_copy(update={"status": "deleted"})
        gone = {"deleted_at": dt.datetime.now(dt.UTC)} if info is None else {}
        job.store.update_deployment(self.record.id, status=self.info.status, **gone)
        return self.info.status

    def wait_ready(self, timeout: float = 1800, poll_interval: float = 10.0) -> str:
        """Poll until the deployment is ready (or failed); returns its status."""
        job = self.model.job
        waited = 0.0
        while self.refresh().lower() not in ("succeeded", "inservice", "active", "ready", "failed", "deleted"):
            if waited >= timeout:
                break
            job.sleep(poll_interval)
            waited += poll_interval
        return self.status

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        job = self.model.job
        return call_with_retries(lambda: job.provider.chat(self.name, messages, deployment=True, **{**self.options, **kwargs}), sleep=job.sleep)

    def delete(self) -> None:
        """Delete the deployment; deleting one that is already gone is not an error."""
        job = self.model.job
        try:
            call_with_retries(lambda: job.provider.undeploy(self.name, self.options), sleep=job.sleep)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise
        self.info = self.info.model_copy(update={"status": "deleted"})
        job.store.update_deployment(self.record.id, status="deleted", deleted_at=dt.datetime.now(dt.UTC))

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.delete_on_exit:
            self.delete()


def _deployment_name(job_id: str) -> str:
    return f"fh-{job_id.removeprefix('ftj_')}"[:64]
