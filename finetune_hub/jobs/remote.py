"""Jobs on the provider's side, whoever made them: list them, and adopt one into the store.

A job made with a provider's SDK or console is invisible to the store until it is adopted;
`remote_jobs` lists a provider's jobs page by page and says which ones the store knows, and
`TuningJob.adopt` records one so that everything else works on it (events, metrics, wait,
deploy, the dashboard). Both use the backend's `list_jobs` / `get` (provider contract v2).

>>> page = fh.remote_jobs("openai")  # doctest: +SKIP
>>> [(j.id, j.status.value, j.known_as) for j in page]  # doctest: +SKIP
[('ftjob-abc', 'running', None), ('ftjob-def', 'succeeded', 'ftj_1a2b3c4d5e6f')]
>>> job = fh.TuningJob.adopt("openai", "ftjob-abc")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field

from finetune_hub.errors import FinetuneHubError, ProviderError
from finetune_hub.providers.base import ProviderJob, TuningBackend, make_backend
from finetune_hub.status import JobStatus
from finetune_hub.store import JobRecord, JobStore, new_job_id

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob

T = TypeVar("T")

#: What an adopted job's record says for its training file (the data stays on the provider).
ADOPTED_TRAINING_FILE = "(on the provider: adopted)"
_LOCAL_ID = re.compile(r"^ftj_[0-9a-f]{12}$")


class RemoteJob(BaseModel):
    """One job as the provider lists it, and the local job id if the store knows it."""

    provider: str
    id: str
    status: JobStatus
    raw_status: str | None = None
    base_model: str | None = None
    method: str | None = None
    fine_tuned_model: str | None = None
    created_at: dt.datetime | None = None
    error: str | None = None
    local_job_id: str | None = None  # the finetune_hub id its creator left on it, if any
    known_as: str | None = None  # the id of the job in this store, None when not adopted

    @property
    def known(self) -> bool:
        """Whether the store has this job."""
        return self.known_as is not None


class RemoteJobs(BaseModel):
    """A page (or several) of a provider's jobs, newest first; iterate over it for the jobs.

    `next_cursor` is None after the last page; pass it as `after=` for the next one.
    """

    provider: str
    jobs: list[RemoteJob] = Field(default_factory=list)
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[RemoteJob]:  # type: ignore[override]
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)


def _when(value: Any) -> dt.datetime | None:
    """A provider's timestamp (epoch seconds, ISO text or a datetime) in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _guarded(backend: TuningBackend, operation: str, fn: Callable[[], T]) -> T:
    """One backend call through the job layer's provider boundary."""
    from finetune_hub.providers.base import guarded_call

    return guarded_call(backend.name, operation, fn)


def remote_jobs(
    provider: str,
    *,
    limit: int = 50,
    after: str | None = None,
    pages: int | None = 1,
    store: JobStore | None = None,
    **options: Any,
) -> RemoteJobs:
    """A provider's jobs, newest first, `limit` per page from the cursor `after`, for `pages`
    pages (None: every page), each marked with the local job id when the store knows it.
    `options` are the provider's connection options (as for a `TuningJob`). A provider whose
    backend cannot list jobs raises `fh.UnsupportedOperation` saying so.

    >>> page = fh.remote_jobs("openai", limit=20)  # doctest: +SKIP
    >>> unknown = [j for j in page if not j.known]  # doctest: +SKIP
    >>> more = fh.remote_jobs("openai", after=page.next_cursor)  # doctest: +SKIP
    """
    backend = make_backend(provider, options)
    store = store or JobStore()
    found: list[ProviderJob] = []
    cursor, fetched = after, 0
    while pages is None or fetched < pages:
        page, cursor = _guarded(
            backend, "list_jobs", lambda c=cursor: backend.list_jobs(limit=limit, after=c)
        )
        found.extend(page)
        fetched += 1
        if cursor is None:
            break
    known = store.known_provider_jobs(provider, [j.id for j in found])
    jobs = [
        RemoteJob(
            provider=provider,
            id=j.id,
            status=j.status,
            raw_status=j.raw_status,
            base_model=j.base_model,
            method=j.method,
            fine_tuned_model=j.fine_tuned_model,
            created_at=_when(j.created_at),
            error=j.error,
            local_job_id=j.local_job_id,
            known_as=known.get(j.id),
        )
        for j in found
    ]
    return RemoteJobs(provider=provider, jobs=jobs, next_cursor=cursor)


def adopt(
    cls: type[TuningJob],
    provider: str,
    provider_job_id: str,
    *,
    store: JobStore | None = None,
    options: dict[str, Any] | None = None,
) -> TuningJob:
    """The body of `TuningJob.adopt`: record a provider's job (made anywhere) in the store,
    with its state and events, and return the `TuningJob` that follows it. Adopting a job the
    store knows already returns that job (one record per provider job, even when several
    processes adopt it at once)."""
    store = store or JobStore()
    existing = store.find_by_provider_job(provider, provider_job_id)
    if existing is not None:
        return cls.attach(existing.id, store=store, options=options)
    backend = make_backend(provider, options)
    try:
        found = _guarded(backend, "get", lambda: backend.get(provider_job_id))
    except ProviderError as exc:
        if exc.status_code == 404:
            raise FinetuneHubError(
                f"{backend.display_name} has no job {provider_job_id!r} for these options; "
                f"`finetune-hub jobs --remote --provider {provider}` lists the jobs it has"
            ) from None
        raise
    origin = found.local_job_id
    reuse = origin if origin and _LOCAL_ID.match(origin) and store.get(origin) is None else None
    record = JobRecord(
        id=reuse or new_job_id(),
        provider=provider,
        base_model=found.base_model or "unknown",
        method=found.method or "sft",
        training_file=ADOPTED_TRAINING_FILE,
        options=backend.connection.stored_options(),
        credentials=backend.connection.credentials_source(),
        provider_job_id=found.id,
        status=found.status,
        raw_status=found.raw_status,
        fine_tuned_model=found.fine_tuned_model,
        error=found.error,
        error_code=found.error_code,
        submitted_at=_when(found.created_at),
        extra={
            "adopted_at": dt.datetime.now(dt.UTC).isoformat(),
            "made_by": f"finetune_hub job {origin}" if origin else "outside finetune_hub",
        },
    )
    record, _ = store.create_for_provider_job(record)
    job = cls.attach(record.id, store=store, options=options)
    job._backend = backend
    with contextlib.suppress(FinetuneHubError):  # adopted all the same; events come later
        job.events()
    return job
