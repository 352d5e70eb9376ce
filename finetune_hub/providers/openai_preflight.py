"""What OpenAI and Azure OpenAI can answer before any upload (`OpenAIBackend.preflight`): the key
is valid and the base model is there for it (`models.retrieve`), and, where the answer says so
(Azure's `capabilities`), that the model takes fine-tuning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue, Severity

if TYPE_CHECKING:
    from finetune_hub.providers.base import PreparedJob
    from finetune_hub.providers.openai import OpenAIBackend


def preflight(backend: OpenAIBackend, job: PreparedJob) -> list[Issue]:
    """One cheap call (`GET /models/{model}`): a refused key, a model the key cannot see, a model
    that takes no fine-tuning; each an error whose message says the fix."""
    name = backend.display_name
    try:
        model = backend.call(
            "preflight:models.retrieve", lambda: backend.client.models.retrieve(job.model_id)
        )
    except ProviderError as exc:
        if exc.status_code == 401:
            return [
                _issue(
                    "api_key_invalid",
                    "options.api_key",
                    f"{name} refused the API key (401: {exc.message}). Fix: set a valid key "
                    "(the SDK's environment variable, or options['api_key'])",
                )
            ]
        if exc.status_code == 403:
            return [
                _issue(
                    "permission_denied",
                    "options",
                    f"{name} refused this key access to {job.model_id} (403: {exc.message}). "
                    "Fix: use a key of a project or organization allowed to fine-tune it",
                )
            ]
        if exc.status_code == 404:
            return [
                _issue(
                    "model_not_available",
                    "base_model",
                    f"{name} has no model {job.model_id} for this key (404: {exc.message}). "
                    f"Fix: pick a model `finetune-hub rules --provider {backend.name}` lists, or "
                    "check that this key's project may use it",
                )
            ]
        return [
            _issue(
                "preflight_not_checked",
                "base_model",
                f"could not ask {name} about {job.model_id} ({exc.message})",
                warn=True,
            )
        ]
    capabilities: Any = getattr(model, "capabilities", None) or (model.model_extra or {}).get(
        "capabilities"
    )
    if isinstance(capabilities, dict) and capabilities.get("fine_tune") is False:
        return [
            _issue(
                "model_not_tunable",
                "base_model",
                f"{name} says {job.model_id} takes no fine-tuning here (capabilities.fine_tune "
                "is false). Fix: pick a model the resource can fine-tune",
            )
        ]
    return []


def _issue(code: str, field: str, message: str, *, warn: bool = False) -> Issue:
    severity = Severity.WARNING if warn else Severity.ERROR
    return Issue(code=code, field=field, message=message, severity=severity)
