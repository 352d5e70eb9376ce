"""Bedrock deployments of custom models: Provisioned Throughput (model units, commitment, billed
hourly until deleted) and on-demand custom model deployments (Nova; billed per token), plus
Converse chat and custom-model deletion. Mixed into `BedrockProvider`.
"""

from __future__ import annotations

from typing import Any

from finetune_hub.providers.base import DeploymentInfo, ProviderError

COMMITMENTS = {"no-commitment": None, "onemonth": "OneMonth", "sixmonths": "SixMonths"}
_ON_DEMAND_FAMILIES = (
    "amazon.nova-micro",
    "amazon.nova-lite",
    "amazon.nova-pro",
    "amazon.nova-canvas",
)


def commitment_key(options: dict[str, Any]) -> str:
    """'no-commitment', 'onemonth' or 'sixmonths' from options['commitment'] (any spelling)."""
    raw = (
        str(options.get("commitment") or "no-commitment").lower().replace("_", "").replace(" ", "")
    )
    key = {
        "none": "no-commitment",
        "nocommitment": "no-commitment",
        "1month": "onemonth",
        "6months": "sixmonths",
    }.get(raw, raw)
    if key not in COMMITMENTS:
        raise ProviderError(
            "bedrock",
            "deploy",
            f"unknown commitment {options.get('commitment')!r}; use no-commitment, OneMonth or SixMonths",
            retryable=False,
        )
    return key


class BedrockDeployMixin:
    """Deploy / get / undeploy / chat / delete_model / hourly_cost for `BedrockProvider`."""

    name: str
    options: dict[str, Any]

    def client(self, service: str) -> Any: ...  # provided by BedrockProvider

    def call(self, operation: str, fn: Any) -> Any: ...  # provided by BedrockProvider

    # -- prices -----------------------------------------------------------------------------------
    def base_model_of(self, model: str, options: dict[str, Any]) -> str | None:
        """The base model id of a custom model (from options['base_model'] or get_custom_model)."""
        if options.get("base_model"):
            return str(options["base_model"])
        bedrock = self.client("bedrock")
        try:
            info = self.call("hourly_cost", lambda: bedrock.get_custom_model(modelIdentifier=model))
        except ProviderError:
            return None
        arn = info.get("baseModelArn") or ""
        return arn.rsplit("/", 1)[-1] or None

    def pt_rate(self, model: str, options: dict[str, Any]) -> tuple[float | None, dict[str, Any]]:
        """($ per model unit per hour for the commitment, the price entry) from rules/bedrock.toml."""
        from finetune_hub.rules import resolve
        from finetune_hub.rules.catalog import default_catalog

        base = self.base_model_of(model, options)
        if not base:
            return None, {}
        prices = default_catalog().provider_data("bedrock").get("provisioned_throughput", {})
        try:
            model_id = resolve("bedrock", base)[0].model_id or base
        except Exception:  # noqa: BLE001 - an unknown base model just has no price
            model_id = base
        entry = prices.get(model_id) or prices.get(base) or {}
        return entry.get("hosting_usd_per_hour", {}).get(commitment_key(options)), entry

    def hourly_cost(self, model: str, options: dict[str, Any]) -> float | None:
        """USD per hour of a Provisioned Throughput: model units × the per-unit rate of the chosen
        commitment. None for on-demand deployments (billed per token) or unknown prices."""
        if options.get("mode") == "on-demand":
            return None
        rate, _ = self.pt_rate(model, options)
        return None if rate is None else rate * int(options.get("model_units", 1))

    def cost_note(self, model: str, options: dict[str, Any]) -> str:
        """A sentence with model units × rate, the commitment, and what deleting it means."""
        if options.get("mode") == "on-demand":
            return "an on-demand custom model deployment: billed per token, no hourly fee"
        units = int(options.get("model_units", 1))
        key = commitment_key(options)
        rate, entry = self.pt_rate(model, options)
        price = (
            f"{units} model unit(s) × ${rate:,.2f}/h = ${units * rate:,.2f} per hour"
            if rate is not None
            else f"{units} model unit(s) at a rate finetune_hub does not know"
        )
        where = f" [{entry.get('source')}]" if entry.get("source") else ""
        if key == "no-commitment":
            return (
                f"Provisioned Throughput, no commitment: {price}{where}, billed until you delete it"
            )
        term = {"onemonth": "one month", "sixmonths": "six months"}[key]
        return f"Provisioned Throughput, {term} commitment: {price}{where}; a committed PT cannot be deleted before its {term} term ends, so you pay for the whole term"

    # -- deploy -----------------------------------------------------------------------------------
    def deploy(self, model: str, name: str, options: dict[str, Any]) -> DeploymentInfo:
        """Provisioned Throughput (default) or, with options['mode'] == 'on-demand', an on-demand
        custom model deployment (Nova only). A committed PT also needs
        options['confirm_commitment'] = True: it cannot be deleted before its term ends."""
        bedrock = self.client("bedrock")
        token = _token(f"fh-{name}")
        if options.get("mode") == "on-demand":
            base = self.base_model_of(model, options) or ""
            if not base.startswith(_ON_DEMAND_FAMILIES):
                raise ProviderError(
                    self.name,
                    "deploy",
                    f"on-demand deployment is for custom Nova models; {base or model} needs Provisioned Throughput",
                    retryable=False,
                )
            args = {"modelDeploymentName": name, "modelArn": model, "clientRequestToken": token}
            arn = self.call("deploy", lambda: bedrock.create_custom_model_deployment(**args))[
                "customModelDeploymentArn"
            ]
            return DeploymentInfo(
                name=name,
                model=model,
                status="Creating",
                endpoint=arn,
                raw={"customModelDeploymentArn": arn},
            )
        key = commitment_key(options)
        if COMMITMENTS[key] and not options.get("confirm_commitment"):
            raise ProviderError(
                self.name,
                "deploy",
                f"{self.cost_note(model, options)}; pass confirm_commitment=True to buy it",
                retryable=False,
            )
        args = {
            "modelUnits": int(options.get("model_units", 1)),
            "provisionedModelName": name,
            "modelId": model,
            "clientRequestToken": token,
        }
        if COMMITMENTS[key]:
            args["commitmentDuration"] = COMMITMENTS[key]
        arn = self.call("deploy", lambda: bedrock.create_provisioned_model_throughput(**args))[
            "provisionedModelArn"
        ]
        return DeploymentInfo(
            name=name,
            model=model,
            status="Creating",
            endpoint=arn,
            hourly_cost_usd=self.hourly_cost(model, options),
            raw={"provisionedModelArn": arn},
        )

    def get_deployment(self, name: str, options: dict[str, Any]) -> DeploymentInfo | None:
        bedrock = self.client("bedrock")
        try:
            if options.get("mode") == "on-demand":
                d = self.call(
                    "get_deployment",
                    lambda: bedrock.get_custom_model_deployment(
                        customModelDeploymentIdentifier=name
                    ),
                )
                return DeploymentInfo(
                    name=name,
                    model=d.get("modelArn", ""),
                    status=d.get("status", ""),
                    endpoint=d.get("customModelDeploymentArn"),
                    raw=_plain(d),
                )
            pt = self.call(
                "get_deployment",
                lambda: bedrock.get_provisioned_model_throughput(provisionedModelId=name),
            )
        except ProviderError as exc:
            if exc.status_code == 404 or exc.code == "ResourceNotFoundException":
                return None
            raise
        return DeploymentInfo(
            name=name,
            model=pt.get("modelArn", ""),
            status=pt.get("status", ""),
            endpoint=pt.get("provisionedModelArn"),
            raw=_plain(pt),
        )

    def undeploy(self, name: str, options: dict[str, Any]) -> None:
        """Delete the PT (or on-demand deployment); one already gone is not an error. The custom
        model stays (delete it with `delete_model`)."""
        bedrock = self.client("bedrock")
        try:
            if options.get("mode") == "on-demand":
                self.call(
                    "undeploy",
                    lambda: bedrock.delete_custom_model_deployment(
                        customModelDeploymentIdentifier=name
                    ),
                )
            else:
                self.call(
                    "undeploy",
                    lambda: bedrock.delete_provisioned_model_throughput(provisionedModelId=name),
                )
        except ProviderError as exc:
            if exc.status_code != 404 and exc.code != "ResourceNotFoundException":
                raise

    # -- using the model --------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One Converse turn. `model` is a custom model ARN, a PT / deployment ARN, or (with
        deployment=True, as `Deployment.chat` passes) a deployment name, resolved to its ARN."""
        if kwargs.get("deployment") and not model.startswith("arn:"):
            info = self.get_deployment(model, kwargs)
            if info is None or not info.endpoint:
                raise ProviderError(
                    self.name,
                    "chat",
                    f"no deployment named {model}",
                    status_code=404,
                    retryable=False,
                )
            model = info.endpoint
        system, turns = to_converse(messages)
        args: dict[str, Any] = {"modelId": model, "messages": turns}
        if system:
            args["system"] = system
        config = {
            k2: kwargs[k1]
            for k1, k2 in (
                ("max_tokens", "maxTokens"),
                ("temperature", "temperature"),
                ("top_p", "topP"),
                ("stop", "stopSequences"),
            )
            if kwargs.get(k1) is not None
        }
        if config:
            args["inferenceConfig"] = config
        runtime = self.client("bedrock-runtime")
        reply = self.call("chat", lambda: runtime.converse(**args))
        content = reply.get("output", {}).get("message", {}).get("content", [])
        return "".join(part.get("text", "") for part in content)

    def delete_model(self, model: str) -> None:
        bedrock = self.client("bedrock")
        try:
            self.call("delete_model", lambda: bedrock.delete_custom_model(modelIdentifier=model))
        except ProviderError as exc:
            if exc.status_code != 404 and exc.code != "ResourceNotFoundException":
                raise


def to_converse(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """OpenAI-style messages -> (Converse `system`, Converse `messages`); consecutive turns of one
    role are merged (Converse wants user/assistant alternation)."""
    system: list[dict[str, str]] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        content = m.get("content")
        parts = (
            [{"text": content}]
            if isinstance(content, str)
            else [
                {"text": p.get("text", "")}
                for p in content or []
                if isinstance(p, dict) and "text" in p
            ]
        )
        if m.get("role") in ("system", "developer"):
            system.extend(parts)
            continue
        role = "assistant" if m.get("role") == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(parts)
        else:
            turns.append({"role": role, "content": parts})
    return system, turns


def _token(text: str) -> str:
    import re

    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9]", "-", text)).strip("-")[:256] or "x"


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in d.items()
        if k != "ResponseMetadata"
    }
