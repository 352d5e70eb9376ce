"""Chat on a serverless endpoint of the Azure AI Foundry fake (host `{name}.{location}.models.ai.azure.com`).

The endpoint's `scoring_uri` (`properties.inferenceEndpoint.uri`) serves the Azure AI model
inference API and its OpenAI-compatible twin:

- `POST {uri}/v1/chat/completions` and `POST {uri}/chat/completions` (OpenAI chat shape);
- `GET {uri}/info` (model name, type, provider).

The key from `listKeys` goes in `Authorization` (bare, as Azure's sample sends it, or with
`Bearer `) or in `api-key`. The answer's text comes from the fake's `reply(model_id, messages)`,
so a test can make a fine-tuned model answer differently from its base model.
"""

from __future__ import annotations

import time
from typing import Any

from .azure_foundry_fake_resources import Endpoint, model_ref, parse_workspace_model
from .azure_foundry_fake_wire import AzureError, Ctx
from .fake_http import FakeResponse

__all__ = ["default_reply", "handle_inference"]


def default_reply(model_id: str, messages: list[dict[str, Any]]) -> str:
    """Echo the last user message, tagged with the model and whether it is fine-tuned.

    >>> default_reply("azureml://registries/azureml/models/Phi-4", [{"role": "user", "content": "hi"}])
    '[base Phi-4] hi'
    """
    ref = model_ref(model_id)
    tuned = ref is None
    name = ref.name if ref else (parse_workspace_model(model_id) or (model_id, ""))[0]
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content", "")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return f"[{'fine-tuned' if tuned else 'base'} {name}] {content}"


def _endpoint(ctx: Ctx) -> Endpoint:
    now = ctx.fake.clock.now()
    for endpoint in ctx.fake.endpoints.values():
        if endpoint.host() == ctx.host:
            if endpoint.gone(now) or endpoint.deleted is not None:
                break
            if endpoint.state(now)[0] != "Succeeded":
                raise AzureError(
                    503, "EndpointNotReady", f"Endpoint {endpoint.name} is still being created."
                )
            return endpoint
    raise AzureError(404, "EndpointNotFound", f"No serverless endpoint serves {ctx.host}.")


def _check_key(ctx: Ctx, endpoint: Endpoint) -> None:
    headers = ctx.request.headers
    given = (
        headers.get("api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
    )
    if given not in endpoint.keys:
        raise AzureError(
            401,
            "Unauthorized",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        )


def _tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def handle_inference(ctx: Ctx) -> FakeResponse:
    """Answer one request to a serverless endpoint's inference host."""
    fake, request = ctx.fake, ctx.request
    endpoint = _endpoint(ctx)
    _check_key(ctx, endpoint)
    model_name = _model_name(endpoint.model_id)
    if request.method == "GET" and request.path.rstrip("/") == "/info":
        provider = "Custom" if model_ref(endpoint.model_id) is None else "Microsoft"
        return ctx.ok(
            {
                "model_name": model_name,
                "model_type": "chat-completion",
                "model_provider_name": provider,
            }
        )
    if request.method != "POST" or request.path.rstrip("/") not in (
        "/v1/chat/completions",
        "/chat/completions",
    ):
        raise AzureError(
            404, "NotFound", f"No route {request.method} {request.path} on a serverless endpoint."
        )
    body = ctx.body()
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AzureError(400, "Bad Request", "'messages' must be a non-empty list.")
    text = fake.reply(endpoint.model_id, messages)
    prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
    completion_tokens = _tokens(text)
    endpoint_usage = fake.usage.setdefault(
        endpoint.name, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
    )
    endpoint_usage["requests"] += 1
    endpoint_usage["prompt_tokens"] += prompt_tokens
    endpoint_usage["completion_tokens"] += completion_tokens
    return ctx.ok(
        {
            "id": f"chatcmpl-{fake.next_id()}",
            "object": "chat.completion",
            "created": int(fake.clock.now() or time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def _model_name(model_id: str) -> str:
    ref = model_ref(model_id)
    if ref is not None:
        return ref.name
    parsed = parse_workspace_model(model_id)
    return parsed[0] if parsed else model_id
