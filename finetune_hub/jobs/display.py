"""Rich HTML for notebooks: jobs, tuned models, deployments and job lists, drawn from what the
store already knows (displaying a job never calls its provider).

>>> fh.job_list(provider="openai")  # doctest: +SKIP
>>> job  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from finetune_hub.status import DeploymentStatus, JobStatus

if TYPE_CHECKING:
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob
    from finetune_hub.store import JobRecord, JobStore

_COLOURS = {
    JobStatus.SUCCEEDED.value: "#1a7f37",
    JobStatus.FAILED.value: "#cf222e",
    JobStatus.CANCELLED.value: "#6e7781",
    JobStatus.RUNNING.value: "#0969da",
    DeploymentStatus.READY.value: "#1a7f37",
    DeploymentStatus.FAILED.value: "#cf222e",
    DeploymentStatus.DELETED.value: "#6e7781",
}


def badge(status: str) -> str:
    """A status as a coloured label."""
    colour = _COLOURS.get(status, "#9a6700")
    return (
        f"<span style='color:white;background:{colour};border-radius:4px;padding:1px 6px'>"
        f"{html.escape(status)}</span>"
    )


def table(rows: Iterable[tuple[str, Any]], title: str) -> str:
    """A two-column table: name, value (values are escaped unless they are already HTML)."""
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
        f"{v if isinstance(v, _Html) else html.escape(str(v))}</td></tr>"
        for k, v in rows
        if v not in (None, "")
    )
    return f"<div><b>{html.escape(title)}</b><table>{cells}</table></div>"


class _Html(str):
    """A string that is HTML already."""


def job_html(job: TuningJob) -> str:
    """A job: id, provider, model, method, status, provider ids, model, dates, error."""
    rec = job.record
    spec = job.spec
    status = rec.status.value if rec else JobStatus.PENDING.value
    rows: list[tuple[str, Any]] = [
        ("job", job.id),
        ("provider", spec.provider),
        ("base model", spec.base_model),
        ("method", spec.method),
        (
            "status",
            _Html(badge(status) + (f" ({rec.raw_status})" if rec and rec.raw_status else "")),
        ),
        ("training file", spec.training_file),
    ]
    if rec is not None:
        rows += [
            ("provider job", rec.provider_job_id),
            ("tuned model", rec.fine_tuned_model),
            ("created", f"{rec.created_at:%Y-%m-%d %H:%M}" if rec.created_at else None),
            ("error", f"{rec.error_code}: {rec.error}" if rec.error_code else rec.error),
        ]
    return table(rows, "TuningJob")


def model_html(model: TunedModel) -> str:
    """A tuned model: its id, provider and the job that made it."""
    return table(
        [("model", model.id), ("provider", model.provider), ("job", model.job.id)], "TunedModel"
    )


def deployment_html(deployment: Deployment) -> str:
    """A deployment: name, serving mode, model, state, endpoint and its hourly cost."""
    rate = deployment.record.hourly_cost_usd
    return table(
        [
            ("deployment", deployment.name),
            ("kind", deployment.kind),
            ("model", deployment.info.model),
            ("status", _Html(badge(deployment.status.value))),
            ("endpoint", deployment.info.endpoint),
            ("hourly cost", "unknown" if rate is None else f"${rate:,.2f} per hour"),
        ],
        "Deployment",
    )


class JobList(list):  # type: ignore[type-arg]
    """Job records (`fh.JobRecord`) that show as a table in a notebook and as text elsewhere;
    `to_frame()` gives a pandas DataFrame.

    >>> fh.job_list(status="running")  # doctest: +SKIP
    """

    _COLUMNS = ("id", "provider", "base_model", "method", "status", "fine_tuned_model")

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in (*self._COLUMNS, "created"))
        rows = []
        for rec in self:
            cells = [html.escape(str(getattr(rec, c) or "")) for c in self._COLUMNS]
            cells[4] = badge(rec.status.value)
            created = f"{rec.created_at:%Y-%m-%d %H:%M}" if rec.created_at else ""
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in [*cells, created]) + "</tr>")
        return f"<div><b>{len(self)} job(s)</b><table><tr>{head}</tr>{''.join(rows)}</table></div>"

    def __str__(self) -> str:
        lines = [f"{len(self)} job(s)"]
        for rec in self:
            lines.append(
                f"  {rec.id}  {rec.provider}  {rec.base_model}  {rec.status.value}"
                + (f"  {rec.fine_tuned_model}" if rec.fine_tuned_model else "")
            )
        return "\n".join(lines)

    def to_frame(self) -> Any:
        """The records as a pandas DataFrame (`pip install "finetune-hub[notebook]"`)."""
        from finetune_hub.plotting import _need

        pd = _need("pandas")
        return pd.DataFrame([r.model_dump() for r in self])


def job_list(
    provider: str | None = None, status: str | None = None, *, store: JobStore | None = None
) -> JobList:
    """The recorded jobs (newest first, as `JobStore.list`), shown as a table in a notebook.

    >>> fh.job_list(provider="bedrock")  # doctest: +SKIP
    """
    from finetune_hub.store import JobStore

    records: list[JobRecord] = (store or JobStore()).list(provider=provider, status=status)
    return JobList(records)
