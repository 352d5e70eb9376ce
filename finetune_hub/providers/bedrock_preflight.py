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
- the bucket reachable (`HeadBucket`);
- the account's record quotas (`service-quotas` `ListServiceQuotas`, service code "bedrock"): each
  default quota the job's rules name (`quotas`, with the codes of `[service_quotas]` in
  rules/bedrock.toml) at the value applied to this account, against the job's records (its
  local files, counted line by line). Over the applied value is an error with the quota code to
  raise; an applied value above the rules' default that the job does not declare is a warning
  (validation used the default), with how to declare it.

Each finding is an `Issue` whose message says the fix. A check that could not be made (the caller
may not simulate, say) is a warning that says what to allow for it to be made.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from finetune_hub.data.reader import is_gzip
from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue, Severity
from finetune_hub.providers.bedrock_connection import is_not_found
from finetune_hub.providers.bedrock_wire import S3_URI_RE
from finetune_hub.rules import default_catalog

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
    _service_quotas(backend, job, region, issues)
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


# -- the account's quotas --------------------------------------------------------------------------
#: which records a rules field counts (each Bedrock quota is "Sum of training and validation
#: records", but a rules field may name it for one side only)
_COUNTED: dict[str, Callable[[int, int], int]] = {
    "max_training_records": lambda train, val: train,
    "max_validation_records": lambda train, val: val,
    "max_total_records": lambda train, val: train + val,
}
_PREFIX = re.compile(r"^\s*\(model customization\)\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")
_FILLER = frozenset({"a", "an", "the", "for", "of", "and", "job"})


def _norm(name: str) -> str:
    """A quota name as compared: without Service Quotas' "(Model customization)" prefix, lower
    case, spaces collapsed."""
    return " ".join(_PREFIX.sub("", name).lower().split())


def _words(text: str) -> set[str]:
    return set(_WORD.findall(_norm(text))) - _FILLER


def count_records(path: str | None) -> int | None:
    """Non-blank lines of a local JSONL file (`.gz` read through); None for a file that is not
    here (an S3 URI, say), which leaves the quotas unchecked."""
    if not path or "://" in path or not Path(path).is_file():
        return None
    opener: Callable[..., Any] = gzip.open if is_gzip(Path(path)) else open
    try:
        with opener(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return None


def _codes() -> dict[str, str]:
    """Normalised rules quota name -> the Service Quotas code a source gives for it."""
    tables = default_catalog().provider_data("bedrock").get("service_quotas", {})
    return {_norm(t["quota"]): t["code"] for t in tables.values() if t.get("code")}


def _match(name: str, code: str | None, model_id: str, listed: list[dict[str, Any]]) -> Any:
    """The listed quota that is the rules' quota `name`: by code, by name, else the one listed
    name holding every word of it (several: the one naming most of the model id's words).
    Returns a quota dict, None when none matches, or a list of the names when several do."""
    if code:
        for quota in listed:
            if quota.get("QuotaCode") == code:
                return quota
    for quota in listed:
        if _norm(str(quota.get("QuotaName", ""))) == _norm(name):
            return quota
    wanted = _words(name)
    found = [q for q in listed if wanted <= _words(str(q.get("QuotaName", "")))]
    if len(found) > 1:
        model = set(re.findall(r"[a-z0-9]+", model_id.lower()))
        score = {id(q): len(model & _words(str(q.get("QuotaName", "")))) for q in found}
        best = max(score.values())
        found = [q for q in found if score[id(q)] == best]
    if len(found) > 1:
        return [str(q.get("QuotaName")) for q in found]
    return found[0] if found else None


def _service_quotas(
    backend: BedrockBackend, job: PreparedJob, region: str, issues: list[Issue]
) -> None:
    rules = job.rules
    if rules is None or not rules.quotas:
        return  # no default quota to ask about: no call
    train, val = count_records(job.training_file), count_records(job.validation_file) or 0
    if train is None:
        return  # the records are not here to count
    needs: dict[str, dict[str, Any]] = {}  # quota name -> fields, records needed, default
    for field, name in rules.quotas.items():
        counted = _COUNTED.get(field)
        if counted is None:
            continue
        entry = needs.setdefault(name, {"fields": [], "need": 0, "default": None})
        entry["sides"] = "training + validation" if val else "training"
        entry["fields"].append(field)
        entry["need"] = max(entry["need"], counted(train, val))
        value = getattr(rules, field, None)
        if isinstance(value, int) and (entry["default"] is None or value < entry["default"]):
            entry["default"] = value
    if not needs:
        return
    client = backend.client("service-quotas")

    def listed() -> list[dict[str, Any]]:
        pages = client.get_paginator("list_service_quotas").paginate(ServiceCode="bedrock")
        return [q for page in pages for q in page.get("Quotas", [])]

    try:
        quotas = _ask(backend, "ListServiceQuotas", listed)
    except ProviderError as exc:
        names = ", ".join(repr(n) for n in needs)
        issues.append(
            _not_checked(
                f"this account's Bedrock record quotas ({names})",
                exc,
                "servicequotas:ListServiceQuotas",
            )
        )
        return
    codes = _codes()
    for name, entry in needs.items():
        _one_quota(job, rules, region, name, codes.get(_norm(name)), entry, quotas, issues)


def _one_quota(
    job: PreparedJob,
    rules: Any,
    region: str,
    name: str,
    code: str | None,
    entry: dict[str, Any],
    quotas: list[dict[str, Any]],
    issues: list[Issue],
) -> None:
    fields, need, default = entry["fields"], entry["need"], entry["default"]
    found = _match(name, code, job.model_id, quotas)
    if not isinstance(found, dict) or found.get("Value") is None:
        if isinstance(found, list):
            why = f"several quotas match it: {'; '.join(found)}"
        elif isinstance(found, dict):
            reason = found.get("ErrorReason") or {}
            why = f"no applied value ({reason.get('ErrorCode')}: {reason.get('ErrorMessage')})"
        else:
            why = "Service Quotas lists no such quota for service bedrock"
        issues.append(
            _issue(
                "preflight_not_checked",
                f"quotas.{fields[0]}",
                f"could not check the quota {name!r} in {region} ({why}); look up its applied "
                "value in the Service Quotas console (service: Amazon Bedrock) and declare it "
                f"if it is raised: quotas={{{fields[0]!r}: N}}",
                warn=True,
            )
        )
        return
    applied = int(found["Value"])
    qcode = found.get("QuotaCode") or code or "?"
    declared = [rules.declared_quotas[f] for f in fields if f in rules.declared_quotas]
    sides = entry["sides"]
    if need > applied:
        issues.append(
            _issue(
                "service_quota_exceeded",
                f"quotas.{fields[0]}",
                f"the job has {need:,} records ({sides}) but this account's applied value of "
                f"the Service Quotas quota {found.get('QuotaName') or name!r} (code {qcode}) in "
                f"{region} is {applied:,}; Bedrock would refuse the job after the upload. Fix: "
                "request an increase in the Service Quotas console (service: Amazon Bedrock, "
                f"quota code {qcode}) or with `aws service-quotas "
                f"request-service-quota-increase --service-code bedrock --quota-code {qcode} "
                f"--desired-value {need}`, or train on at most {applied:,} records",
            )
        )
    elif default is not None and applied > default and not declared:
        over = (
            f"; the job's {need:,} records are over that default, so validation refuses them "
            "until you declare it"
            if need > default
            else ""
        )
        issues.append(
            _issue(
                "service_quota_not_declared",
                f"quotas.{fields[0]}",
                f"this account's applied value of the quota {found.get('QuotaName') or name!r} "
                f"(code {qcode}) in {region} is {applied:,}, above the default {default:,} that "
                f"validation uses unless the job declares your value{over}. Declare it: quotas={{{fields[0]!r}: "
                f"{applied}}} (CLI: --quota {fields[0]}={applied})",
                warn=True,
            )
        )
