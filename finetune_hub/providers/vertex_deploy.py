"""Vertex AI endpoints: deploying a pipeline's model on dedicated machines (billed per node-hour
until undeployed), chat on an endpoint, and tearing models and endpoints down.

A tuned Gemini model needs none of this: Vertex serves it on its own endpoint, billed per token
(`model.chat()`); the deployer refuses it and says so. A model from the RLHF pipeline is
deployed with `model.deploy(confirm_cost=True, machine_type=..., accelerator_type=...)`: an
endpoint named after the deployment (display name and the label `finetune-hub-deployment`),
then `deployModel` with dedicated resources. Both long-running operations are awaited, so a
deployment that `get` finds is serving. Vertex endpoints have no state field: `get` reports
`DEPLOYED` for an endpoint serving the model and nothing for one that is not (yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finetune_hub.errors import ProviderError, UnsupportedOperation
from finetune_hub.providers.base import Deployer, DeploymentCost, DeploymentInfo, DeployOptions
from finetune_hub.status import DeploymentStatus, StateMap

DEPLOYMENT_LABEL = "finetune-hub-deployment"
TUNED_GEMINI_LABEL = "google-vertex-llm-tuning-base-model-id"
_D = DeploymentStatus
ENDPOINT_STATES = {"DEPLOYED": _D.READY, "UNDEPLOYED": _D.DELETED}


class VertexEndpointOptions(DeployOptions):
    """Dedicated resources for a Vertex endpoint (unknown keys are refused)."""

    machine_type: str = "g2-standard-12"
    accelerator_type: str | None = "NVIDIA_L4"
    accelerator_count: int = 1
    min_replica_count: int = 1
    max_replica_count: int = 1
    deploy_timeout: float = 3600.0


@dataclass
class ModelEndpoints:
    """Where a model is served, and whether it is a tuned Gemini model (generateContent)."""

    endpoints: list[str] = field(default_factory=list)
    deployed_ids: dict[str, str] = field(default_factory=dict)  # endpoint -> deployed model id
    gemini: bool = False


def model_endpoints(connection: Any, model: str, operation: str) -> ModelEndpoints:
    """The endpoints serving `model`, read with google-genai's `models.get`."""
    client = connection.genai
    found = connection.call(operation, lambda: client.models.get(model=model))
    out = ModelEndpoints(gemini=TUNED_GEMINI_LABEL in (found.labels or {}))
    for endpoint in found.endpoints or []:
        out.endpoints.append(endpoint.name)
        out.deployed_ids[endpoint.name] = endpoint.deployed_model_id or ""
    return out


def _contents(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    system = [str(m.get("content", "")) for m in messages if m.get("role") == "system"]
    contents = [
        {
            "role": "model" if m.get("role") == "assistant" else "user",
            "parts": [{"text": str(m.get("content", ""))}],
        }
        for m in messages
        if m.get("role") != "system"
    ]
    return contents, "\n".join(system) or None


def chat_on_endpoint(
    connection: Any, endpoint: str, messages: list[dict[str, Any]], *, gemini: bool, **kwargs: Any
) -> str:
    """One chat turn on `endpoint`: generateContent for a tuned Gemini model, else `predict`
    with `{"prompt": <conversation>}` (the shape Vertex's text models take), reading `content`."""
    contents, system = _contents(messages)
    if gemini:
        from google.genai import types

        names = {"max_tokens": "max_output_tokens", "stop": "stop_sequences"}
        allowed = {"temperature", "max_output_tokens", "top_p", "seed", "stop_sequences"}
        config = {names.get(k, k): v for k, v in kwargs.items() if names.get(k, k) in allowed}
        if system:
            config["system_instruction"] = system
        client = connection.genai
        reply = connection.call(
            "chat",
            lambda: client.models.generate_content(
                model=endpoint, contents=contents, config=types.GenerateContentConfig(**config)
            ),
        )
        return reply.text or ""
    prompt = "\n".join(
        ([system] if system else []) + [p["text"] for c in contents for p in c["parts"]]
    )
    answer = connection.gapic_call(
        "chat", "prediction", "predict", endpoint=endpoint, instances=[{"prompt": prompt}]
    )
    first = answer.predictions[0] if answer.predictions else ""
    if hasattr(first, "get"):
        return str(first.get("content", first))
    return str(first)


def _lro(connection: Any, operation: str, future: Any, timeout: float) -> Any:
    return connection.call(operation, lambda: future.result(timeout=timeout))


def _undeploy_all(connection: Any, endpoint: Any, timeout: float) -> None:
    for deployed in list(endpoint.deployed_models):
        future = connection.gapic_call(
            "undeploy",
            "endpoint",
            "undeploy_model",
            endpoint=endpoint.name,
            deployed_model_id=deployed.id,
        )
        _lro(connection, "undeploy", future, timeout)


def _delete_endpoint(connection: Any, name: str, timeout: float) -> None:
    future = connection.gapic_call("undeploy", "endpoint", "delete_endpoint", name=name)
    _lro(connection, "undeploy", future, timeout)


def delete_model_and_endpoints(connection: Any, model: str, timeout: float = 1800.0) -> None:
    """Undeploy `model` everywhere (deleting endpoints it leaves empty), then delete it; a model
    that is already gone is not an error."""
    try:
        info = model_endpoints(connection, model, "delete_model")
    except ProviderError as exc:
        if exc.status_code == 404:
            return
        raise
    for endpoint_name, deployed_id in info.deployed_ids.items():
        endpoint = connection.gapic_call(
            "delete_model", "endpoint", "get_endpoint", name=endpoint_name
        )
        future = connection.gapic_call(
            "delete_model",
            "endpoint",
            "undeploy_model",
            endpoint=endpoint_name,
            deployed_model_id=deployed_id,
        )
        _lro(connection, "delete_model", future, timeout)
        if len(endpoint.deployed_models) <= 1:
            _delete_endpoint(connection, endpoint_name, timeout)
    future = connection.gapic_call(
        "delete_model", "model", "delete_model", name=model.split("@")[0]
    )
    _lro(connection, "delete_model", future, timeout)


class VertexEndpointDeployer(Deployer):
    """A Vertex AI endpoint with the model on dedicated machines; chat goes through `predict`."""

    kind = "endpoint"
    display_name = "Vertex AI endpoint"
    state_map = StateMap("vertex endpoint", ENDPOINT_STATES)
    Options = VertexEndpointOptions

    @property
    def connection(self) -> Any:
        return self.backend.connection

    def cost(self, model: str, options: VertexEndpointOptions) -> DeploymentCost:
        """Node-hours × the machine's rate from rules/vertex.toml (`machine_usd_per_hour`).
        A tuned Gemini model is refused here, before anything is confirmed or recorded; a
        base model id (a cost estimate before the job) is not a model resource to look up."""
        from finetune_hub.rules.catalog import default_catalog

        if model.startswith("projects/"):
            self._refuse_gemini(model)
        values, prov = default_catalog().pricing(self.provider, None, "rlhf")
        price = values.get("machine_usd_per_hour", {}).get(options.machine_type)
        if price is None:
            return DeploymentCost(
                note=f"{options.min_replica_count} x {options.machine_type} node(s) bill by the "
                "hour until undeployed, at a rate finetune_hub does not know (see Vertex AI "
                "prediction pricing)"
            )
        cited = prov["machine_usd_per_hour"]
        flag = "" if cited.confirmed else f"; UNCONFIRMED: {cited.note}"
        return DeploymentCost(
            hourly_usd=price * options.min_replica_count,
            source=cited.source + flag,
            as_of=cited.as_of.isoformat(),
        )

    def _refuse_gemini(self, model: str) -> None:
        served = model_endpoints(self.connection, model, "deploy")
        if served.gemini:
            raise UnsupportedOperation(
                f"Google Vertex AI needs no deployment for {model}: a tuned Gemini model is "
                f"served on its own endpoint ({', '.join(served.endpoints) or 'none yet'}), "
                "billed per token; call model.chat(...)"
            )

    def _find(self, name: str) -> list[Any]:
        from finetune_hub.providers.vertex import label_value

        pager = self.connection.gapic_call(
            "get_deployment",
            "endpoint",
            "list_endpoints",
            request={
                "parent": self.connection.parent,
                "filter": f"labels.{DEPLOYMENT_LABEL}={label_value(name)}",
            },
        )
        return [e for e in pager if e.display_name == name]

    def get(self, name: str, options: VertexEndpointOptions) -> DeploymentInfo | None:
        for endpoint in self._find(name):
            if endpoint.deployed_models:
                return self._info(endpoint, name)
        return None

    def create(self, model: str, name: str, options: VertexEndpointOptions) -> DeploymentInfo:
        from google.cloud import aiplatform_v1

        from finetune_hub.providers.vertex import label_value

        self._refuse_gemini(model)
        found = self._find(name)
        if found:
            endpoint = found[0]
        else:
            future = self.connection.gapic_call(
                "deploy",
                "endpoint",
                "create_endpoint",
                parent=self.connection.parent,
                endpoint=aiplatform_v1.Endpoint(
                    display_name=name, labels={DEPLOYMENT_LABEL: label_value(name)}
                ),
            )
            endpoint = _lro(self.connection, "deploy", future, options.deploy_timeout)
        machine: dict[str, Any] = {"machine_type": options.machine_type}
        if options.accelerator_type:
            machine.update(
                accelerator_type=options.accelerator_type,
                accelerator_count=options.accelerator_count,
            )
        deployed = aiplatform_v1.DeployedModel(
            model=model.split("@")[0],
            display_name=name,
            dedicated_resources=aiplatform_v1.DedicatedResources(
                machine_spec=aiplatform_v1.MachineSpec(**machine),
                min_replica_count=options.min_replica_count,
                max_replica_count=options.max_replica_count,
            ),
        )
        future = self.connection.gapic_call(
            "deploy",
            "endpoint",
            "deploy_model",
            endpoint=endpoint.name,
            deployed_model=deployed,
            traffic_split={"0": 100},
        )
        _lro(self.connection, "deploy", future, options.deploy_timeout)
        endpoint = self.connection.gapic_call(
            "deploy", "endpoint", "get_endpoint", name=endpoint.name
        )
        return self._info(endpoint, name)

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return chat_on_endpoint(self.connection, info.endpoint or "", messages, gemini=False)

    def delete(self, name: str, options: VertexEndpointOptions) -> None:
        for endpoint in self._find(name):
            _undeploy_all(self.connection, endpoint, options.deploy_timeout)
            _delete_endpoint(self.connection, endpoint.name, options.deploy_timeout)

    def _info(self, endpoint: Any, name: str) -> DeploymentInfo:
        model = endpoint.deployed_models[0].model if endpoint.deployed_models else ""
        return self.info(
            name,
            model,
            "DEPLOYED" if endpoint.deployed_models else "UNDEPLOYED",
            endpoint=endpoint.name,
            raw={
                "name": endpoint.name,
                "deployed_models": [d.id for d in endpoint.deployed_models],
            },
        )
