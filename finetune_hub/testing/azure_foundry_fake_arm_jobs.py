"""Fine-tuning job routes of the Azure AI Foundry fake (ARM, workspace-relative paths).

| SDK call (azure-ai-ml 1.35) | request |
| --- | --- |
| `jobs.create_or_update(create_finetuning_job(...))` | `PUT ws/jobs/{name}?api-version=2024-10-01-preview` |
| `jobs.get(name)` | `GET ws/jobs/{name}` twice: 2024-01-01-preview, then 2024-10-01-preview |
| `jobs.list()` | `GET ws/jobs?listViewType=ActiveOnly` (2024-01-01-preview) |
| `jobs.begin_cancel(name)` | `POST ws/jobs/{name}/cancel` (2023-04-01-preview): 202 + Location |

A PUT under an existing name is an upsert in ARM: the same fine-tuning details answer 200 with
the existing job (no second job starts); different ones are refused with 400.
"""

from __future__ import annotations

from typing import Any

from .azure_foundry_fake_jobs import TERMINAL, FineTuningJob
from .azure_foundry_fake_resources import model_ref, parse_workspace_model
from .azure_foundry_fake_wire import AzureError, Ctx
from .fake_http import FakeResponse

__all__ = ["ROUTES"]

FINE_TUNING_API_VERSION = "2024-10-01-preview"
_INPUT_TYPES = {"uri_file", "uri_folder", "mltable"}


def _user_error(message: str) -> AzureError:
    return AzureError(400, "UserError", message)


def _check_details(ctx: Ctx, properties: dict[str, Any]) -> None:
    """What the fake validates in `properties` before it accepts a fine-tuning job."""
    fake = ctx.fake
    if properties.get("jobType") != "FineTuning":
        raise _user_error(
            f"The fake serves fine-tuning jobs only (jobType 'FineTuning'), got "
            f"{properties.get('jobType')!r}."
        )
    details = properties.get("fineTuningDetails")
    if not isinstance(details, dict):
        raise _user_error("properties.fineTuningDetails is required for a FineTuning job.")
    if not details.get("taskType"):
        raise _user_error("fineTuningDetails.taskType is required.")
    uri = str((details.get("model") or {}).get("uri") or "")
    ref = model_ref(uri)
    catalog = fake.catalog_model(ref.registry, ref.name) if ref else None
    if catalog is None:
        parsed = parse_workspace_model(uri)
        if parsed is None or (parsed[0].lower(), parsed[1]) not in fake.models:
            raise AzureError(
                404, "ModelNotFound", f"The model '{uri}' was not found or cannot be fine-tuned."
            )
        catalog = fake.models[(parsed[0].lower(), parsed[1])].base
    if catalog is not None:
        fake.require_subscription(catalog)
    for key in ("trainingData", "validationData"):
        data = details.get(key)
        if data is None and key == "validationData":
            continue
        data_uri = str((data or {}).get("uri") or "")
        if (data or {}).get("jobInputType") not in _INPUT_TYPES or not data_uri:
            raise _user_error(f"fineTuningDetails.{key} needs a uri and a jobInputType.")
        if not fake.data_exists(data_uri):
            raise _user_error(
                f"fineTuningDetails.{key}: '{data_uri}' was not found in the workspace "
                "(upload the file or register the data asset first)."
            )
    hyper = details.get("hyperParameters") or {}
    if fake.string_hyperparameters:
        bad = sorted(k for k, v in hyper.items() if not isinstance(v, str))
        if bad:
            raise _user_error(f"hyperParameters values must be strings; not strings: {bad}.")
    if catalog is not None and catalog.hyperparameters is not None:
        unknown = sorted(set(hyper) - catalog.hyperparameters)
        if unknown:
            raise _user_error(
                f"Model '{catalog.name}' does not accept hyperparameter(s) {unknown}; "
                f"settable: {sorted(catalog.hyperparameters)}."
            )
    output = (properties.get("outputs") or {}).get("registered_model") or {}
    if not output.get("assetName"):
        raise _user_error("outputs.registered_model.assetName (the output model name) is required.")


def put_job(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version(FINE_TUNING_API_VERSION)
    fake = ctx.fake
    properties = ctx.body().get("properties")
    if not isinstance(properties, dict):
        raise _user_error("The job body needs 'properties'.")
    existing = fake.jobs.get(name.lower())
    if existing is not None:
        if existing.properties.get("fineTuningDetails") != properties.get("fineTuningDetails"):
            raise _user_error(
                f"A job named '{name}' already exists with different fine-tuning details; "
                "job names are unique in a workspace."
            )
        return ctx.ok(fake.render_job(existing), status=200)
    _check_details(ctx, properties)
    job = fake.new_job(name, properties)
    return ctx.ok(fake.render_job(job), status=201)


def _job(ctx: Ctx, name: str) -> FineTuningJob:
    job = ctx.fake.jobs.get(name.lower())
    if job is None:
        raise AzureError(404, "UserError", f"Job {name} is not found in the workspace.")
    return job


def get_job(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    job = _job(ctx, name)
    if ctx.fake.auto_advance:
        ctx.fake.advance(ctx.fake.auto_advance)
    return ctx.ok(ctx.fake.render_job(job))


def list_jobs(ctx: Ctx) -> FakeResponse:
    ctx.api_version()
    fake = ctx.fake
    jobs = sorted(fake.jobs.values(), key=lambda j: j.created_at, reverse=True)
    start = int(ctx.request.query.get("$skipToken") or 0)
    page = jobs[start : start + fake.page_size]
    payload: dict[str, Any] = {"value": [fake.render_job(j) for j in page]}
    if start + fake.page_size < len(jobs):
        payload["nextLink"] = (
            f"https://{ctx.host}{ctx.request.path}?api-version={ctx.request.query['api-version']}"
            f"&listViewType=ActiveOnly&$skipToken={start + fake.page_size}"
        )
    return ctx.ok(payload)


def cancel_job(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    fake = ctx.fake
    job = _job(ctx, name)
    now = fake.clock.now()
    if job.status(now) in TERMINAL:
        raise _user_error(
            f"Job {name} has already ended ({job.status(now)}); it cannot be canceled."
        )
    job.cancel(now, fake.cancel_seconds)
    done_at = job.ended_at(now + fake.cancel_seconds) or now
    return FakeResponse(
        202, b"", {"location": fake.operation_url(done_at=done_at), "retry-after": "10"}
    )


ROUTES = [
    ("PUT", r"/jobs/(?P<name>[^/]+)", put_job),
    ("GET", r"/jobs/(?P<name>[^/]+)", get_job),
    ("GET", r"/jobs", list_jobs),
    ("POST", r"/jobs/(?P<name>[^/]+)/cancel", cancel_job),
]
