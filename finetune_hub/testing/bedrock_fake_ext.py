"""Test-only extension of moto's Bedrock backend (moto 5.2.x), applied once by `FakeBedrock`.

Adds what moto lacks (shared/fakes-findings.md §1): job look-up and stop by ARN (URL-decoded),
`Stopping` on stop, `statusDetails` / `endTime` / a failure message only when failed, Provisioned
Throughput CRUD (Creating -> InService on the first read), on-demand custom model deployments
(Creating -> Active), ListFoundationModels over a small catalogue (`FOUNDATION_MODELS`, or the
active fake's `foundation_models` when set; filters byProvider and byCustomizationType), a
Converse stand-in on bedrock-runtime whose reply comes from the active `FakeBedrock`, and (in
`bedrock_fake_access`) GetFoundationModel, model access and IAM policy simulation, and (in
`bedrock_fake_quotas`) Service Quotas' ListServiceQuotas for service code "bedrock".
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from moto.bedrock.exceptions import ValidationException
from moto.bedrock.models import BedrockBackend, ModelCustomizationJob
from moto.bedrock.responses import BedrockResponse
from moto.bedrockruntime.responses import BedrockRuntimeResponse
from moto.core.exceptions import JsonRESTError

#: the FakeBedrock whose reply function Converse uses (set by FakeBedrock.start)
ACTIVE: dict[str, Any] = {}
_APPLIED = False


class NotFound(JsonRESTError):
    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


def job_name(ident: str) -> str:
    ident = unquote(ident)
    return ident.rsplit("/", 1)[-1] if ident.startswith("arn:") else ident


def _now() -> str:
    return datetime.now(UTC).isoformat()


def apply() -> None:
    """Patch moto's classes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    orig_get = BedrockBackend.get_model_customization_job
    orig_to_dict = ModelCustomizationJob.to_dict

    def get_job(self: BedrockBackend, job_identifier: str) -> ModelCustomizationJob:
        return orig_get(self, job_name(job_identifier))

    def stop_job(self: BedrockBackend, job_identifier: str) -> None:
        job = orig_get(self, job_name(job_identifier))
        if job.status != "InProgress":
            raise ValidationException(f"Job is in {job.status} state and cannot be stopped")
        job.status = "Stopping"

    def to_dict(self: ModelCustomizationJob) -> dict[str, Any]:
        d = orig_to_dict(self)
        d["statusDetails"] = getattr(self, "fh_details", None) or {
            "validationDetails": {"status": "InProgress", "lastModifiedTime": self.creation_time},
            "dataProcessingDetails": {
                "status": "NotStarted",
                "lastModifiedTime": self.creation_time,
            },
            "trainingDetails": {"status": "NotStarted", "lastModifiedTime": self.creation_time},
        }
        # the real service names the output model customModelName; moto appends the job name
        d["outputModelName"] = self.custom_model_name
        d["outputModelArn"] = d["outputModelArn"].rsplit("/", 1)[0] + "/" + self.custom_model_name
        if self.status != "Failed":
            d.pop("failureMessage", None)
        if self.status in ("InProgress", "Stopping"):
            d.pop("endTime", None)
        return d

    orig_get_model = BedrockBackend.get_custom_model

    def get_model(self: BedrockBackend, model_identifier: str) -> Any:
        return orig_get_model(self, job_name(model_identifier))

    def delete_model(self: BedrockBackend, model_identifier: str) -> None:
        name = job_name(model_identifier)
        if name not in self.custom_models:
            raise NotFound(f"Custom model {model_identifier} not found")
        del self.custom_models[name]

    BedrockBackend.get_custom_model = get_model
    BedrockBackend.delete_custom_model = delete_model
    BedrockBackend.get_model_customization_job = get_job
    BedrockBackend.stop_model_customization_job = stop_job
    ModelCustomizationJob.to_dict = to_dict

    BedrockResponse.create_provisioned_model_throughput = _create_pt
    BedrockResponse.get_provisioned_model_throughput = _get_pt
    BedrockResponse.delete_provisioned_model_throughput = _delete_pt
    BedrockResponse.list_provisioned_model_throughputs = _list_pt
    BedrockResponse.create_custom_model_deployment = _create_dep
    BedrockResponse.get_custom_model_deployment = _get_dep
    BedrockResponse.delete_custom_model_deployment = _delete_dep
    BedrockResponse.list_foundation_models = _list_foundation_models
    BedrockRuntimeResponse.converse = _converse
    from . import (
        bedrock_fake_access,  # GetFoundationModel, model access, IAM simulation
        bedrock_fake_quotas,  # Service Quotas' ListServiceQuotas for "bedrock"
    )

    bedrock_fake_access.apply()
    bedrock_fake_quotas.apply()


def store(backend: BedrockBackend, kind: str) -> dict[str, dict[str, Any]]:
    """The extension's own tables on a backend: 'pt' or 'deployments'."""
    if not hasattr(backend, "fh_tables"):
        backend.fh_tables = {"pt": {}, "deployments": {}}
    return backend.fh_tables[kind]


# -- provisioned throughput ------------------------------------------------------------------------
def _create_pt(self: BedrockResponse) -> str:
    p = json.loads(self.body)
    table = store(self.bedrock_backend, "pt")
    for pt in table.values():  # clientRequestToken idempotency, as on the real service
        if p.get("clientRequestToken") and pt.get("clientRequestToken") == p["clientRequestToken"]:
            return json.dumps({"provisionedModelArn": pt["provisionedModelArn"]})
        if pt["provisionedModelName"] == p["provisionedModelName"]:
            raise JsonRESTError(
                "ResourceInUseException", f"provisioned model {p['provisionedModelName']} exists"
            )
    pid = uuid.uuid4().hex[:12]
    arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:provisioned-model/{pid}"
    now = _now()
    table[pid] = {
        "provisionedModelArn": arn,
        "provisionedModelName": p["provisionedModelName"],
        "modelArn": p["modelId"],
        "desiredModelArn": p["modelId"],
        "foundationModelArn": p["modelId"],
        "modelUnits": p["modelUnits"],
        "desiredModelUnits": p["modelUnits"],
        "status": "Creating",
        "creationTime": now,
        "lastModifiedTime": now,
        "commitmentDuration": p.get("commitmentDuration"),
        "clientRequestToken": p.get("clientRequestToken"),
    }
    return json.dumps({"provisionedModelArn": arn})


def _find(
    self: BedrockResponse, kind: str, name_key: str, arn_key: str
) -> tuple[str, dict[str, Any]]:
    ident = unquote(self.path.split("?")[0].rstrip("/").split("/")[-1])
    for pid, item in store(self.bedrock_backend, kind).items():
        if ident in (pid, item[name_key], item[arn_key]) or job_name(ident) == pid:
            return pid, item
    raise NotFound(f"{kind} {ident} not found")


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None and k != "clientRequestToken"}


def _get_pt(self: BedrockResponse) -> str:
    _, pt = _find(self, "pt", "provisionedModelName", "provisionedModelArn")
    out = _public(pt)
    if pt["status"] == "Creating":
        pt["status"] = "InService"
    return json.dumps(out)


def _delete_pt(self: BedrockResponse) -> str:
    pid, _ = _find(self, "pt", "provisionedModelName", "provisionedModelArn")
    del store(self.bedrock_backend, "pt")[pid]
    return json.dumps({})


def _list_pt(self: BedrockResponse) -> str:
    return json.dumps(
        {
            "provisionedModelSummaries": [
                _public(pt) for pt in store(self.bedrock_backend, "pt").values()
            ]
        }
    )


# -- on-demand custom model deployments ----------------------------------------------------------
def _create_dep(self: BedrockResponse) -> str:
    p = json.loads(self.body)
    table = store(self.bedrock_backend, "deployments")
    for dep in table.values():
        if dep["modelDeploymentName"] == p["modelDeploymentName"]:
            return json.dumps({"customModelDeploymentArn": dep["customModelDeploymentArn"]})
    did = uuid.uuid4().hex[:12]
    arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:custom-model-deployment/{did}"
    table[did] = {
        "customModelDeploymentArn": arn,
        "modelDeploymentName": p["modelDeploymentName"],
        "modelArn": p["modelArn"],
        "status": "Creating",
        "createdAt": _now(),
    }
    return json.dumps({"customModelDeploymentArn": arn})


def _get_dep(self: BedrockResponse) -> str:
    _, dep = _find(self, "deployments", "modelDeploymentName", "customModelDeploymentArn")
    out = dict(dep)
    dep["status"] = "Active"
    return json.dumps(out)


def _delete_dep(self: BedrockResponse) -> str:
    did, _ = _find(self, "deployments", "modelDeploymentName", "customModelDeploymentArn")
    del store(self.bedrock_backend, "deployments")[did]
    return json.dumps({})


# -- foundation models -------------------------------------------------------------------------------
def _fm(model_id: str, name: str, provider: str, customizations: list[str]) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
        "modelName": name,
        "providerName": provider,
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "customizationsSupported": customizations,
        "inferenceTypesSupported": ["PROVISIONED"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


#: The catalogue ListFoundationModels serves: customization variants of models Bedrock lists as
#: tunable, plus an on-demand model that takes no customization.
FOUNDATION_MODELS: list[dict[str, Any]] = [
    _fm("amazon.nova-micro-v1:0:128k", "Nova Micro", "Amazon", ["FINE_TUNING", "DISTILLATION"]),
    _fm("amazon.nova-lite-v1:0:300k", "Nova Lite", "Amazon", ["FINE_TUNING", "DISTILLATION"]),
    _fm("amazon.nova-pro-v1:0:300k", "Nova Pro", "Amazon", ["FINE_TUNING", "DISTILLATION"]),
    _fm(
        "anthropic.claude-3-haiku-20240307-v1:0:200k",
        "Claude 3 Haiku",
        "Anthropic",
        ["FINE_TUNING", "DISTILLATION"],
    ),
    _fm(
        "meta.llama3-1-8b-instruct-v1:0:128k",
        "Llama 3.1 8B Instruct",
        "Meta",
        ["FINE_TUNING", "DISTILLATION"],
    ),
    _fm(
        "amazon.titan-text-lite-v1:0:4k",
        "Titan Text G1 - Lite",
        "Amazon",
        ["FINE_TUNING", "CONTINUED_PRE_TRAINING"],
    ),
    _fm("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", []),
]


def _list_foundation_models(self: BedrockResponse) -> str:
    fake = ACTIVE.get("fake")
    models = getattr(fake, "foundation_models", None) or FOUNDATION_MODELS
    query = self.querystring
    kind = (query.get("byCustomizationType") or [None])[0]
    provider = (query.get("byProvider") or [None])[0]
    found = [
        m
        for m in models
        if (kind is None or kind in m.get("customizationsSupported", []))
        and (provider is None or m.get("providerName", "").lower() == provider.lower())
    ]
    return json.dumps({"modelSummaries": found})


# -- bedrock-runtime Converse ----------------------------------------------------------------------
def _converse(self: BedrockRuntimeResponse) -> str:
    body = json.loads(self.body or b"{}")
    model_id = unquote(self.path.split("/model/", 1)[-1].rsplit("/converse", 1)[0])
    fake = ACTIVE.get("fake")
    text = fake.reply(model_id, body.get("messages", []), body.get("system", [])) if fake else "ok"
    if fake is not None:
        fake.chats.append({"modelId": model_id, **body})
    return json.dumps(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            "metrics": {"latencyMs": 1},
        }
    )
