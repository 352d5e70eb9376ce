"""Bedrock's serving modes for custom models, one `Deployer` each:

- `ProvisionedThroughputDeployer` (`"provisioned-throughput"`, the default): model units bought
  by the hour, optionally for a one- or six-month commitment that cannot be ended early;
- `OnDemandDeployer` (`"on-demand"`): a custom model deployment (custom Nova models), billed per
  token with no hourly fee.

Both answer through bedrock-runtime Converse on the deployment's ARN.

>>> d = model.deploy("provisioned-throughput", confirm_cost=True, model_units=1)  # doctest: +SKIP
>>> d.wait_ready(); d.chat([{"role": "user", "content": "hi"}]); d.delete()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import field_validator

from finetune_hub.errors import (
    CostConfirmationRequired,
    FinetuneHubError,
    ProviderError,
    UnsupportedOperation,
)
from finetune_hub.providers.base import Deployer, DeploymentCost, DeploymentInfo, DeployOptions
from finetune_hub.providers.bedrock_connection import is_not_found
from finetune_hub.providers.bedrock_wire import jsonable, request_token
from finetune_hub.status import DeploymentStatus, StateMap

_D = DeploymentStatus
#: ProvisionedModelStatus -> DeploymentStatus
PROVISIONED_STATES = {
    "Creating": _D.CREATING,
    "InService": _D.READY,
    "Updating": _D.UPDATING,
    "Failed": _D.FAILED,
}
#: CustomModelDeploymentStatus -> DeploymentStatus
ON_DEMAND_STATES = {"Creating": _D.CREATING, "Active": _D.READY, "Failed": _D.FAILED}

#: commitment key (as in rules/bedrock.toml's price tables) -> Bedrock's commitmentDuration
COMMITMENTS = {"no-commitment": None, "onemonth": "OneMonth", "sixmonths": "SixMonths"}
_TERMS = {"onemonth": "one month", "sixmonths": "six months"}
_SPELLINGS = {
    "none": "no-commitment",
    "nocommitment": "no-commitment",
    "1month": "onemonth",
    "6months": "sixmonths",
}
#: base-model families whose custom models Bedrock serves through on-demand deployments
ON_DEMAND_FAMILIES = (
    "amazon.nova-micro",
    "amazon.nova-lite",
    "amazon.nova-pro",
    "amazon.nova-canvas",
)


def commitment_key(value: str | None) -> str:
    """'no-commitment', 'onemonth' or 'sixmonths' from any spelling of a commitment.

    >>> commitment_key("OneMonth"), commitment_key(None), commitment_key("6 months")
    ('onemonth', 'no-commitment', 'sixmonths')
    """
    raw = str(value or "no-commitment").lower().replace("_", "").replace(" ", "")
    key = _SPELLINGS.get(raw, raw)
    if key not in COMMITMENTS:
        raise ValueError(f"unknown commitment {value!r}; use no-commitment, OneMonth or SixMonths")
    return key


class ProvisionedThroughputOptions(DeployOptions):
    """`model_units` (1), `commitment` (no-commitment, OneMonth, SixMonths; a commitment also
    needs `confirm_commitment=True`), `base_model` (to price a model Bedrock cannot tell the
    base of)."""

    model_units: int = 1
    commitment: str = "no-commitment"
    confirm_commitment: bool = False
    base_model: str | None = None

    @field_validator("commitment")
    @classmethod
    def _known_commitment(cls, value: str) -> str:
        return commitment_key(value)

    @field_validator("model_units")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("model_units must be 1 or more")
        return value


class OnDemandOptions(DeployOptions):
    """`base_model`: the custom model's base, where Bedrock cannot tell it (checked to be a
    family Bedrock serves on demand)."""

    base_model: str | None = None


class _BedrockDeployer(Deployer):
    """What both serving modes share: the base model of a custom model, Converse on the
    deployment's ARN, not-found as None on get and as done on delete."""

    arn_key: str

    def client(self) -> Any:
        return self.backend.connection.client("bedrock")

    def base_model_of(self, model: str, given: str | None, operation: str) -> str | None:
        """The base model id of a custom model: `given`, else from `get_custom_model`."""
        if given:
            return given
        bedrock = self.client()
        info = self.call(operation, lambda: bedrock.get_custom_model(modelIdentifier=model))
        return (info.get("baseModelArn") or "").rsplit("/", 1)[-1] or None

    def _get(self, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return jsonable(self.call("get_deployment", fetch))
        except ProviderError as exc:
            if is_not_found(exc):
                return None
            raise

    def _delete(self, remove: Callable[[], Any]) -> None:
        try:
            self.call("undeploy", remove)
        except ProviderError as exc:
            if not is_not_found(exc):
                raise

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One Converse turn on the deployment's ARN (looked up by name when not known)."""
        arn = info.endpoint or info.raw.get(self.arn_key)
        if not arn:
            found = self.get(info.name, self.Options())
            if found is None or not found.endpoint:
                raise ProviderError(
                    self.provider,
                    "chat",
                    f"no {self.display_name} named {info.name}",
                    status_code=404,
                    retryable=False,
                )
            arn = found.endpoint
        return self.backend.converse(arn, messages, **kwargs)


class ProvisionedThroughputDeployer(_BedrockDeployer):
    """Provisioned Throughput: model units billed every hour until deleted, used or not; a
    committed one cannot be deleted before its term ends.

    >>> model.deployment_cost("provisioned-throughput", model_units=2).note  # doctest: +SKIP
    'Provisioned Throughput, no commitment: 2 model unit(s) × $7.10/h = $14.20 per hour ...'
    """

    kind = "provisioned-throughput"
    display_name = "Bedrock Provisioned Throughput"
    state_map = StateMap("bedrock provisioned throughput", PROVISIONED_STATES)
    Options = ProvisionedThroughputOptions
    arn_key = "provisionedModelArn"

    def rate(
        self, model: str, options: ProvisionedThroughputOptions
    ) -> tuple[float | None, dict[str, Any]]:
        """($ per model unit per hour for the commitment, the price entry) from the rules'
        `provisioned_throughput` table; (None, {}) where the base model or its price is unknown."""
        from finetune_hub.rules import resolve
        from finetune_hub.rules.catalog import default_catalog

        try:
            base = self.base_model_of(model, options.base_model, "deployment_cost")
        except ProviderError:
            return None, {}  # the price stays unknown; the cost sentence says so
        if not base:
            return None, {}
        prices = default_catalog().provider_data(self.provider).get("provisioned_throughput", {})
        try:
            model_id = resolve(self.provider, base)[0].model_id or base
        except FinetuneHubError:
            model_id = base
        entry = prices.get(model_id) or prices.get(base) or {}
        return entry.get("hosting_usd_per_hour", {}).get(options.commitment), entry

    def cost(self, model: str, options: ProvisionedThroughputOptions) -> DeploymentCost:
        """Model units × the per-unit rate of the commitment, with the commitment's terms."""
        units = options.model_units
        rate, entry = self.rate(model, options)
        if rate is None:
            price = f"{units} model unit(s) at a rate finetune_hub does not know"
        else:
            price = f"{units} model unit(s) × ${rate:,.2f}/h = ${units * rate:,.2f} per hour"
        where = f" [{entry['source']}]" if entry.get("source") else ""
        if options.commitment == "no-commitment":
            note = (
                f"Provisioned Throughput, no commitment: {price}{where}, billed until you delete it"
            )
        else:
            term = _TERMS[options.commitment]
            note = (
                f"Provisioned Throughput, {term} commitment: {price}{where}; a committed PT "
                f"cannot be deleted before its {term} term ends, so you pay for the whole term"
            )
        return DeploymentCost(
            hourly_usd=None if rate is None else rate * units,
            note=note,
            source=entry.get("source"),
            as_of=str(entry["as_of"]) if entry.get("as_of") else None,
        )

    def create(
        self, model: str, name: str, options: ProvisionedThroughputOptions
    ) -> DeploymentInfo:
        """Buy the Provisioned Throughput (`clientRequestToken` from the request, so a retried
        create makes one). A commitment also needs `confirm_commitment=True`."""
        duration = COMMITMENTS[options.commitment]
        if duration and not options.confirm_commitment:
            note = self.cost(model, options).note
            raise CostConfirmationRequired(f"{note}; pass confirm_commitment=True to buy it")
        args: dict[str, Any] = {
            "modelUnits": options.model_units,
            "provisionedModelName": name,
            "modelId": model,
            "clientRequestToken": request_token(
                name, model, str(options.model_units), options.commitment
            ),
        }
        if duration:
            args["commitmentDuration"] = duration
        bedrock = self.client()
        created = self.call("deploy", lambda: bedrock.create_provisioned_model_throughput(**args))
        arn = created[self.arn_key]
        return self.info(name, model, "Creating", endpoint=arn, raw={self.arn_key: arn})

    def get(self, name: str, options: ProvisionedThroughputOptions) -> DeploymentInfo | None:
        bedrock = self.client()
        pt = self._get(lambda: bedrock.get_provisioned_model_throughput(provisionedModelId=name))
        if pt is None:
            return None
        return self.info(
            name, pt.get("modelArn", ""), pt.get("status"), endpoint=pt.get(self.arn_key), raw=pt
        )

    def delete(self, name: str, options: ProvisionedThroughputOptions) -> None:
        """Delete the PT (the custom model stays: `model.delete()`); already gone is fine."""
        bedrock = self.client()
        self._delete(lambda: bedrock.delete_provisioned_model_throughput(provisionedModelId=name))


class OnDemandDeployer(_BedrockDeployer):
    """An on-demand custom model deployment (custom Nova models): billed per token, no hourly
    fee.

    >>> model.deploy("on-demand", confirm_cost=True).chat([...])  # doctest: +SKIP
    """

    kind = "on-demand"
    display_name = "Bedrock on-demand custom model deployment"
    state_map = StateMap("bedrock on-demand deployment", ON_DEMAND_STATES)
    Options = OnDemandOptions
    arn_key = "customModelDeploymentArn"

    def cost(self, model: str, options: OnDemandOptions) -> DeploymentCost:
        return DeploymentCost(
            hourly_usd=0.0,
            note="an on-demand custom model deployment: billed per token, no hourly fee",
        )

    def create(self, model: str, name: str, options: OnDemandOptions) -> DeploymentInfo:
        """Create the deployment (`clientRequestToken` from the request); refused for a model
        whose base family Bedrock does not serve on demand."""
        base = self.base_model_of(model, options.base_model, "deploy") or ""
        if not base.startswith(ON_DEMAND_FAMILIES):
            raise UnsupportedOperation(
                f"on-demand deployment is for custom Nova models; {base or model} needs "
                "Provisioned Throughput: deploy it with kind 'provisioned-throughput'"
            )
        args = {
            "modelDeploymentName": name,
            "modelArn": model,
            "clientRequestToken": request_token(name, model),
        }
        bedrock = self.client()
        created = self.call("deploy", lambda: bedrock.create_custom_model_deployment(**args))
        arn = created[self.arn_key]
        return self.info(name, model, "Creating", endpoint=arn, raw={self.arn_key: arn})

    def get(self, name: str, options: OnDemandOptions) -> DeploymentInfo | None:
        bedrock = self.client()
        found = self._get(
            lambda: bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=name)
        )
        if found is None:
            return None
        return self.info(
            name,
            found.get("modelArn", ""),
            found.get("status"),
            endpoint=found.get(self.arn_key),
            raw=found,
        )

    def delete(self, name: str, options: OnDemandOptions) -> None:
        """Delete the deployment (the custom model stays); already gone is fine."""
        bedrock = self.client()
        self._delete(
            lambda: bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=name)
        )
