"""The local serving modes, one deployer each: `merge` (a merged model folder on disk) and `serve`
(an OpenAI-compatible endpoint in this process). Neither bills: both run on this machine.

>>> d = model.deploy("merge", confirm_cost=True, path="merged")  # doctest: +SKIP
>>> with model.deploy("serve", confirm_cost=True, delete_on_exit=True) as d:  # doctest: +SKIP
...     openai.OpenAI(base_url=d.info.endpoint, api_key="local")
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import Field

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import Deployer, DeploymentCost, DeploymentInfo, DeployOptions
from finetune_hub.providers.local.backend import max_new_tokens, require_training_stack
from finetune_hub.status import DeploymentStatus, StateMap

_D = DeploymentStatus
#: what a local deployment costs: nothing bills it
LOCAL_COST = DeploymentCost(
    hourly_usd=0.0,
    note="it runs on this machine: $0 per hour, nothing bills it",
    source="local machine",
)


class LocalDeployer(Deployer):
    """What both local serving modes share: no bill, the backend's device and run folders."""

    def cost(self, model: str, options: DeployOptions) -> DeploymentCost:
        return LOCAL_COST

    @property
    def device(self) -> str | None:
        return self.backend.options.device


# -- merge ----------------------------------------------------------------------------------------
class MergeOptions(DeployOptions):
    """Options of `deploy("merge")`.

    >>> MergeOptions(path="merged").path
    'merged'
    """

    path: str | None = Field(
        default=None, description="the merged folder (default <output_dir>/merged/<name>)"
    )


class MergeDeployer(LocalDeployer):
    """Base + adapter merged (`merge_and_unload`) into a full model folder, for vLLM, llama.cpp or
    `transformers serve`; chat loads that folder. Deleting removes the folder.

    >>> model.deploy("merge", confirm_cost=True).info.endpoint  # doctest: +SKIP
    '/home/me/.finetune_hub/local-runs/merged/fh-1a2b3c4d5e6f'
    """

    kind = "merge"
    display_name = "merged model folder"
    state_map = StateMap("local merge", {"written": _D.READY, "partial": _D.FAILED})
    Options = MergeOptions

    def folder(self, name: str, options: MergeOptions) -> Path:
        """Where the deployment `name` is written."""
        if options.path:
            return Path(options.path).expanduser()
        return self.backend.output_dir / "merged" / name

    def create(self, model: str, name: str, options: MergeOptions) -> DeploymentInfo:
        require_training_stack()
        from finetune_hub.providers.local.serve import merge

        target = self.folder(name, options)
        self.call("deploy", lambda: merge(model, target))
        return self.info(name, model, "written", endpoint=str(target))

    def get(self, name: str, options: MergeOptions) -> DeploymentInfo | None:
        from finetune_hub.providers.local.serve import merged_from

        target = self.folder(name, options)
        if not target.is_dir():
            return None
        state = "written" if (target / "config.json").is_file() else "partial"
        return self.info(name, merged_from(target) or "", state, endpoint=str(target))

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return self.backend.chat(str(info.endpoint), messages, **kwargs)

    def delete(self, name: str, options: MergeOptions) -> None:
        from finetune_hub.providers.local.serve import MERGED_MARKER

        target = self.folder(name, options)
        if not target.exists():
            return
        if not (target / MERGED_MARKER).is_file():
            raise ProviderError(
                self.provider,
                "undeploy",
                f"{target} was not written by a merge deployment; finetune_hub deletes only "
                "what it wrote",
                retryable=False,
            )
        self.call("undeploy", lambda: shutil.rmtree(target))


# -- serve ----------------------------------------------------------------------------------------
class ServeOptions(DeployOptions):
    """Options of `deploy("serve")`.

    >>> ServeOptions(port=8000).host
    '127.0.0.1'
    """

    host: str = Field(default="127.0.0.1", description="the address to bind")
    port: int = Field(default=0, ge=0, le=65535, description="0: any free port")


class ServeDeployer(LocalDeployer):
    """A small OpenAI-compatible endpoint (`POST /v1/chat/completions`, `GET /v1/models`) in a
    background thread of this process; the deployment's endpoint is its base URL. It ends with
    the process (then it reads as deleted).

    >>> model.deploy("serve", confirm_cost=True).info.endpoint  # doctest: +SKIP
    'http://127.0.0.1:41234/v1'
    """

    kind = "serve"
    display_name = "local OpenAI-compatible endpoint"
    state_map = StateMap("local serve", {"serving": _D.READY})
    Options = ServeOptions

    def create(self, model: str, name: str, options: ServeOptions) -> DeploymentInfo:
        require_training_stack()
        from finetune_hub.providers.local import endpoint

        url = self.call(
            "deploy",
            lambda: endpoint.start(
                name, model, host=options.host, port=options.port, device=self.device
            ),
        )
        return self.info(name, model, "serving", endpoint=url)

    def get(self, name: str, options: ServeOptions) -> DeploymentInfo | None:
        from finetune_hub.providers.local import endpoint

        found = endpoint.running(name)
        if found is None:
            return None
        url, model = found
        return self.info(name, model, "serving", endpoint=url)

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        body = {"model": info.model, "messages": messages, "max_tokens": max_new_tokens(kwargs)}
        request = urllib.request.Request(
            f"{info.endpoint}/chat/completions",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )

        def ask() -> str:
            with urllib.request.urlopen(request, timeout=self.backend.options.timeout) as reply:
                return json.loads(reply.read())["choices"][0]["message"]["content"]

        return self.call("chat", ask)

    def delete(self, name: str, options: ServeOptions) -> None:
        from finetune_hub.providers.local import endpoint

        endpoint.stop(name)
