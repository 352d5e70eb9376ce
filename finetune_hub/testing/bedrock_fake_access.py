"""Test-only extension of moto (5.2.x) for a Bedrock preflight: what moto lacks to answer "may I?"
before anything is uploaded. Applied with the rest of `bedrock_fake_ext` by `FakeBedrock`.

- `GetFoundationModel` over the same catalogue as `ListFoundationModels` (404 for a model the
  region does not offer);
- `GetFoundationModelAvailability`, and a model whose access the account was not granted: the
  active fake's `access_denied` (a set of model ids) answers NOT_AUTHORIZED there, and
  `CreateModelCustomizationJob` on it fails with `AccessDeniedException`, as Bedrock does;
- IAM `SimulatePrincipalPolicy`, evaluated over the principal's inline, managed and group
  policies in moto's IAM (explicit deny > allow > implicit deny; `ContextEntries` feed the
  conditions), since moto does not implement it.

`grant(fake, ...)` builds the IAM world a test wants: the caller (moto's default identity, the
IAM user `moto`) and the customization role `fake.role_arn` (trusted by bedrock.amazonaws.com),
each with the actions it is allowed. The `fake_bedrock` fixture grants everything by default.

>>> grant(fake, caller=["bedrock:*", "s3:*"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from moto.bedrock.models import BedrockBackend
from moto.bedrock.responses import BedrockResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
from moto.iam.responses import IamResponse

ACCOUNT = "123456789012"
CALLER = "moto"  # the user moto's GetCallerIdentity names for keys it does not know
_APPLIED = False


class AccessDenied(JsonRESTError):
    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


class NotFound(JsonRESTError):
    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


def _fake() -> Any:
    from .bedrock_fake_ext import ACTIVE

    return ACTIVE.get("fake")


def _catalogue() -> list[dict[str, Any]]:
    from .bedrock_fake_ext import FOUNDATION_MODELS

    return getattr(_fake(), "foundation_models", None) or FOUNDATION_MODELS


def _denied(model_id: str) -> bool:
    denied = getattr(_fake(), "access_denied", None) or set()
    base = model_id.rsplit("/", 1)[-1]
    return any(base == d or base.startswith(d + ":") for d in denied)


def apply() -> None:
    """Patch moto (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    BedrockResponse.get_foundation_model = _get_foundation_model
    BedrockResponse.get_foundation_model_availability = _get_availability
    IamResponse.simulate_principal_policy = _simulate_principal_policy
    original = BedrockBackend.create_model_customization_job

    def create(self: BedrockBackend, *args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("base_model_identifier") or ""
        if _denied(model):
            raise AccessDenied("You don't have access to the model with the specified model ID.")
        return original(self, *args, **kwargs)

    BedrockBackend.create_model_customization_job = create


# -- Bedrock ----------------------------------------------------------------------------------------
def _ident(self: BedrockResponse) -> str:
    return unquote(self.path.split("?")[0].rstrip("/").split("/")[-1])


def _get_foundation_model(self: BedrockResponse) -> str:
    ident = _ident(self)
    for model in _catalogue():
        if ident in (model["modelId"], model["modelArn"]):
            return json.dumps({"modelDetails": model})
    raise NotFound("Could not resolve the foundation model from the provided model identifier.")


def _get_availability(self: BedrockResponse) -> str:
    ident = _ident(self)
    if not any(ident == m["modelId"] or m["modelId"].startswith(ident + ":") for m in _catalogue()):
        raise NotFound(f"Model {ident} not found")
    denied = _denied(ident)
    return json.dumps(
        {
            "modelId": ident,
            "agreementAvailability": {"status": "NOT_AVAILABLE" if denied else "AVAILABLE"},
            "authorizationStatus": "NOT_AUTHORIZED" if denied else "AUTHORIZED",
            "entitlementAvailability": "NOT_AVAILABLE" if denied else "AVAILABLE",
            "regionAvailability": "AVAILABLE",
        }
    )


# -- IAM policy simulation ------------------------------------------------------------------------
def _iam() -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[ACCOUNT]["aws"]


def _documents(iam: Any, arn: str) -> list[Any]:
    """Every policy that applies to the user or role `arn` (moto's IAM objects)."""
    from moto.iam.exceptions import IAMException, NotFoundException

    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    try:
        if kind == "role":
            role = iam.get_role(name)
            return [*role.policies.values(), *role.managed_policies.values()]
        if kind == "user":
            user = iam.get_user(name)
            docs = [*user.policies.values(), *user.managed_policies.values()]
            for group in iam.get_groups_for_user(name):
                docs += [*group.policies.values(), *group.managed_policies.values()]
            return docs
    except IAMException:
        pass
    raise NotFoundException(f"The principal {arn} does not exist or is not a user or a role.")


def _decide(docs: list[Any], action: str, resource: str, context: dict[str, str]) -> str:
    allowed = False
    for doc in docs:
        statements = IAMPolicy(doc)._policy_json["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            result = IAMPolicyStatement(statement).is_action_permitted(
                action, resource, None, context
            )
            if result is PermissionResult.DENIED and statement.get("Effect") == "Deny":
                return "explicitDeny"
            if result is PermissionResult.PERMITTED:
                allowed = True
    return "allowed" if allowed else "implicitDeny"


def _simulate_principal_policy(self: IamResponse) -> ActionResult:
    source = self._get_param("PolicySourceArn")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    context = {
        entry["ContextKeyName"]: (entry.get("ContextKeyValues") or [""])[0]
        for entry in self._get_param("ContextEntries", [])
    }
    docs = _documents(_iam(), source)
    results = [
        {
            "EvalActionName": action,
            "EvalResourceName": resource,
            "EvalDecision": _decide(docs, action, resource, context),
            "MatchedStatements": [],
            "MissingContextValues": [],
        }
        for action in actions
        for resource in resources
    ]
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


# -- the world a test wants -----------------------------------------------------------------------
ALL = ["*"]
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _policy(actions: list[str]) -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement] if actions else []})


def grant(
    fake: Any,
    *,
    caller: list[str] | None = None,
    role: list[str] | None = None,
    role_trust: dict[str, Any] | None = None,
) -> None:
    """(Re)make the caller (IAM user `moto`) and the role `fake.role_arn` with these allowed
    actions (default: everything); `role=None` with `role_trust` changes who may assume it.
    Called after `fake.reset()`, which forgets IAM too."""
    iam = _iam()
    if CALLER not in iam.users:
        iam.create_user(region_name=fake.region, user_name=CALLER, path="/", tags=[])
    iam.put_user_policy(CALLER, "finetune-hub-test", _policy(ALL if caller is None else caller))
    name = fake.role_arn.rsplit("/", 1)[-1]
    if name not in {r.name for r in iam.roles.values()}:
        iam.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(role_trust or TRUST),
            path="/",
            permissions_boundary=None,
            description="the customization role of FakeBedrock",
            tags=[],
            max_session_duration=None,
            linked_service=None,
        )
    elif role_trust is not None:
        iam.update_assume_role_policy(name, json.dumps(role_trust))
    iam.put_role_policy(name, "finetune-hub-test", _policy(ALL if role is None else role))
