"""`Deployment`: a tuned model being served, which may bill by the hour until it is deleted.

One class for every serving mode: what differs (create, state map, cost, chat, delete) is the
mode's `Deployer` (providers/base.py), chosen through the registry.

>>> d = model.deploy(confirm_cost=True)  # doctest: +SKIP
>>> d.wait_ready(); d.chat([{"role": "user", "content": "hi"}]); d.delete()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from finetune_hub.backoff import Backoff, poll
from finetune_hub.errors import ProviderError, WaitTimeout
from finetune_hub.jobs.once import ATTEMPT_KEY, AtMostOnce, with_attempt
from finetune_hub.status import DeploymentStatus

if TYPE_CHECKING:
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.providers.base import (
        Deployer,
        DeploymentCost,
        DeploymentInfo,
        DeployOptions,
    )
    from finetune_hub.store import DeploymentRecord


class Deployment:
    """A deployed tuned model. `delete()` is idempotent; as a context manager it deletes itself
    on exit when `delete_on_exit=True`."""

    def __init__(
        self,
        job: TuningJob,
        deployer: Deployer,
        info: DeploymentInfo,
        options: DeployOptions,
        record: DeploymentRecord,
        *,
        delete_on_exit: bool = False,
    ) -> None:
        self.job = job
        self.deployer = deployer
        self.info = info
        self.options = options
        self.record = record
        self.delete_on_exit = delete_on_exit

    # -- making one -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        model: TunedModel,
        deployer: Deployer,
        options: DeployOptions,
        name: str,
        cost: DeploymentCost,
        delete_on_exit: bool = False,
        expires_at: dt.datetime | None = None,
    ) -> Deployment:
        """Create (or find, after an ambiguous failure, a crash or a repeat) the deployment
        `name`: at most one is ever created (jobs/once.py). `expires_at` is recorded for
        `finetune-hub reap` / `fh.reap_expired()`; a repeat without one keeps the earlier."""
        from finetune_hub.store import DeploymentRecord

        job = model.job
        record_id = f"{model.provider}:{name}"
        earlier = job.store.get_deployment(record_id)
        live = earlier is not None and earlier.deleted_at is None
        record = DeploymentRecord(
            id=record_id,
            job_id=job.id,
            provider=model.provider,
            name=name,
            model=model.id,
            kind=deployer.kind,
            status=DeploymentStatus.CREATING.value,
            hourly_cost_usd=cost.hourly_usd,
            expires_at=expires_at or (earlier.expires_at if live and earlier else None),
            extra={
                **_storable(options),
                **({ATTEMPT_KEY: earlier.extra.get(ATTEMPT_KEY)} if live else {}),
            },
        )
        job.store.save_deployment(record)

        def mark(at: float | None) -> None:
            job.store.update_deployment(record_id, extra=with_attempt(record.extra, at))

        guard = AtMostOnce(
            f"the deployment {name} on {model.provider}",
            find=lambda: deployer.get(name, options),
            create=lambda: deployer.create(model.id, name, options),
            sleep=job.sleep,
            window=job.lookup_window,
            attempted_at=record.extra.get(ATTEMPT_KEY),
            on_attempt=mark,
            clock=job.clock,
            resume_hint=f"Check with `finetune-hub deployments`; deploying {name!r} again resumes.",
        )
        try:
            info = job._call("deploy", guard)
        except Exception:
            # No create in flight (never sent, or refused): nothing exists to bill or delete. A
            # new record is closed as failed, so `deployments` and `reap` do not list it; one
            # that was live before this call is left as it was.
            if not live and guard.attempted_at is None:
                job.store.update_deployment(
                    record_id,
                    status=DeploymentStatus.FAILED.value,
                    deleted_at=dt.datetime.now(dt.UTC),
                )
            raise
        record = job.store.update_deployment(
            record_id,
            status=info.status.value,
            raw_status=info.raw_status,
            endpoint=info.endpoint,
            extra=_storable(options),
        )
        return cls(job, deployer, info, options, record, delete_on_exit=delete_on_exit)

    @classmethod
    def from_record(cls, job: TuningJob, record: DeploymentRecord) -> Deployment:
        """The deployment a store record describes (for `finetune-hub undeploy`, dashboards)."""
        from finetune_hub.providers.base import deployer_for

        deployer = deployer_for(job.backend, record.kind)
        options = deployer.parse(with_attempt(record.extra, None))
        info = deployer.info(record.name, record.model, record.raw_status, endpoint=record.endpoint)
        return cls(job, deployer, info, options, record)

    # -- state ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> str:
        return self.deployer.kind

    @property
    def status(self) -> DeploymentStatus:
        return self.info.status

    def __repr__(self) -> str:
        return f"<Deployment {self.name} ({self.kind}) of {self.info.model}: {self.status.value}>"

    def _repr_html_(self) -> str:
        from finetune_hub.jobs.display import deployment_html

        return deployment_html(self)

    def refresh(self) -> DeploymentStatus:
        """Ask the provider for the deployment's state; record it in the store."""
        info = self.job._call("get_deployment", lambda: self.deployer.get(self.name, self.options))
        if info is None:
            self._mark_deleted()
        else:
            self.info = info
            self.job.store.update_deployment(
                self.record.id, status=info.status.value, raw_status=info.raw_status
            )
        return self.status

    def wait_ready(self, timeout: float = 1800, poll_interval: float = 10.0) -> DeploymentStatus:
        """Poll until the deployment is ready, failed or gone; `fh.WaitTimeout` after `timeout`
        seconds (the deployment goes on, and bills). A provider that cannot be reached for a
        while (429, 5xx, timeouts) does not end the wait; 401/403/404 do."""

        def too_long(status: DeploymentStatus) -> WaitTimeout:
            return WaitTimeout(
                f"deployment {self.name} is still {status.value} after {timeout:g} s; it goes on "
                "(and may bill): call wait_ready() again or delete() it"
            )

        def look() -> DeploymentStatus:
            try:
                return self.refresh()
            except ProviderError as exc:  # unreachable for a while: keep waiting, like job waits
                if not exc.retryable:
                    raise
                return DeploymentStatus.UNKNOWN

        backoff = Backoff(poll_interval, max(poll_interval, 60.0))
        return poll(
            look,
            lambda s: s.is_settled,
            backoff=backoff,
            timeout=timeout,
            sleep=self.job.sleep,
            on_timeout=too_long,
        )

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One chat turn through the deployment; returns the reply text."""
        return self.job._call("chat", lambda: self.deployer.chat(self.info, messages, **kwargs))

    def delete(self) -> None:
        """Delete the deployment; deleting one that is already gone is not an error."""
        self.job._call("undeploy", lambda: self.deployer.delete(self.name, self.options))
        self._mark_deleted()

    def _mark_deleted(self) -> None:
        self.info = self.info.model_copy(update={"status": DeploymentStatus.DELETED})
        self.job.store.update_deployment(
            self.record.id,
            status=DeploymentStatus.DELETED.value,
            deleted_at=dt.datetime.now(dt.UTC),
        )

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.delete_on_exit:
            self.delete()


def deployment_name(job_id: str) -> str:
    """The default deployment name for a job: `fh-` and the job id's hex part."""
    return f"fh-{job_id.removeprefix('ftj_')}"[:64]


def _storable(options: DeployOptions) -> dict[str, Any]:
    from finetune_hub.store import is_secret_key

    plain = options.model_dump(mode="json", exclude_unset=True)
    return {
        k: v
        for k, v in plain.items()
        if isinstance(v, str | int | float | bool) and not is_secret_key(k)
    }
