"""Azure Resource Manager routes of the Azure AI Foundry fake (the workspace's resources).

Paths are relative to the workspace,
`/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
workspaces/{ws}`, as azure-ai-ml 1.35 calls them:

| route | api-version the SDK sends |
| --- | --- |
| `GET ws` | 2024-10-01-preview (serverless: location), others |
| `GET ws/datastores/{n}`, `GET ws/datastores?isDefault=true`, `POST .../listSecrets` | 2024-01-01-preview |
| `PUT/GET ws/data/{n}/versions/{v}`, `GET ws/data/{n}` | 2023-04-01-preview and later |
| `PUT/GET/DELETE ws/marketplaceSubscriptions/{n}`, `GET ws/marketplaceSubscriptions` | 2024-01-01-preview |
| `PUT/GET/DELETE ws/serverlessEndpoints/{n}`, `POST .../listKeys`, `.../regenerateKeys` | 2024-01-01-preview |
| `GET ws/models/{n}/versions/{v}`, `GET ws/models/{n}/versions` | 2023-08-01-preview and later |

Jobs live in `azure_foundry_fake_arm_jobs`. Long-running creates answer 201 with a
`provisioningState` that reaches "Succeeded" on the fake clock; deletes answer 202 with a
`Location` the SDK polls (`.../locations/{loc}/mfeOperationResults/{id}`).
"""

from __future__ import annotations

import re
from typing import Any

from .azure_foundry_fake_resources import (
    Endpoint,
    Subscription,
    model_ref,
    new_key,
    parse_workspace_model,
)
from .azure_foundry_fake_wire import AzureError, Ctx, iso
from .fake_http import FakeResponse

__all__ = ["ROUTES"]

_ENDPOINT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,50}[A-Za-z0-9]")


def _not_found(kind: str, name: str) -> AzureError:
    return AzureError(404, "ResourceNotFound", f"{kind} '{name}' was not found in the workspace.")


def _system_data(created: float) -> dict[str, Any]:
    return {
        "createdAt": iso(created),
        "createdBy": "fake-user@example.com",
        "createdByType": "User",
        "lastModifiedAt": iso(created),
    }


# --- workspace -----------------------------------------------------------------------------


def get_workspace(ctx: Ctx) -> FakeResponse:
    ctx.api_version()
    return ctx.ok(ctx.fake.workspace_resource())


# --- datastores ------------------------------------------------------------------------------


def _datastore(ctx: Ctx, name: str) -> dict[str, Any]:
    fake = ctx.fake
    if name.lower() != fake.datastore_name.lower():
        raise _not_found("Datastore", name)
    return {
        "id": f"{fake.workspace_path}/datastores/{fake.datastore_name}",
        "name": fake.datastore_name,
        "type": "Microsoft.MachineLearningServices/workspaces/datastores",
        "properties": {
            "datastoreType": "AzureBlob",
            "accountName": fake.storage_account,
            "containerName": fake.container,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "isDefault": True,
            "credentials": {"credentialsType": "AccountKey"},
            "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
            "description": "The workspace's default blob datastore (fake).",
            "tags": {},
            "properties": {},
        },
        "systemData": _system_data(fake.created_at),
    }


def get_datastore(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    return ctx.ok(_datastore(ctx, name))


def list_datastores(ctx: Ctx) -> FakeResponse:
    ctx.api_version()
    return ctx.ok({"value": [_datastore(ctx, ctx.fake.datastore_name)]})


def list_datastore_secrets(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    _datastore(ctx, name)
    body = ctx.body() if ctx.request.body else {}
    if body.get("expirableSecret"):
        return ctx.ok({"secretsType": "Sas", "sasToken": ctx.fake.blobs.sas_token()})
    return ctx.ok({"secretsType": "AccountKey", "key": ctx.fake.blobs.account_key})


# --- data assets -----------------------------------------------------------------------------


def put_data_version(ctx: Ctx, name: str, version: str) -> FakeResponse:
    ctx.api_version()
    body = ctx.body()
    properties = dict(body.get("properties") or {})
    uri = properties.get("dataUri")
    if not uri or not ctx.fake.data_exists(uri):
        raise AzureError(400, "UserError", f"The data asset's dataUri '{uri}' does not exist.")
    key = (name.lower(), version)
    existing = ctx.fake.data_assets.get(key)
    if existing and existing["properties"].get("dataUri") != uri:
        raise AzureError(
            409, "Conflict", f"Data asset {name}:{version} exists with a different dataUri."
        )
    resource = {
        "id": f"{ctx.fake.workspace_path}/data/{name}/versions/{version}",
        "name": version,
        "type": "Microsoft.MachineLearningServices/workspaces/data/versions",
        "properties": {**properties, "isArchived": False, "isAnonymous": False},
        "systemData": _system_data(ctx.fake.clock.now()),
    }
    ctx.fake.data_assets[key] = existing or resource
    return ctx.ok(ctx.fake.data_assets[key], status=200 if existing else 201)


def get_data_version(ctx: Ctx, name: str, version: str) -> FakeResponse:
    ctx.api_version()
    asset = ctx.fake.data_assets.get((name.lower(), version))
    if asset is None:
        raise _not_found("Data asset", f"{name}:{version}")
    return ctx.ok(asset)


def get_data_container(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    versions = [v for (n, v) in ctx.fake.data_assets if n == name.lower()]
    if not versions:
        raise _not_found("Data asset", name)
    return ctx.ok(
        {
            "id": f"{ctx.fake.workspace_path}/data/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/data",
            "properties": {
                "dataType": "uri_file",
                "latestVersion": max(versions, key=_version_key),
                "isArchived": False,
            },
        }
    )


def list_data_versions(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    value = [a for (n, _), a in ctx.fake.data_assets.items() if n == name.lower()]
    return ctx.ok({"value": value})


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


# --- registered models -----------------------------------------------------------------------


def get_model_version(ctx: Ctx, name: str, version: str) -> FakeResponse:
    ctx.api_version()
    model = ctx.fake.models.get((name.lower(), version))
    if model is None:
        raise _not_found("Model", f"{name}:{version}")
    return ctx.ok(model.render(ctx.fake))


def list_model_versions(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    everything = ctx.request.query.get("listViewType", "ActiveOnly") == "All"
    value = [
        m.render(ctx.fake)
        for (n, _), m in ctx.fake.models.items()
        if n == name.lower() and (everything or not m.archived)
    ]
    return ctx.ok({"value": value})


def put_model_version(ctx: Ctx, name: str, version: str) -> FakeResponse:
    """Only archiving and restoring (`models.archive` / `models.restore`): registering new models
    is the fine-tuning jobs' business here. A model that an endpoint serves is not archived."""
    ctx.api_version()
    model = ctx.fake.models.get((name.lower(), version))
    if model is None:
        raise AzureError(400, "UserError", "The fake registers models only from fine-tuning jobs.")
    archived = bool((ctx.body().get("properties") or {}).get("isArchived"))
    now = ctx.fake.clock.now()
    serving = [
        e.name
        for e in ctx.fake.endpoints.values()
        if not e.gone(now) and e.model_id == model.asset_id(ctx.fake)
    ]
    if archived and serving:
        raise AzureError(
            409,
            "Conflict",
            f"Model {name}:{version} is deployed ({', '.join(serving)}); delete the deployment "
            "first.",
        )
    model.archived = archived
    return ctx.ok(model.render(ctx.fake))


# --- marketplace subscriptions ---------------------------------------------------------------


def put_subscription(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    fake, body = ctx.fake, ctx.body()
    model_id = str((body.get("properties") or {}).get("modelId") or "")
    ref = model_ref(model_id)
    if ref is None or ref.version is not None:
        raise AzureError(
            400,
            "UserError",
            f"modelId '{model_id}' must be a registry model id without a version: "
            "azureml://registries/{registry}/models/{name}",
        )
    catalog = fake.catalog_model(ref.registry, ref.name)
    if catalog is None:
        raise AzureError(404, "ModelNotFound", f"Model '{model_id}' was not found in the catalog.")
    if not catalog.needs_subscription:
        raise AzureError(
            400,
            "UserError",
            f"Model '{ref.name}' is offered by Microsoft and does not need a marketplace "
            "subscription.",
        )
    existing = fake.subscriptions.get(name.lower())
    if existing and existing.model_id.lower() != model_id.lower():
        raise AzureError(
            409, "Conflict", f"Marketplace subscription '{name}' exists for another model."
        )
    if existing is None:
        now = fake.clock.now()
        fake.subscriptions[name.lower()] = Subscription(
            name=name,
            model_id=model_id,
            plan=catalog.plan(),
            created_at=now,
            ready_at=now + fake.subscribe_seconds,
        )
    subscription = fake.subscriptions[name.lower()]
    return ctx.ok(subscription.render(fake), status=200 if existing else 201)


def get_subscription(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    subscription = ctx.fake.subscriptions.get(name.lower())
    if subscription is None:
        raise _not_found("Marketplace subscription", name)
    if ctx.fake.auto_advance:
        ctx.fake.advance(ctx.fake.auto_advance)
    return ctx.ok(subscription.render(ctx.fake))


def list_subscriptions(ctx: Ctx) -> FakeResponse:
    ctx.api_version()
    return ctx.ok({"value": [s.render(ctx.fake) for s in ctx.fake.subscriptions.values()]})


def delete_subscription(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    if ctx.fake.subscriptions.pop(name.lower(), None) is None:
        return FakeResponse(204)
    return FakeResponse(202, b"", {"location": ctx.fake.operation_url(), "retry-after": "10"})


# --- serverless endpoints --------------------------------------------------------------------


def _check_endpoint_model(ctx: Ctx, model_id: str) -> None:
    fake = ctx.fake
    ref = model_ref(model_id)
    if ref is not None:
        if ref.version is not None:
            raise AzureError(
                400, "UserError", "A serverless endpoint's registry model id takes no version."
            )
        catalog = fake.catalog_model(ref.registry, ref.name)
        if catalog is None:
            raise AzureError(404, "ModelNotFound", f"Model '{model_id}' was not found.")
        fake.require_subscription(catalog)
        return
    parsed = parse_workspace_model(model_id)
    model = fake.models.get((parsed[0].lower(), parsed[1])) if parsed else None
    if model is None:
        raise AzureError(
            400,
            "UserError",
            f"modelId '{model_id}' is neither a catalog model nor a model registered in this "
            "workspace (azureml://locations/{location}/workspaces/{workspaceId}/models/{name}/"
            "versions/{version}).",
        )
    if model.base is not None:
        fake.require_subscription(model.base)


def put_endpoint(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    fake, body = ctx.fake, ctx.body()
    if not _ENDPOINT_NAME.fullmatch(name):
        raise AzureError(
            400,
            "InvalidResourceName",
            f"Endpoint name '{name}' is invalid: 3 to 52 letters, digits and hyphens, starting "
            "with a letter and ending with a letter or digit.",
        )
    sku = (body.get("sku") or {}).get("name")
    if sku != "Consumption":
        raise AzureError(
            400, "UserError", f"Serverless endpoints take sku 'Consumption', not {sku!r}."
        )
    properties = body.get("properties") or {}
    model_id = str((properties.get("modelSettings") or {}).get("modelId") or "")
    existing = fake.endpoints.get(name.lower())
    if existing and not existing.deleted:
        if existing.model_id != model_id:
            raise AzureError(
                400, "UserError", f"The model of serverless endpoint '{name}' cannot be changed."
            )
        existing.tags = dict(body.get("tags") or existing.tags)
        return ctx.ok(existing.render(fake))
    _check_endpoint_model(ctx, model_id)
    now = fake.clock.now()
    endpoint = Endpoint(
        name=name,
        model_id=model_id,
        location=str(body.get("location") or fake.location),
        tags=dict(body.get("tags") or {}),
        auth_mode=str(properties.get("authMode") or "Key"),
        created_at=now,
        ready_at=now + fake.deploy_seconds,
        keys=(new_key(), new_key()),
    )
    fake.endpoints[name.lower()] = endpoint
    return ctx.ok(endpoint.render(fake), status=201)


def _live_endpoint(ctx: Ctx, name: str) -> Endpoint:
    endpoint = ctx.fake.endpoints.get(name.lower())
    if endpoint is None or endpoint.gone(ctx.fake.clock.now()):
        raise _not_found("Serverless endpoint", name)
    return endpoint


def get_endpoint(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    endpoint = _live_endpoint(ctx, name)
    if ctx.fake.auto_advance:
        ctx.fake.advance(ctx.fake.auto_advance)
    return ctx.ok(endpoint.render(ctx.fake))


def list_endpoints(ctx: Ctx) -> FakeResponse:
    ctx.api_version()
    now = ctx.fake.clock.now()
    live = [e.render(ctx.fake) for e in ctx.fake.endpoints.values() if not e.gone(now)]
    return ctx.ok({"value": live})


def delete_endpoint(ctx: Ctx, name: str) -> FakeResponse:
    """202 + Location while the endpoint goes away; 204 when there is nothing to delete."""
    ctx.api_version()
    fake = ctx.fake
    endpoint = fake.endpoints.get(name.lower())
    now = fake.clock.now()
    if endpoint is None or endpoint.gone(now):
        return FakeResponse(204)
    if endpoint.deleted is None:
        endpoint.deleted = now + fake.delete_seconds
    location = fake.operation_url(done_at=endpoint.deleted)
    return FakeResponse(202, b"", {"location": location, "retry-after": "10"})


def list_endpoint_keys(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    primary, secondary = _live_endpoint(ctx, name).keys
    return ctx.ok({"primaryKey": primary, "secondaryKey": secondary})


def regenerate_endpoint_keys(ctx: Ctx, name: str) -> FakeResponse:
    ctx.api_version()
    endpoint = _live_endpoint(ctx, name)
    kind = str(ctx.body().get("keyType") or "Primary").lower()
    primary, secondary = endpoint.keys
    if kind == "primary":
        primary = new_key()
    else:
        secondary = new_key()
    endpoint.keys = (primary, secondary)
    return ctx.ok({"primaryKey": primary, "secondaryKey": secondary})


# --- long-running operations -----------------------------------------------------------------


def get_operation(ctx: Ctx, op_id: str) -> FakeResponse:
    done_at = ctx.fake.operations.get(op_id)
    if done_at is None:
        raise AzureError(404, "ResourceNotFound", f"Operation '{op_id}' was not found.")
    if ctx.fake.clock.now() < done_at:
        location = ctx.fake.operation_url(op_id=op_id)
        return FakeResponse(202, b"", {"location": location, "retry-after": "10"})
    return FakeResponse(200, b"")


_N = r"(?P<name>[^/]+)"
_V = r"(?P<version>[^/]+)"
#: (method, workspace-relative path regex, handler); "" is the workspace itself
ROUTES = [
    ("GET", r"/", get_workspace),
    ("GET", rf"/datastores/{_N}", get_datastore),
    ("GET", r"/datastores", list_datastores),
    ("POST", rf"/datastores/{_N}/listSecrets", list_datastore_secrets),
    ("PUT", rf"/data/{_N}/versions/{_V}", put_data_version),
    ("GET", rf"/data/{_N}/versions/{_V}", get_data_version),
    ("GET", rf"/data/{_N}/versions", list_data_versions),
    ("GET", rf"/data/{_N}", get_data_container),
    ("GET", rf"/models/{_N}/versions/{_V}", get_model_version),
    ("PUT", rf"/models/{_N}/versions/{_V}", put_model_version),
    ("GET", rf"/models/{_N}/versions", list_model_versions),
    ("PUT", rf"/marketplaceSubscriptions/{_N}", put_subscription),
    ("GET", rf"/marketplaceSubscriptions/{_N}", get_subscription),
    ("DELETE", rf"/marketplaceSubscriptions/{_N}", delete_subscription),
    ("GET", r"/marketplaceSubscriptions", list_subscriptions),
    ("PUT", rf"/serverlessEndpoints/{_N}", put_endpoint),
    ("GET", rf"/serverlessEndpoints/{_N}", get_endpoint),
    ("DELETE", rf"/serverlessEndpoints/{_N}", delete_endpoint),
    ("GET", r"/serverlessEndpoints", list_endpoints),
    ("POST", rf"/serverlessEndpoints/{_N}/listKeys", list_endpoint_keys),
    ("POST", rf"/serverlessEndpoints/{_N}/regenerateKeys", regenerate_endpoint_keys),
]
