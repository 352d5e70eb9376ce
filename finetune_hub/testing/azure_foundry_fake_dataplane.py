"""Workspace data-plane routes of the Azure AI Foundry fake (host `{location}.api.azureml.ms`),
and the model registry's (`cert-{location}.experiments.azureml.net`).

| route | who calls it |
| --- | --- |
| `GET /discovery` | azure-ai-ml, to find the run-history host (`workspace.discoveryUrl`) |
| `GET /history/v1.0/{ws}/runs/{name}[/details]` | azure-ai-ml run history (status, times, error, warnings) |
| `GET /mlflow/v1.0/{ws}/api/2.0/mlflow/runs/get?run_id=` | MLflow REST: latest metric values |
| `GET /mlflow/v1.0/{ws}/api/2.0/mlflow/metrics/get-history?run_id=&metric_key=` | MLflow REST: one metric's points |
| `GET /registrymanagement/v1.0/registries/{r}/discovery` | `MLClient(registry_name=...)` |
| `GET .../registries/{r}/models/{n}/versions[/{v}]` (registry host) | `registry_client.models.get/list` |

`{ws}` is the workspace's ARM path. A failed job's message is only here (run details `error`),
never on the ARM job resource, as in Azure.
"""

from __future__ import annotations

import re
from typing import Any

from .azure_foundry_fake_wire import AzureError, Ctx, iso
from .fake_http import FakeResponse

__all__ = ["handle_dataplane", "handle_registry"]

_WS = (
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices"
    r"/workspaces/[^/]+"
)
_RUN = re.compile(
    rf"/history/v1\.0{_WS}(?:/experimentids/[^/]+|/experiments/[^/]+)?/runs/(?P<run>[^/]+)(?P<details>/details)?",
    re.I,
)
_MLFLOW = re.compile(
    rf"/mlflow/v1\.0{_WS}/api/2\.0/mlflow/(?P<op>runs/get|metrics/get-history)", re.I
)
_REGISTRY_DISCOVERY = re.compile(
    r"/registrymanagement/v1\.0/registries/(?P<registry>[^/]+)/discovery", re.I
)
_REGISTRY_MODEL = re.compile(
    r"(?:/mferp/managementfrontend)?/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
    r"Microsoft\.MachineLearningServices/registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)"
    r"(?:/versions(?:/(?P<version>[^/]+))?)?",
    re.I,
)


def _job(ctx: Ctx, name: str) -> Any:
    job = ctx.fake.jobs.get(name.lower())
    if job is None:
        raise AzureError(404, "RunNotFound", f"Run {name} was not found.")
    return job


def _mlflow_error(message: str) -> AzureError:
    return AzureError(404, "RESOURCE_DOES_NOT_EXIST", message)


def handle_dataplane(ctx: Ctx) -> FakeResponse:
    """Discovery, run history and MLflow for the fake's workspace."""
    fake, path = ctx.fake, ctx.request.path
    now = fake.clock.now()
    if path == "/discovery":
        base = f"https://{ctx.host}"
        keys = (
            "api",
            "catalog",
            "experimentation",
            "history",
            "hyperdrive",
            "labeling",
            "modelmanagement",
            "pipelines",
        )
        return ctx.ok({**{k: base for k in keys}, "studio": "https://ml.azure.com"})
    if match := _REGISTRY_DISCOVERY.fullmatch(path):
        registry = match["registry"]
        if not any(m.registry.lower() == registry.lower() for m in fake.catalog.values()):
            raise AzureError(404, "RegistryNotFound", f"Registry {registry} was not found.")
        return ctx.ok(
            {
                "registryName": registry,
                "primaryRegion": fake.location,
                "primaryRegionResourceProviderUri": f"https://cert-{fake.location}.experiments.azureml.net/",
                "subscriptionId": fake.registry_subscription_id,
                "resourceGroup": registry,
                "regions": [fake.location],
            }
        )
    if match := _RUN.fullmatch(path):
        job = _job(ctx, match["run"])
        return ctx.ok(job.run_details(now) if match["details"] else job.run(now))
    if match := _MLFLOW.fullmatch(path):
        run_id = ctx.request.query.get("run_id") or ctx.request.query.get("run_uuid") or ""
        job = fake.jobs.get(run_id.lower())
        if job is None:
            raise _mlflow_error(f"Run with id={run_id} not found")
        if match["op"] == "runs/get":
            return ctx.ok({"run": job.mlflow_run(now, "00000000-0000-0000-0000-00000000e001")})
        key = ctx.request.query.get("metric_key", "")
        return ctx.ok({"metrics": [p for p in job.metric_points(now) if p["key"] == key]})
    raise AzureError(
        404, "NotFound", f"The fake has no data-plane route {ctx.request.method} {path}."
    )


def _registry_version(fake: Any, model: Any, version: str) -> dict[str, Any]:
    return {
        "id": (f"azureml://registries/{model.registry}/models/{model.name}/versions/{version}"),
        "name": version,
        "type": "Microsoft.MachineLearningServices/registries/models/versions",
        "properties": {
            "modelType": "mlflow_model",
            "modelUri": f"azureml://registries/{model.registry}/models/{model.name}/versions/{version}",
            "isArchived": False,
            "isAnonymous": False,
            "flavors": {},
            "tags": {"maas-finetuning-deploy-regions": str([fake.location])},
            "properties": {},
        },
        "systemData": {"createdAt": iso(fake.created_at), "createdBy": "Microsoft"},
    }


def handle_registry(ctx: Ctx) -> FakeResponse:
    """Catalog models in their registries (`registry_client.models.get(name, version=...)`)."""
    fake = ctx.fake
    match = _REGISTRY_MODEL.fullmatch(ctx.request.path)
    if match is None or ctx.request.method != "GET":
        raise AzureError(404, "NotFound", f"The fake has no registry route {ctx.request.path}.")
    model = fake.catalog_model(match["registry"], match["name"])
    if model is None:
        raise AzureError(
            404,
            "ModelNotFound",
            f"Model {match['name']} was not found in registry {match['registry']}.",
        )
    if match["version"]:
        if match["version"] != model.version:
            raise AzureError(
                404, "ModelNotFound", f"Model {model.name}:{match['version']} was not found."
            )
        return ctx.ok(_registry_version(fake, model, model.version))
    if "/versions" in ctx.request.path:
        return ctx.ok({"value": [_registry_version(fake, model, model.version)]})
    return ctx.ok(
        {
            "id": f"azureml://registries/{model.registry}/models/{model.name}",
            "name": model.name,
            "properties": {"latestVersion": model.version, "isArchived": False},
        }
    )
