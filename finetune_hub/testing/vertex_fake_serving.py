"""Vertex AI serving in the fake: models, endpoints, long-running operations, generateContent
and predict.

Long-running calls (`models:upload`, `endpoints` create, `:deployModel`, `:undeployModel`,
deletes) take effect at once and answer an `Operation` with `done: false`; the operation is
`done` (with its `response`) from its first GET on, as google-api-core polls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .vertex_fake_wire import ApiError, Ctx, rfc3339

__all__ = ["ROUTES", "Serving", "default_reply"]


def default_reply(model: str, contents: list[dict[str, Any]]) -> str:
    """The default answer: "Echo: <last user text>", or "Tuned echo: ..." from an endpoint.

    >>> default_reply("publishers/google/models/gemini-2.5-flash",
    ...               [{"role": "user", "parts": [{"text": "hi"}]}])
    'Echo: hi'
    """
    text = ""
    for turn in reversed(contents):
        if turn.get("role", "user") == "user":
            text = "".join(p.get("text", "") for p in turn.get("parts", []))
            break
    return ("Tuned echo: " if "/endpoints/" in model else "Echo: ") + text


@dataclass
class Serving:
    """Models, endpoints and operations held by a `FakeVertex` (all names use the project
    number)."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    fake: Any = None

    def now(self) -> str:
        return rfc3339(self.fake.clock.now())

    def add_model(self, parent: str, body: dict[str, Any], model_id: str | None = None) -> str:
        name = f"{parent}/models/{model_id or self.fake.new_id()}"
        now = self.now()
        self.models[name] = {
            **body,
            "name": name,
            "versionId": "1",
            "versionAliases": ["default"],
            "createTime": now,
            "updateTime": now,
            "versionCreateTime": now,
            "versionUpdateTime": now,
            "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"],
        }
        return name

    def add_endpoint(
        self, parent: str, body: dict[str, Any], endpoint_id: str | None = None
    ) -> str:
        name = f"{parent}/endpoints/{endpoint_id or self.fake.new_id()}"
        now = self.now()
        self.endpoints[name] = {
            **body,
            "name": name,
            "deployedModels": [],
            "trafficSplit": {},
            "etag": "AMEw9yN=",
            "createTime": now,
            "updateTime": now,
        }
        return name

    def deploy(self, endpoint: str, deployed: dict[str, Any], split: dict[str, int]) -> dict:
        ep = self.endpoints[endpoint]
        model = self.models.get(deployed.get("model", "").split("@")[0])
        entry = {
            **deployed,
            "id": str(self.fake.new_id()),
            "createTime": self.now(),
            "modelVersionId": "1",
        }
        if model is not None:
            entry.setdefault("displayName", model.get("displayName", ""))
            model.setdefault("deployedModels", []).append(
                {"endpoint": endpoint, "deployedModelId": entry["id"]}
            )
        ep["deployedModels"].append(entry)
        split = {entry["id"] if k == "0" else k: int(v) for k, v in (split or {}).items()}
        ep["trafficSplit"] = split or {entry["id"]: 100}
        ep["updateTime"] = self.now()
        return entry

    def add_tuned(self, parent: str, display_name: str, base_model: str) -> tuple[str, str]:
        """Register the model and the managed endpoint a successful tuning job produces.

        The model carries the label google-genai reads as `tuned_model_info.base_model`
        (`google-vertex-llm-tuning-base-model-id`; label values cannot hold dots, so the fake
        writes them as underscores).
        """
        label = base_model.replace(".", "_").lower()
        model = self.add_model(
            parent,
            {
                "displayName": display_name,
                "labels": {"google-vertex-llm-tuning-base-model-id": label},
            },
        )
        endpoint = self.add_endpoint(parent, {"displayName": display_name})
        self.deploy(endpoint, {"model": f"{model}@1", "displayName": display_name}, {})
        return model, endpoint

    def operation(self, resource: str, meta: str, response: dict[str, Any] | None, version: str):
        """Record a long-running operation on `resource`; returns its first (not done) view."""
        name = f"{resource}/operations/{self.fake.new_id()}"
        now = self.now()
        prefix = f"type.googleapis.com/google.cloud.aiplatform.{version}"
        op = {
            "name": name,
            "metadata": {
                "@type": f"{prefix}.{meta}",
                "genericMetadata": {"createTime": now, "updateTime": now},
            },
        }
        done = {**op, "done": True}
        if response is not None:
            kind, body = next(iter(response.items()))
            at = f"type.googleapis.com/{kind}" if "." in kind else f"{prefix}.{kind}"
            done["response"] = {"@type": at, **body}
        self.operations[name] = done
        return op


def _list_filter(items: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    terms = []
    for raw in text.split(" AND ") if text.strip() else []:
        key, _, value = raw.strip().partition("=")
        terms.append((key.strip(), value.strip().strip('"')))
    out = []
    for item in items:
        keep = True
        for key, value in terms:
            if key.startswith("labels."):
                keep &= (item.get("labels") or {}).get(key[7:]) == value
            elif key in ("display_name", "displayName"):
                keep &= item.get("displayName") == value
            else:
                raise ApiError(400, f"Unsupported filter field {key!r}.")
        if keep:
            out.append(item)
    return out


# --- routes --------------------------------------------------------------------------------------


def upload_model(ctx: Ctx, project: str, location: str, version: str) -> Any:
    body = ctx.body()
    model = body.get("model") or {}
    if not model.get("displayName"):
        raise ApiError(400, "model.display_name is required.")
    parent = ctx.fake.parent(project, location)
    name = ctx.fake.serving.add_model(parent, model, body.get("modelId"))
    response = {"UploadModelResponse": {"model": name, "modelVersionId": "1"}}
    return ctx.ok(
        ctx.fake.serving.operation(name, "UploadModelOperationMetadata", response, version)
    )


def get_model(ctx: Ctx, project: str, location: str, version: str, model_id: str) -> Any:
    name = f"{ctx.fake.parent(project, location)}/models/{model_id.split('@')[0]}"
    model = ctx.fake.serving.models.get(name)
    if model is None:
        raise ApiError(404, f'The Model "{name}" does not exist.')
    return ctx.ok(model)


def list_models(ctx: Ctx, project: str, location: str, version: str) -> Any:
    parent = ctx.fake.parent(project, location) + "/"
    items = [m for n, m in ctx.fake.serving.models.items() if n.startswith(parent)]
    items = _list_filter(items, ctx.request.query.get("filter", ""))
    return ctx.ok({"models": items} if items else {})


def delete_model(ctx: Ctx, project: str, location: str, version: str, model_id: str) -> Any:
    serving = ctx.fake.serving
    name = f"{ctx.fake.parent(project, location)}/models/{model_id.split('@')[0]}"
    model = serving.models.get(name)
    if model is None:
        raise ApiError(404, f'The Model "{name}" does not exist.')
    if model.get("deployedModels"):
        raise ApiError(
            400,
            f"Model {name} is deployed to endpoint(s); undeploy it before deleting.",
            status="FAILED_PRECONDITION",
        )
    del serving.models[name]
    response = {"google.protobuf.Empty": {}}
    return ctx.ok(serving.operation(name, "DeleteOperationMetadata", response, version))


def create_endpoint(ctx: Ctx, project: str, location: str, version: str) -> Any:
    body = ctx.body()
    if not body.get("displayName"):
        raise ApiError(400, "endpoint.display_name is required.")
    parent = ctx.fake.parent(project, location)
    endpoint_id = ctx.request.query.get("endpointId")
    if endpoint_id and f"{parent}/endpoints/{endpoint_id}" in ctx.fake.serving.endpoints:
        raise ApiError(409, f"Endpoint {endpoint_id} already exists.")
    name = ctx.fake.serving.add_endpoint(parent, body, endpoint_id)
    endpoint = ctx.fake.serving.endpoints[name]
    return ctx.ok(
        ctx.fake.serving.operation(
            name, "CreateEndpointOperationMetadata", {"Endpoint": endpoint}, version
        )
    )


def _endpoint(ctx: Ctx, project: str, location: str, endpoint_id: str) -> dict[str, Any]:
    name = f"{ctx.fake.parent(project, location)}/endpoints/{endpoint_id}"
    endpoint = ctx.fake.serving.endpoints.get(name)
    if endpoint is None:
        raise ApiError(404, f'The Endpoint "{name}" does not exist.')
    return endpoint


def get_endpoint(ctx: Ctx, project: str, location: str, version: str, endpoint_id: str) -> Any:
    return ctx.ok(_endpoint(ctx, project, location, endpoint_id))


def list_endpoints(ctx: Ctx, project: str, location: str, version: str) -> Any:
    parent = ctx.fake.parent(project, location) + "/"
    items = [e for n, e in ctx.fake.serving.endpoints.items() if n.startswith(parent)]
    items = _list_filter(items, ctx.request.query.get("filter", ""))
    return ctx.ok({"endpoints": items} if items else {})


def deploy_model(ctx: Ctx, project: str, location: str, version: str, endpoint_id: str) -> Any:
    serving = ctx.fake.serving
    endpoint = _endpoint(ctx, project, location, endpoint_id)
    body = ctx.body()
    deployed = dict(body.get("deployedModel") or {})
    model_name = ctx.fake.normalise(deployed.get("model", "")).split("@")[0]
    if model_name not in serving.models:
        raise ApiError(404, f'The Model "{model_name}" does not exist.')
    resources = deployed.get("dedicatedResources")
    if resources is not None:
        if not (resources.get("machineSpec") or {}).get("machineType"):
            raise ApiError(400, "dedicated_resources.machine_spec.machine_type is required.")
        if int(resources.get("minReplicaCount", 0)) < 1:
            raise ApiError(400, "dedicated_resources.min_replica_count must be at least 1.")
    deployed["model"] = model_name
    entry = serving.deploy(endpoint["name"], deployed, body.get("trafficSplit") or {})
    response = {"DeployModelResponse": {"deployedModel": entry}}
    return ctx.ok(
        serving.operation(endpoint["name"], "DeployModelOperationMetadata", response, version)
    )


def undeploy_model(ctx: Ctx, project: str, location: str, version: str, endpoint_id: str) -> Any:
    serving = ctx.fake.serving
    endpoint = _endpoint(ctx, project, location, endpoint_id)
    deployed_id = str(ctx.body().get("deployedModelId", ""))
    entry = next((d for d in endpoint["deployedModels"] if d["id"] == deployed_id), None)
    if entry is None:
        raise ApiError(404, f"DeployedModel {deployed_id} does not exist in {endpoint['name']}.")
    endpoint["deployedModels"].remove(entry)
    endpoint["trafficSplit"].pop(deployed_id, None)
    model = serving.models.get(entry["model"].split("@")[0])
    if model is not None:
        model["deployedModels"] = [
            d for d in model.get("deployedModels", []) if d["deployedModelId"] != deployed_id
        ]
    response = {"UndeployModelResponse": {}}
    return ctx.ok(
        serving.operation(endpoint["name"], "UndeployModelOperationMetadata", response, version)
    )


def delete_endpoint(ctx: Ctx, project: str, location: str, version: str, endpoint_id: str) -> Any:
    serving = ctx.fake.serving
    endpoint = _endpoint(ctx, project, location, endpoint_id)
    if endpoint["deployedModels"]:
        raise ApiError(
            400,
            f"Endpoint {endpoint['name']} has deployed models; undeploy them before deleting it.",
            status="FAILED_PRECONDITION",
        )
    del serving.endpoints[endpoint["name"]]
    response = {"google.protobuf.Empty": {}}
    return ctx.ok(serving.operation(endpoint["name"], "DeleteOperationMetadata", response, version))


def get_operation(ctx: Ctx, version: str, name: str) -> Any:
    op = ctx.fake.serving.operations.get(ctx.fake.normalise(name))
    if op is None:
        raise ApiError(404, f"Operation {name} does not exist.")
    return ctx.ok(op)


def _usage(contents: list[dict[str, Any]], reply: str) -> dict[str, Any]:
    prompt = sum(len(p.get("text", "")) for c in contents for p in c.get("parts", []))
    prompt_tokens, reply_tokens = max(1, prompt // 4), max(1, len(reply) // 4)
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": reply_tokens,
        "totalTokenCount": prompt_tokens + reply_tokens,
    }


def _answer(ctx: Ctx, target: str, model_version: str) -> Any:
    body = ctx.body()
    contents = body.get("contents") or []
    if not contents:
        raise ApiError(400, "contents is required and must not be empty.")
    reply = ctx.fake.reply(target, contents)
    ctx.fake.chats.append({"model": target, "request": body, "reply": reply})
    return ctx.ok(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": reply}]},
                    "finishReason": "STOP",
                    "avgLogprobs": -0.25,
                }
            ],
            "usageMetadata": _usage(contents, reply),
            "modelVersion": model_version,
            "createTime": ctx.fake.serving.now(),
            "responseId": f"fake-{ctx.fake.new_id()}",
        }
    )


def generate_on_endpoint(
    ctx: Ctx, project: str, location: str, version: str, endpoint_id: str
) -> Any:
    endpoint = _endpoint(ctx, project, location, endpoint_id)
    if not endpoint["deployedModels"]:
        raise ApiError(
            400, f"Endpoint {endpoint['name']} has no deployed model.", status="FAILED_PRECONDITION"
        )
    return _answer(ctx, endpoint["name"], endpoint["deployedModels"][0]["model"])


def generate_on_publisher(
    ctx: Ctx, project: str, location: str, version: str, publisher: str, model: str
) -> Any:
    known = model in ctx.fake.models or model in ctx.fake.serving_models
    if not known or model in ctx.fake.retired_models:
        raise ApiError(
            404,
            f"Publisher Model `projects/{project}/locations/{location}/publishers/{publisher}"
            f"/models/{model}` was not found or your project does not have access to it.",
        )
    return _answer(ctx, f"publishers/{publisher}/models/{model}", model)


def predict(ctx: Ctx, project: str, location: str, version: str, endpoint_id: str) -> Any:
    endpoint = _endpoint(ctx, project, location, endpoint_id)
    if not endpoint["deployedModels"]:
        raise ApiError(
            400, f"Endpoint {endpoint['name']} has no deployed model.", status="FAILED_PRECONDITION"
        )
    instances = ctx.body().get("instances") or []
    predictions = []
    for instance in instances:
        text = instance
        if isinstance(instance, dict):
            text = next(
                (
                    instance[k]
                    for k in ("prompt", "inputs", "content", "input_text")
                    if k in instance
                ),
                "",
            )
        contents = [{"role": "user", "parts": [{"text": str(text)}]}]
        predictions.append({"content": ctx.fake.reply(endpoint["name"], contents)})
    deployed = endpoint["deployedModels"][0]
    return ctx.ok(
        {
            "predictions": predictions,
            "deployedModelId": deployed["id"],
            "model": deployed["model"].split("@")[0],
            "modelDisplayName": deployed.get("displayName", ""),
            "modelVersionId": "1",
        }
    )


_P = r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_E = rf"{_P}/endpoints/(?P<endpoint_id>[^/:]+)"
_M = rf"{_P}/models/(?P<model_id>[^/:]+)"
ROUTES = [
    ("POST", rf"{_P}/models:upload", "models.upload", upload_model),
    ("GET", rf"{_P}/models", "models.list", list_models),
    ("GET", _M, "models.get", get_model),
    ("DELETE", _M, "models.delete", delete_model),
    ("POST", rf"{_P}/endpoints", "endpoints.create", create_endpoint),
    ("GET", rf"{_P}/endpoints", "endpoints.list", list_endpoints),
    ("GET", _E, "endpoints.get", get_endpoint),
    ("DELETE", _E, "endpoints.delete", delete_endpoint),
    ("POST", rf"{_E}:deployModel", "endpoints.deployModel", deploy_model),
    ("POST", rf"{_E}:undeployModel", "endpoints.undeployModel", undeploy_model),
    ("POST", rf"{_E}:generateContent", "endpoints.generateContent", generate_on_endpoint),
    ("POST", rf"{_E}:predict", "endpoints.predict", predict),
    (
        "POST",
        rf"{_P}/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+):generateContent",
        "publishers.generateContent",
        generate_on_publisher,
    ),
    (
        "GET",
        r"/(?P<version>v1|v1beta1|ui)/(?P<name>projects/[^:]+/operations/[^/:]+)",
        "operations.get",
        get_operation,
    ),
]
