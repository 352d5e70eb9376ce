"""Azure Resource Manager deployments (Microsoft.CognitiveServices) of the OpenAI fake.

Deploying an Azure OpenAI fine-tuned model is a management-plane call, not an openai SDK call:
`PUT {management}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/
accounts/{account}/deployments/{name}?api-version=...`. A deployment reports
`provisioningState` "Creating" until the fake clock passes `deploy_seconds`, then "Succeeded";
only then does `/openai/deployments/{name}/chat/completions` answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .fake_http import FakeResponse
from .openai_fake_wire import Ctx, WireError

_ACCOUNT = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)/deployments"
)
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)


@dataclass
class Deployment:
    """One model deployment on a (fake) Azure OpenAI account."""

    subscription: str
    resource_group: str
    account: str
    name: str
    model: dict[str, Any]  # properties.model as sent: {"format", "name", "version"}
    sku: dict[str, Any]
    created_at: float
    ready_at: float
    updating: bool = False

    @property
    def model_name(self) -> str:
        return str(self.model.get("name", ""))

    @property
    def key(self) -> tuple[str, str, str, str]:
        return deployment_key(self.subscription, self.resource_group, self.account, self.name)

    def state(self, now: float) -> str:
        if now >= self.ready_at:
            return "Succeeded"
        return "Updating" if self.updating else "Creating"

    def serving(self, now: float) -> bool:
        """An updating deployment keeps serving its previous version."""
        return self.state(now) in ("Succeeded", "Updating")

    def render(self, now: float) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created_at, UTC).isoformat()
        return {
            "id": f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.account}"
            f"/deployments/{self.name}",
            "type": "Microsoft.CognitiveServices/accounts/deployments",
            "name": self.name,
            "sku": self.sku,
            "properties": {
                "model": self.model,
                "provisioningState": self.state(now),
                "versionUpgradeOption": "NoAutoUpgrade",
                "capabilities": {"chatCompletion": "true"},
                "rateLimits": [],
            },
            "systemData": {
                "createdAt": created,
                "createdBy": "fake-user@example.com",
                "createdByType": "User",
                "lastModifiedAt": created,
            },
        }


def deployment_key(sub: str, rg: str, account: str, name: str) -> tuple[str, str, str, str]:
    """ARM names are case-insensitive."""
    return (sub.lower(), rg.lower(), account.lower(), name.lower())


def serving_deployment(ctx: Ctx, name: Any) -> str:
    """The model behind deployment `name`, or Azure's 404 DeploymentNotFound."""
    now = ctx.fake.clock.now()
    for deployment in ctx.fake.deployments.values():
        same = isinstance(name, str) and deployment.name.lower() == name.lower()
        if same and deployment.serving(now):
            return deployment.model_name
    raise WireError.azure(404, "DeploymentNotFound", DEPLOYMENT_NOT_FOUND)


def _not_found(name: str) -> WireError:
    return WireError.azure(
        404, "DeploymentNotFound", f"Deployment '{name}' does not exist or was deleted."
    )


def put_deployment(ctx: Ctx, sub: str, rg: str, account: str, name: str) -> FakeResponse:
    fake, body = ctx.fake, ctx.body()
    model = (body.get("properties") or {}).get("model")
    if not isinstance(model, dict) or not model.get("name"):
        raise WireError.azure(
            400, "InvalidRequestContent", "properties.model.name is required for a deployment."
        )
    if not fake.is_deployable(model["name"]):
        raise WireError.azure(
            400,
            "InvalidResourceProperties",
            f"The model '{model['name']}' was not found for account '{account}'.",
        )
    now = fake.clock.now()
    key = deployment_key(sub, rg, account, name)
    existing = fake.deployments.get(key)
    deployment = Deployment(
        subscription=sub,
        resource_group=rg,
        account=account,
        name=existing.name if existing else name,
        model=dict(model),
        sku=body.get("sku") or {"name": "Standard", "capacity": 1},
        created_at=existing.created_at if existing else now,
        ready_at=now + fake.deploy_seconds,
        updating=existing is not None,
    )
    fake.deployments[key] = deployment
    return ctx.ok(deployment.render(now), status=200 if existing else 201)


def get_deployment(ctx: Ctx, sub: str, rg: str, account: str, name: str) -> FakeResponse:
    deployment = ctx.fake.deployments.get(deployment_key(sub, rg, account, name))
    if deployment is None:
        raise _not_found(name)
    if ctx.fake.auto_advance:
        ctx.fake.clock.advance(ctx.fake.auto_advance)
    return ctx.ok(deployment.render(ctx.fake.clock.now()))


def delete_deployment(ctx: Ctx, sub: str, rg: str, account: str, name: str) -> FakeResponse:
    removed = ctx.fake.deployments.pop(deployment_key(sub, rg, account, name), None)
    return FakeResponse(202 if removed else 204)


def list_deployments(ctx: Ctx, sub: str, rg: str, account: str) -> FakeResponse:
    prefix = deployment_key(sub, rg, account, "")[:3]
    now = ctx.fake.clock.now()
    value = [d.render(now) for k, d in ctx.fake.deployments.items() if k[:3] == prefix]
    return ctx.ok({"value": value})


_ONE = re.compile(rf"{_ACCOUNT}/(?P<name>[^/]+)", re.IGNORECASE)
ROUTES = [
    ("PUT", _ONE, put_deployment),
    ("GET", _ONE, get_deployment),
    ("DELETE", _ONE, delete_deployment),
    ("GET", re.compile(_ACCOUNT, re.IGNORECASE), list_deployments),
]
