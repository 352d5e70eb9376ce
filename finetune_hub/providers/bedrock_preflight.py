"""What Amazon Bedrock can answer before any upload (`BedrockBackend.preflight`).

The failures users meet only after uploading, each asked here first with a cheap call:

- the model offered in this region and account for the job's customization type
  (`ListFoundationModels` by customization type, then `GetFoundationModel` to tell "not offered
  here" from "offered, but not for this");
- model access granted (`GetFoundationModelAvailability`: authorization, entitlement, agreement),
  which Bedrock otherwise reports as `AccessDeniedException` on the create;
- the permissions a job needs, by IAM policy simulation (`iam:SimulatePrincipalPolicy`): the
  caller may pass the role to Bedrock (`iam:PassRole`) and create the job; the role exists, is
  trusted by bedrock.amazonaws.com (`iam:GetRole`) and may read and write the S3 prefix, and use
  the KMS key when one is set;
- the bucket reachable (`HeadBucket`).

Each finding is an `Issue` whose message says the fix. A check that could not be made (the caller
may not simulate, say) is a warning that says what to allow for it to be made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue, Severity
from finetune_hub.providers.bedrock_connection import is_not_found
from finetune_hub.providers.bedrock_wire import S3_URI_RE

if TYPE_CHECKING:
    from finetune_hub.providers.base import PreparedJob
    from finetune_hub.providers.bedrock import BedrockBackend

T = TypeVar("T")
BEDROCK = "bedrock.amazonaws.com"
_ASSUMED = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")


def preflight(backend: BedrockBackend, job: PreparedJob) -> list[Issue]:
    """Every finding of the checks above, in that order."""
    issues: list[Issue] = []
    region = backend.connection.region
    kind = backend.customization_type(job.method) or "FINE_TUNING"
    if ":custom-model/" not in job.model_id:  # continued training starts from your own model
        offered = _model_offered(backend, job.model_id, kind, region, issues)
        if offered:
            _model_access(backend, job.model_id, region, issues)
    _permissions(backend, region, issues)
    _bucket(backend, issues)
    return issues


def _issue(code: str, field: str, message: str, *, warn: bool = False) -> Issue:
    return Issue(
        code=code,
        field=field,
        message=message,
        severity=Severity.WARNING if warn else Severity.ERROR,
    )


def _ask(backend: BedrockBackend, operation: str, fn: Callable[[], T]) -> T:
    return backend.call(f"preflight:{operation}", fn)


def _not_checked(what: str, exc: ProviderError, allow: str) -> Issue:
    return _issue(
        "preflight_not_checked",
        "options",
        f"could not check {what} ({exc.message}); allow {allow} to the caller to have it "
        "checked before an upload",
        warn=True,
    )


# -- the model ------------------------------------------------------------------------------------
def _model_offered(
    backend: BedrockBackend, model_id: str, kind: str, region: str, issues: list[Issue]
) -> bool:
    bedrock = backend.client("bedrock")
    try:
        listed = _ask(
            backend,
            "ListFoundationModels",
            lambda: bedrock.list_foundation_models(byCustomizationType=kind)["modelSummaries"],
        )
    except ProviderError as exc:
        issues.append(
            _not_checked("which models Bedrock offers", exc, "bedrock:ListFoundationModels")
        )
        return True
    ids = {m.get("modelId") for m in listed} | {m.get("modelArn") for m in listed}
    if model_id in ids:
        return True
    tunable = ", ".join(sorted(str(m.get("modelId")) for m in listed)[:12]) or "none"
    try:
        details = _ask(
            backend,
            "GetFoundationModel",
            lambda: bedrock.get_foundation_model(modelIdentifier=model_id)["modelDetails"],
        )
    except ProviderError as exc:
        if not is_not_found(exc) and exc.code != "ValidationException":
            issues.append(
                _not_checked(f"whether {model_id} is offered", exc, "bedrock:GetFoundationModel")
            )
            return True
        issues.append(
            _issue(
                "model_not_offered",
                "base_model",
                f"Amazon Bedrock does not offer {model_id} in {region} to this account "
                f"(GetFoundationModel: {exc.message}). Fix: use a region that offers it "
                "(options['region']; see the supported-models page), or one of the models "
                f"{region} offers for {kind}: {tunable}",
            )
        )
        return False
    supported = ", ".join(details.get("customizationsSupported") or []) or "none"
    issues.append(
        _issue(
            "model_not_customizable",
            "base_model",
            f"{model_id} is offered in {region} but not for {kind} (it supports: {supported}). "
            f"Fix: use a method it supports, or a model {region} offers for {kind}: {tunable}",
        )
    )
    return False


def _model_access(backend: BedrockBackend, model_id: str, region: str, issues: list[Issue]) -> None:
    bedrock = backend.client("bedrock")
    try:
        found = _ask(
            backend,
            "GetFoundationModelAvailability",
            lambda: bedrock.get_foundation_model_availability(modelId=model_id),
        )
    except ProviderError as exc:
        allow = "bedrock:GetFoundationModelAvailability"
        issues.append(_not_checked(f"access to {model_id}", exc, allow))
        return
    authorization = found.get("authorizationStatus")
    entitlement = found.get("entitlementAvailability")
    agreement = (found.get("agreementAvailability") or {}).get("status")
    if (authorization, entitlement) == ("AUTHORIZED", "AVAILABLE") and agreement in (
        None,
        "AVAILABLE",
    ):
        return
    issues.append(
        _issue(
            "model_access_denied",
            "base_model",
            f"this account has no access to {model_id} in {region} (authorization "
            f"{authorization}, entitlement {entitlement}, agreement {agreement}); Bedrock would "
            "refuse the job with AccessDeniedException after the upload. Fix: request access "
            f"to the model in the Bedrock console (Model access, region {region}) or accept its "
            "offer (CreateFoundationModelAgreement), then run the preflight again",
        )
    )


# -- IAM ----------------------------------------------------------------------------------------------
def principal_arn(caller: str) -> str:
    """The IAM ARN to simulate for a caller ARN (an assumed role's session -> the role).

    >>> principal_arn("arn:aws:sts::123456789012:assumed-role/Admin/alice")
    'arn:aws:iam::123456789012:role/Admin'
    """
    found = _ASSUMED.match(caller)
    if found:
        return f"arn:{found.group(1)}:iam::{found.group(2)}:role/{found.group(3)}"
    return caller.replace(":sts::", ":iam::", 1)


def _simulate(
    backend: BedrockBackend,
    principal: str,
    actions: list[str],
    resources: list[str],
    context: dict[str, str] | None = None,
) -> dict[str, str]:
    """action -> decision ("allowed", "implicitDeny", "explicitDeny"), the worst over resources."""
    iam = backend.client("iam")
    entries = [
        {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
        for k, v in (context or {}).items()
    ]
    answer = _ask(
        backend,
        "SimulatePrincipalPolicy",
        lambda: iam.simulate_principal_policy(
            PolicySourceArn=principal,
            ActionNames=actions,
            ResourceArns=resources,
            **({"ContextEntries": entries} if entries else {}),
        ),
    )
    rank = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}
    out: dict[str, str] = {}
    for result in answer.get("EvaluationResults", []):
        action, decision = result["EvalActionName"], result["EvalDecision"]
        if rank.get(decision, 1) >= rank.get(out.get(action, "allowed"), 0):
            out[action] = decision
    return out


def _statement(
    actions: list[str], resources: list[str], extra: dict[str, Any] | None = None
) -> str:
    body: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return json.dumps({**body, **(extra or {})})


def _permissions(backend: BedrockBackend, region: str, issues: list[Issue]) -> None:
    o = backend.options
    role = o.role_arn
    bucket_prefix = S3_URI_RE.match(o.s3_uri or "")
    if not role:
        return  # check() already says the role is missing
    try:
        who = _ask(
            backend, "GetCallerIdentity", lambda: backend.client("sts").get_caller_identity()
        )
        caller = principal_arn(who["Arn"])
        passing = _simulate(
            backend, caller, ["iam:PassRole"], [role], {"iam:PassedToService": BEDROCK}
        )
        creating = _simulate(backend, caller, ["bedrock:CreateModelCustomizationJob"], ["*"])
    except ProviderError as exc:
        issues.append(
            _not_checked(
                "the caller's permissions",
                exc,
                "sts:GetCallerIdentity and iam:SimulatePrincipalPolicy",
            )
        )
    else:
        if passing.get("iam:PassRole", "implicitDeny") != "allowed":
            fix = _statement(
                ["iam:PassRole"],
                [role],
                {"Condition": {"StringEquals": {"iam:PassedToService": BEDROCK}}},
            )
            issues.append(
                _issue(
                    "missing_pass_role",
                    "role_arn",
                    f"{caller} may not pass the role {role} to Bedrock (iam:PassRole: "
                    f"{passing.get('iam:PassRole')}), so the create would be refused after the "
                    f"upload. Fix: add to the caller's IAM policy {fix}",
                )
            )
        if creating.get("bedrock:CreateModelCustomizationJob", "implicitDeny") != "allowed":
            fix = _statement(
                ["bedrock:CreateModelCustomizationJob", "bedrock:GetModelCustomizationJob"], ["*"]
            )
            issues.append(
                _issue(
                    "missing_bedrock_permission",
                    "options",
                    f"{caller} may not create model customization jobs "
                    f"({creating.get('bedrock:CreateModelCustomizationJob')}). Fix: add {fix}",
                )
            )
    _role(backend, role, bucket_prefix, region, issues)


def _role(
    backend: BedrockBackend, role: str, bucket_prefix: Any, region: str, issues: list[Issue]
) -> None:
    name = role.rsplit("/", 1)[-1]
    try:
        found = _ask(backend, "GetRole", lambda: backend.client("iam").get_role(RoleName=name))[
            "Role"
        ]
    except ProviderError as exc:
        if exc.code == "NoSuchEntity" or is_not_found(exc):
            issues.append(
                _issue(
                    "role_not_found",
                    "role_arn",
                    f"the role {role} does not exist in this account. Fix: create it with a trust "
                    f"policy for {BEDROCK} (docs/providers/bedrock.md), or set options['role_arn']",
                )
            )
        else:
            issues.append(_not_checked(f"the role {role}", exc, "iam:GetRole"))
        return
    trust = found.get("AssumeRolePolicyDocument") or {}
    if isinstance(trust, str):
        trust = json.loads(trust)
    if BEDROCK not in json.dumps(trust):
        issues.append(
            _issue(
                "role_not_trusted_by_bedrock",
                "role_arn",
                f"the trust policy of {role} does not let {BEDROCK} assume it. Fix: add the "
                f'statement {{"Effect": "Allow", "Principal": {{"Service": "{BEDROCK}"}}, '
                '"Action": "sts:AssumeRole"}',
            )
        )
    if bucket_prefix is None:
        return
    bucket, prefix = bucket_prefix.group(1), bucket_prefix.group(2) or ""
    objects = f"arn:aws:s3:::{bucket}/{prefix}*"
    try:
        decisions = _simulate(backend, role, ["s3:GetObject", "s3:PutObject"], [objects])
        decisions |= _simulate(backend, role, ["s3:ListBucket"], [f"arn:aws:s3:::{bucket}"])
        key = backend.options.kms_key_id
        if key:
            key_arn = key if key.startswith("arn:") else "*"
            decisions |= _simulate(backend, role, ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn])
    except ProviderError as exc:
        issues.append(_not_checked(f"what {role} may do", exc, "iam:SimulatePrincipalPolicy"))
        return
    missing_s3 = [a for a, d in decisions.items() if a.startswith("s3:") and d != "allowed"]
    if missing_s3:
        fix = _statement(missing_s3, [objects, f"arn:aws:s3:::{bucket}"])
        issues.append(
            _issue(
                "role_missing_s3_access",
                "role_arn",
                f"{role} may not {', '.join(missing_s3)} on s3://{bucket}/{prefix}, where the "
                f"training data and the output go. Fix: add to the role's policy {fix}",
            )
        )
    missing_kms = [a for a, d in decisions.items() if a.startswith("kms:") and d != "allowed"]
    if missing_kms:
        fix = _statement(missing_kms, [backend.options.kms_key_id or "*"])
        issues.append(
            _issue(
                "role_missing_kms_access",
                "kms_key_id",
                f"{role} may not {', '.join(missing_kms)} with the key "
                f"{backend.options.kms_key_id}. Fix: add to the role's policy {fix} (and let the "
                "role use the key in the key policy)",
            )
        )


# -- the bucket -----------------------------------------------------------------------------------------
def _bucket(backend: BedrockBackend, issues: list[Issue]) -> None:
    found = S3_URI_RE.match(backend.options.s3_uri or "")
    if not found:
        return  # check() already says the S3 location is missing or malformed
    bucket = found.group(1)
    s3 = backend.client("s3")
    try:
        _ask(backend, "HeadBucket", lambda: s3.head_bucket(Bucket=bucket))
    except ProviderError as exc:
        if is_not_found(exc):
            text = f"the S3 bucket {bucket!r} does not exist (HeadBucket: 404)"
            code = "bucket_not_found"
        elif exc.status_code == 403:
            text = f"the S3 bucket {bucket!r} exists but refuses this caller (HeadBucket: 403)"
            code = "bucket_access_denied"
        elif exc.status_code in (301, 400):
            text = (
                f"the S3 bucket {bucket!r} answered {exc.status_code}: it may be in another region"
            )
            code = "bucket_unreachable"
        else:
            issues.append(_not_checked(f"the bucket {bucket!r}", exc, "s3:ListBucket"))
            return
        issues.append(
            _issue(
                code,
                "s3_uri",
                f"{text}; the upload would fail. Fix: create the bucket or grant this caller "
                "s3:ListBucket, s3:PutObject on it, or set options['s3_uri'] to a bucket you "
                "can write to",
            )
        )
