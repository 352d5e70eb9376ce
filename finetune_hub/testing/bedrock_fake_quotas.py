"""Test-only extension of moto (5.2.x): AWS Service Quotas `ListServiceQuotas` for service code
"bedrock", which moto's servicequotas backend does not implement (it knows "vpc" defaults only).
Applied with the rest of `bedrock_fake_ext` by `FakeBedrock`.

The fake lists every default quota the Bedrock rules name (a block's `quotas`, e.g. "Sum of
training and validation records for a Titan Text G1 - Lite v1 Fine-tuning job") at the rules'
default value, with the code `[service_quotas]` in rules/bedrock.toml gives (L-3B82104D for
Titan Text G1 - Lite) and the name as Service Quotas writes it ("(Model customization) ...").
A quota no source gives a code for gets a made-up code, `L-FAKE0001` and on: clearly not AWS's,
so no test or user mistakes it for a real one. Two unrelated Bedrock quotas are listed as well,
and pages hold `MaxResults` quotas (4 when not given), so a client has to follow `NextToken`.

On the active `FakeBedrock`: `set_service_quota(name_or_code, value)` sets the account's applied
value, and `service_quotas_denied = True` answers AccessDeniedException (what a caller without
servicequotas:ListServiceQuotas gets); `reset()` restores both.

>>> fake.set_service_quota("L-3B82104D", 20000)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.servicequotas.responses import ServiceQuotasResponse

ACCOUNT = "123456789012"
PAGE = 4  # quotas per page when the request gives no MaxResults
_APPLIED = False
#: quotas that are not record caps, listed so a client has to pick its own out of several
_OTHERS = [
    ("On-demand model inference requests per minute for Titan Text G1 - Lite", 400),
    ("Model units no-commitment Provisioned Throughputs across custom models", 2),
]


class AccessDenied(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


def _fake() -> Any:
    from .bedrock_fake_ext import ACTIVE

    return ACTIVE.get("fake")


def apply() -> None:
    """Patch moto (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    ServiceQuotasResponse.list_service_quotas = _list_service_quotas


def _norm(name: str) -> str:
    return " ".join(re.sub(r"^\(model customization\)\s*", "", name, flags=re.I).lower().split())


def default_quotas(region: str = "us-east-1") -> list[dict[str, Any]]:
    """The Bedrock quotas the fake lists, at their default values (ServiceQuota shapes)."""
    from finetune_hub.rules import default_catalog, resolve

    catalog = default_catalog()
    known = {
        _norm(t["quota"]): t
        for t in catalog.provider_data("bedrock").get("service_quotas", {}).values()
    }
    defaults: dict[str, int] = {}  # the rules' quota name -> its default value
    for model in catalog.models("bedrock"):
        for method in model.get("methods", {}):
            rules, _ = resolve("bedrock", model["id"], method)
            for field, name in rules.quotas.items():
                value = getattr(rules, field, None)
                if isinstance(value, int):
                    defaults[name] = min(value, defaults.get(name, value))
    rows = [(name, value, known.get(_norm(name))) for name, value in defaults.items()]
    rows += [(name, value, None) for name, value in _OTHERS]
    quotas, made_up = [], 0
    for name, value, table in rows:
        if table is not None:
            code, shown = table["code"], table.get("aws_name") or name
        else:
            made_up += 1
            code = f"L-FAKE{made_up:04d}"  # no source gives this quota's code: made up
            shown = name if (name, value) in _OTHERS else f"(Model customization) {name}"
        quotas.append(
            {
                "ServiceCode": "bedrock",
                "ServiceName": "Amazon Bedrock",
                "QuotaArn": f"arn:aws:servicequotas:{region}:{ACCOUNT}:bedrock/{code}",
                "QuotaCode": code,
                "QuotaName": shown,
                "Value": float(value),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
                "QuotaAppliedAtLevel": "ACCOUNT",
            }
        )
    return quotas


def find_quota(quotas: list[dict[str, Any]], name_or_code: str) -> dict[str, Any]:
    """The quota with this code, or this name (as listed, or as the rules write it)."""
    for quota in quotas:
        if name_or_code == quota["QuotaCode"] or _norm(name_or_code) == _norm(quota["QuotaName"]):
            return quota
    names = "; ".join(f"{q['QuotaCode']} {q['QuotaName']!r}" for q in quotas)
    raise KeyError(f"no Bedrock quota {name_or_code!r} in the fake; it lists: {names}")


def listed(fake: Any) -> list[dict[str, Any]]:
    """The quotas as the account sees them: the defaults with `fake`'s applied values."""
    quotas = default_quotas(getattr(fake, "region", "us-east-1"))
    for code, value in (getattr(fake, "service_quota_values", None) or {}).items():
        find_quota(quotas, code)["Value"] = float(value)
    return quotas


def _list_service_quotas(self: ServiceQuotasResponse) -> str:
    params = json.loads(self.body or "{}")
    fake = _fake()
    if getattr(fake, "service_quotas_denied", False):
        raise AccessDenied(
            f"User: arn:aws:iam::{ACCOUNT}:user/moto is not authorized to perform: "
            "servicequotas:ListServiceQuotas"
        )
    if params.get("ServiceCode") != "bedrock":
        return json.dumps({"Quotas": []})
    quotas = listed(fake)
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults") or PAGE)
    page: dict[str, Any] = {"Quotas": quotas[start : start + size]}
    if start + size < len(quotas):
        page["NextToken"] = str(start + size)
    return json.dumps(page)
