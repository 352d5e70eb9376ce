"""A stateful fake of Azure AI Foundry (hub/project workspaces) for catalog-model fine-tuning.

It serves the REST calls azure-ai-ml 1.35 makes for serverless ("models as a service")
fine-tuning, on a project workspace, through an in-process azure-core transport:

- ARM (`management.azure.com`): workspace, default datastore and its secrets, data assets,
  marketplace subscriptions, fine-tuning jobs, registered models, serverless endpoints and keys;
- Blob Storage (`{account}.blob.core.windows.net`): the uploads of training files;
- the workspace data plane (`{location}.api.azureml.ms`): discovery, run history (status, times,
  the failure message) and MLflow metrics; the model registry's discovery and models;
- each serverless endpoint's inference host: chat completions, answered by `reply`.

Point the real SDK at it by handing its transport and credential to `MLClient`; no URL or
environment variable changes (see `ml_client`, `options`):

    fake = FakeAzureFoundry()
    ml = MLClient(fake.credential, fake.subscription_id, fake.resource_group, fake.workspace,
                  transport=fake.transport)

Jobs, endpoints and subscriptions move on a `FakeClock`; the transport's `sleep` (azure-core's
retry and poll waits) moves that clock instead of real time. Tests steer it with `fail_job`,
`set_state`, `inject` (429 / 500 / 503 / dropped connection / slow answer, before or after the work)
and read `requests` (credentials redacted), `count`, `sleeps` and `usage`.

This module imports nothing from finetune_hub outside finetune_hub.testing: it is an
independent model of the service's wire protocol.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from . import azure_foundry_fake_arm, azure_foundry_fake_arm_jobs
from .azure_foundry_fake_blob import handle_blob
from .azure_foundry_fake_dataplane import handle_dataplane, handle_registry
from .azure_foundry_fake_faults import FAULT_KINDS, fault_response, surface_of
from .azure_foundry_fake_inference import handle_inference
from .azure_foundry_fake_jobs import KNOWN_STATUSES
from .azure_foundry_fake_resources import CatalogModel, model_ref
from .azure_foundry_fake_state import DATASTORE_URI, FoundryState
from .azure_foundry_fake_transport import FakeAzureCredential, make_transport, route_storage_clients
from .azure_foundry_fake_wire import AzureError, Ctx
from .fake_http import FakeRequest, FakeResponse
from .openai_fake_faults import Fault, RecordedRequest, record

__all__ = ["CatalogModel", "FakeAzureCredential", "FakeAzureFoundry"]

_ROUTES = [
    (method, re.compile(pattern, re.IGNORECASE), handler)
    for method, pattern, handler in [
        *azure_foundry_fake_arm.ROUTES,
        *azure_foundry_fake_arm_jobs.ROUTES,
    ]
]
_OPERATION = re.compile(
    r"/subscriptions/[^/]+/providers/Microsoft\.MachineLearningServices/locations/[^/]+"
    r"/mfeOperationResults/(?P<op_id>[^/]+)",
    re.IGNORECASE,
)


class FakeAzureFoundry(FoundryState):
    """State and routing of the fake; thread-safe.

    Keyword arguments (all optional):

    - `clock`: a shared `FakeClock`; `phases`: the job timeline before "Completed", as
      (status, seconds) pairs (default NotStarted 10, Queued 30, Running 120);
    - `auto_advance`: seconds each GET of a job, endpoint or subscription moves the clock (0:
      never), so a client that polls without sleeping still sees things happen;
    - `deploy_seconds`, `delete_seconds`, `cancel_seconds`, `subscribe_seconds`: how long
      endpoint creation and deletion, a cancel and a marketplace subscription take;
    - `metric_step_seconds`: one made-up training step (loss point) per this many seconds;
    - `catalog`: the `CatalogModel`s that can be tuned (default `DEFAULT_CATALOG`: Phi, Mistral,
      Llama 3.1 70B, tsuzumi2 with epochs and batch size only);
    - `reply(model_id, messages) -> str`: what endpoints answer (default: an echo tagged
      "[base ...]" or "[fine-tuned ...]");
    - `string_hyperparameters`: refuse `hyperParameters` values that are not strings;
    - `page_size`: jobs per page of `jobs.list()`.

    >>> fake = FakeAzureFoundry()
    >>> fake.options["workspace"]
    'proj-fake'
    >>> fake.add_blob("ft/train.jsonl", b'{"messages": []}\\n')
    'azureml://datastores/workspaceblobstore/paths/ft/train.jsonl'

    With the real SDK (or use the `fake_azure_foundry` pytest fixture):

        ml = fake.ml_client()       # MLClient(fake.credential, ..., transport=fake.transport)
        job = ml.jobs.create_or_update(create_finetuning_job(...))
        while ml.jobs.get(job.name).status not in ("Completed", "Failed", "Canceled"):
            fake.advance(30)        # or leave auto_advance on: each job GET moves 10 s
    """

    _transport: Any = None

    def reset(self) -> None:
        """Forget every resource, request, fault and sleep (the clock keeps its time)."""
        with self._lock:
            super().reset()
            self.requests: list[RecordedRequest] = []
            self.faults: list[Fault] = []
            #: every `transport.sleep()` duration, in order (retries and long-running polls)
            self.sleeps: list[float] = []

    # --- the transport-independent entry point ---------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one HTTP request (what the transport calls for every request)."""
        surface = surface_of(request.headers.get("host", ""))
        relative = self._relative_path(request.path) if surface == "arm" else None
        entry = record(request, surface, relative or request.path)
        with self._lock:
            self.requests.append(entry)
            fault = self._take_fault(request.method, entry.path, request.path)
        if fault and not fault.after and fault.kind != "slow":
            response = fault_response(fault, surface)
        else:
            with self._lock:
                response = self._dispatch(Ctx(self, request, surface), relative)
            if fault and fault.kind == "slow":
                response.delay = fault.delay
            elif fault:
                response = fault_response(fault, surface)
        response.headers.setdefault("x-ms-request-id", f"fake-{next(self._ids):08d}")
        entry.status = 0 if response.drop else response.status
        return response

    def _relative_path(self, path: str) -> str | None:
        prefix = self.workspace_path.lower()
        lowered = unquote(path).lower().rstrip("/")
        if lowered == prefix:
            return "/"
        if lowered.startswith(prefix + "/"):
            return unquote(path).rstrip("/")[len(prefix) :]
        return None

    def _dispatch(self, ctx: Ctx, relative: str | None) -> FakeResponse:
        request = ctx.request
        try:
            self.sync()
            if ctx.surface == "blob":
                return handle_blob(ctx, self.blobs)
            if ctx.surface == "dataplane":
                return handle_dataplane(ctx)
            if ctx.surface == "registry":
                return handle_registry(ctx)
            if ctx.surface == "inference":
                return handle_inference(ctx)
            if ctx.surface != "arm":
                raise AzureError(404, "HostNotFound", f"The fake serves no host {ctx.host!r}.")
            if relative is None:
                match = _OPERATION.fullmatch(unquote(request.path))
                if match and request.method == "GET":
                    return azure_foundry_fake_arm.get_operation(ctx, match["op_id"])
                raise AzureError(
                    404,
                    "ResourceNotFound",
                    f"The fake serves one workspace, {self.workspace_path}; not {request.path}.",
                )
            for method, pattern, handler in _ROUTES:
                match = pattern.fullmatch(relative)
                if match and method == request.method:
                    return handler(ctx, **match.groupdict())
            raise AzureError(
                404, "NoRoute", f"The fake has no route {request.method} {request.path}."
            )
        except AzureError as err:
            response = err.response()
            if request.method == "HEAD":
                response.body = b""
            return response
        except Exception as exc:  # a bug in the fake: answer 500 and say so
            traceback.print_exc()
            message = f"The fake crashed on {request.method} {request.path}: {exc!r}"
            return AzureError(500, "FakeCrashed", message).response()

    # --- faults ----------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_pattern: str,
        kind: str | int,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        after: bool = False,
        delay: float = 0.0,
    ) -> Fault:
        """Answer the next `times` matching requests with a fault (None: every one).

        `kind`: "429" (with `Retry-After`, `retry_after` seconds, default 1), "500", "503",
        "drop" (the connection breaks, no response) or "slow" (the work is done and the answer
        comes `delay` seconds late: past the client's read timeout the transport raises
        `requests.exceptions.ReadTimeout`, as a real one would; no real time passes). `path_pattern` matches, exactly or as a
        full regex, the workspace-relative path of an ARM call ("/jobs/ft-1",
        r"/serverlessEndpoints/[^/]+") or the full path of any other call
        ("/v1/chat/completions", r".*/runs/ft-1/details"); `method` may be "*". With
        `after=True` the fake first does the work, then answers with the fault: a create that
        took effect although the client saw an error.

        >>> fake = FakeAzureFoundry()
        >>> fake.inject("PUT", r"/jobs/[^/]+", "500", after=True).remaining
        1
        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        fault = Fault(method.upper(), path_pattern, kind, times, retry_after, delay, after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str, url_path: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining != 0 and fault.matches(method, path, url_path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    # --- controls for tests ----------------------------------------------------------------

    def count(self, method: str, path_pattern: str) -> int:
        """How many requests matched `method` ("*": any) and `path_pattern` (as in `inject`).

        >>> FakeAzureFoundry().count("PUT", r"/jobs/[^/]+")
        0
        """
        probe = Fault(method.upper(), path_pattern, "500")
        with self._lock:
            return sum(probe.matches(r.method, r.path, r.url_path) for r in self.requests)

    def advance(self, seconds: float) -> float:
        """Move the fake clock forward (jobs, endpoints, operations follow); the new time."""
        with self._lock:
            now = self.clock.advance(seconds)
            self.sync()
            return now

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(float(seconds))
        self.advance(max(0.0, float(seconds)))

    def job_status(self, name: str) -> str:
        """The job's status now (no clock movement)."""
        with self._lock:
            return self._job(name).status(self.clock.now())

    def fail_job(
        self,
        name: str,
        message: str = "Training failed: the training data could not be read.",
        *,
        code: str = "UserError",
        immediately: bool = False,
    ) -> None:
        """Make the job fail at its next transition (now, with `immediately=True`).

        The message shows in run history (`jobs.stream`, run details), as in Azure.
        """
        with self._lock:
            self._job(name).fail(self.clock.now(), code, message, immediately)

    def set_state(self, name: str, status: str, *, allow_unknown: bool = False) -> None:
        """Force a job into `status` now ("Completed" registers the output model)."""
        if status not in KNOWN_STATUSES and not allow_unknown:
            raise ValueError(f"unknown job status {status!r}; known: {sorted(KNOWN_STATUSES)}")
        with self._lock:
            self._job(name).force(status, self.clock.now())
            self.sync()

    def add_warning(self, name: str, message: str, source: str = "fine-tuning") -> None:
        """Add a warning to the job's run details."""
        with self._lock:
            self._job(name).warnings.append({"source": source, "message": message})

    def log_metric(self, name: str, key: str, value: float, step: int = 0) -> None:
        """Log one MLflow metric point for the job at the current fake time."""
        with self._lock:
            point = {
                "key": key,
                "value": float(value),
                "step": int(step),
                "timestamp": int(self.clock.now() * 1000),
            }
            self._job(name).extra_metrics.append(point)

    def add_blob(self, path: str, data: bytes | str) -> str:
        """Store a file in the default datastore as if uploaded; returns its `azureml://` uri."""
        data = data.encode() if isinstance(data, str) else data
        with self._lock:
            self.blobs.put(self.container, path.lstrip("/"), data)
        return f"azureml://datastores/{self.datastore_name}/paths/{path.lstrip('/')}"

    def blob_data(self, path: str) -> bytes:
        """The bytes of a blob in the default datastore (`path` or its `azureml://` uri)."""
        match = DATASTORE_URI.fullmatch(path)
        name = match["path"] if match else path.lstrip("/")
        blob = self.blobs.get(self.container, name)
        if blob is None:
            raise KeyError(
                f"no blob {name!r}; blobs: {sorted(self.blobs.containers[self.container])}"
            )
        return blob.data

    def is_tuned(self, model_id: str) -> bool:
        """Whether `model_id` (as an endpoint serves it) is a fine-tuned workspace model."""
        return model_ref(model_id) is None

    def endpoint_hours(self, name: str) -> float:
        """Fake-clock hours the endpoint has existed (until its delete completed): what bills."""
        endpoint = self.endpoints[name.lower()]
        end = endpoint.deleted if endpoint.deleted is not None else self.clock.now()
        return max(0.0, min(end, self.clock.now()) - endpoint.created_at) / 3600

    # --- clients -----------------------------------------------------------------------------

    @property
    def transport(self) -> Any:
        """The azure-core transport to hand to `MLClient(..., transport=...)` (needs azure-core)."""
        if self._transport is None:
            self._transport = make_transport(self.handle, self._sleep)
        return self._transport

    @property
    def options(self) -> dict[str, Any]:
        """A job's `options` for this fake: subscription, resource group, workspace, credential
        and transport."""
        return {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace": self.workspace,
            "credential": self.credential,
            "transport": self.transport,
        }

    def ml_client(self, **kwargs: Any) -> Any:
        """An `azure.ai.ml.MLClient` on this fake (kwargs go to MLClient)."""
        from azure.ai.ml import MLClient

        return MLClient(
            self.credential,
            self.subscription_id,
            self.resource_group,
            self.workspace,
            transport=self.transport,
            **kwargs,
        )

    @contextmanager
    def route_storage_clients(self) -> Iterator[None]:
        """Send blob clients that azure-ai-ml builds without a transport (local-file uploads)
        to this fake, inside the `with` block."""
        with route_storage_clients(self.transport):
            yield
