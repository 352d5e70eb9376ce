"""A stateful fake of the OpenAI and Azure OpenAI wire protocol, for testing code that fine-tunes.

One fake serves four surfaces from one loopback server, so the real `openai` SDK (and any
HTTP client) runs its real code path against it:

- `/v1/...`: OpenAI (`Authorization: Bearer <key>`);
- `/openai/...`: Azure OpenAI (`?api-version=` required; `api-key` header or Bearer);
- `/openai/v1/...`: the Azure OpenAI v1 surface (no api-version);
- `/subscriptions/...`: Azure Resource Manager model deployments (Bearer token).

Jobs move on a `FakeClock`, never on real time. Tests steer the fake with `fail_job`,
`fail_next_job`, `set_state`, `inject` (429/500/503/dropped/slow responses) and read what the
client sent in `requests` (credentials redacted).

This module imports nothing from finetune_hub and nothing outside the standard library: it is
an independent model of the provider's protocol.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from . import openai_fake_arm, openai_fake_files, openai_fake_routes
from . import openai_fake_jobs as jobs
from .fake_clock import FakeClock
from .fake_http import FakeRequest, FakeResponse, LoopbackServer
from .openai_fake_arm import Deployment
from .openai_fake_faults import (
    FAULT_KINDS,
    REDACTED,
    Fault,
    RecordedRequest,
    fault_response,
    record,
)
from .openai_fake_files import StoredFile, StoredUpload, jsonl_problem
from .openai_fake_jobs import FineTuneJob
from .openai_fake_wire import Ctx, IdMaker, WireError, check_access, openai_error

__all__ = [
    "DEFAULT_MODELS",
    "FOUNDRY_OPEN_MODELS",
    "RETIRED_MODELS",
    "REDACTED",
    "FakeAzureOpenAI",
    "FakeOpenAI",
    "FakeOpenAIServer",
    "Fault",
    "RecordedRequest",
]

#: Models the fake accepts for fine-tuning and chat (any "ft:" / ".ft-" name is also tunable).
DEFAULT_MODELS = frozenset(
    {
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
        "gpt-4.1-nano-2025-04-14",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini-2024-07-18",
        "gpt-3.5-turbo-0125",
        "o4-mini-2025-04-16",
        "babbage-002",
        "davinci-002",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-3.5-turbo",
        "o4-mini",
    }
)
#: Base models OpenAI has shut down, with the date (finetune_hub's rules/openai.toml, read
#: 2026-11-30): fine-tuning one answers 400 `model_not_available`, chatting with one 404
#: `model_not_found` ("has been deprecated"), as the real API does. `FakeOpenAI(retired={})`
#: accepts them again.
RETIRED_MODELS = {
    "babbage-002": "2026-09-28",
    "davinci-002": "2026-09-28",
    "gpt-3.5-turbo": "2026-10-23",
    "gpt-3.5-turbo-0125": "2026-10-23",
    "gpt-4.1-nano": "2026-10-23",
    "gpt-4.1-nano-2025-04-14": "2026-10-23",
    "o4-mini": "2026-10-23",
    "o4-mini-2025-04-16": "2026-10-23",
}
#: Open models a Foundry resource fine-tunes through the Azure OpenAI API (Global training).
FOUNDRY_OPEN_MODELS = frozenset(
    {"gpt-oss-20b", "Qwen-32B", "Llama-3.3-70B-Instruct", "Ministral-3B"}
)
_SURFACES = (("/openai/v1/", "azure-v1"), ("/openai/", "azure"), ("/v1/", "openai"))
_DATA_ROUTES = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [*openai_fake_files.ROUTES, *openai_fake_routes.ROUTES]
]


def split_surface(url_path: str) -> tuple[str, str]:
    """`/openai/v1/files` -> ("azure-v1", "/files"); ARM paths keep their full path."""
    for prefix, surface in _SURFACES:
        if url_path.startswith(prefix):
            return surface, url_path[len(prefix) - 1 :]
    if url_path.lower().startswith("/subscriptions/"):
        return "arm", url_path
    return "unknown", url_path


class FakeOpenAI:
    """State and routing of the fake; thread-safe. Serve it with `FakeOpenAIServer`.

    >>> fake = FakeOpenAI(auto_advance=0)
    >>> file_id = fake.add_file(b'{"messages": []}\\n' * 10)
    >>> fake.files[file_id].purpose
    'fine-tune'

    With the SDK (or use the `fake_openai` pytest fixture):

        with FakeOpenAIServer(fake) as server:
            client = fake.client()  # openai.OpenAI(base_url=server.openai_base_url, ...)
            job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18",
                                                 training_file=file_id)
            while client.fine_tuning.jobs.retrieve(job.id).status != "succeeded":
                fake.advance(30)  # or leave auto_advance on: each retrieve moves 10 s
    """

    #: The key `client()` uses; any non-empty key is accepted unless `api_keys` is given.
    api_key = "sk-test-fake"
    #: The catalogue and the shut-down models when the constructor is given none.
    default_models: frozenset[str] = DEFAULT_MODELS
    default_retired: dict[str, str] = RETIRED_MODELS

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        durations: dict[str, float] | None = None,
        auto_advance: float = 10.0,
        file_processing_seconds: float = 0.0,
        deploy_seconds: float = 60.0,
        models: Iterable[str] | None = None,
        retired: dict[str, str] | None = None,
        reply: Callable[[str, list[dict[str, Any]]], str] | None = None,
        api_keys: Iterable[str] | None = None,
        management_tokens: Iterable[str] | None = None,
        min_examples: int = 10,
        organization: str = "fake-org",
        seed: int = 0,
    ) -> None:
        unknown = set(durations or {}) - set(jobs.DEFAULT_DURATIONS)
        if unknown:
            raise ValueError(
                f"unknown phase(s) in durations: {sorted(unknown)}; "
                f"expected {sorted(jobs.DEFAULT_DURATIONS)}"
            )
        self.clock = clock or FakeClock()
        self.durations = {**jobs.DEFAULT_DURATIONS, **(durations or {})}
        self.auto_advance = auto_advance
        self.file_processing_seconds = file_processing_seconds
        self.deploy_seconds = deploy_seconds
        self.models: set[str] = set(self.default_models if models is None else models)
        #: shut-down base models (name -> date): refused for fine-tuning and chat
        self.retired: dict[str, str] = dict(self.default_retired if retired is None else retired)
        self.reply = reply or openai_fake_routes.default_reply
        self.api_keys = None if api_keys is None else set(api_keys)
        self.management_tokens = None if management_tokens is None else set(management_tokens)
        self.min_examples = min_examples
        self.organization = organization
        self.ids = IdMaker(seed)
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, StoredUpload] = {}
        self.jobs: dict[str, FineTuneJob] = {}
        self.deployments: dict[tuple[str, str, str, str], Deployment] = {}
        #: fine-tuned model and checkpoint names -> the job that made them (deleted ones leave)
        self.fine_tuned_models: dict[str, str] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.next_job_failure: dict[str, Any] | None = None
        self.server: FakeOpenAIServer | None = None
        self._lock = threading.RLock()
        self._request_ids = itertools.count(1)

    # --- the transport-independent entry point --------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one HTTP request (what `FakeOpenAIServer` calls for every request)."""
        surface, path = split_surface(request.path)
        entry = record(request, surface, path)
        with self._lock:
            self.requests.append(entry)
            fault = self._take_fault(request.method, path, request.path)
            request_id = f"req_{next(self._request_ids):012d}"
        if fault and fault.kind == "slow" and not fault.after:
            time.sleep(fault.delay)
        if fault and fault.kind != "slow" and not fault.after:
            response = fault_response(fault, surface)
        else:
            with self._lock:
                response = self._dispatch(request, surface, path)
            if fault and fault.after:
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                else:
                    response = fault_response(fault, surface)
        response.headers.setdefault("x-request-id", request_id)
        if surface != "openai":
            response.headers.setdefault("apim-request-id", request_id)
        entry.status = 0 if response.drop else response.status
        return response

    def _dispatch(self, request: FakeRequest, surface: str, path: str) -> FakeResponse:
        ctx = Ctx(self, request, surface, path)
        try:
            check_access(ctx)
            routes = openai_fake_arm.ROUTES if surface == "arm" else _DATA_ROUTES
            for method, pattern, handler in routes if surface != "unknown" else []:
                match = pattern.fullmatch(path)
                if match and method == request.method:
                    self._sync_jobs()
                    groups = {k: unquote(v) for k, v in match.groupdict().items() if v}
                    return handler(ctx, **groups)
            if surface == "arm":
                raise WireError.azure(
                    404, "NotFound", f"No route for {request.method} {request.path}"
                )
            raise WireError.openai(404, f"Invalid URL ({request.method} {request.path})")
        except WireError as err:
            return err.response()
        except Exception as exc:  # a bug in the fake: answer 500 and say so
            traceback.print_exc()
            message = f"The fake crashed on {request.method} {request.path}: {exc!r}"
            return FakeResponse.json_body(500, openai_error(message, type="server_error"))

    def _sync_jobs(self) -> None:
        for job in self.jobs.values():
            jobs.sync(self, job)

    # --- faults ---------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_pattern: str,
        kind: str | int,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        after: bool = False,
    ) -> Fault:
        """Answer the next `times` matching requests with a fault (None: every one).

        `kind`: "429" (with `Retry-After` and `retry-after-ms`; `retry_after` seconds,
        default 1), "500", "503", "drop" (close the connection, no response) or "slow"
        (sleep `delay` real seconds, then answer normally). `path_pattern` is the path after
        the surface prefix ("/fine_tuning/jobs"), matched exactly or as a regex (full match);
        `method` may be "*". With `after=True` the fake first does the work, then answers
        with the fault: a create that succeeded server-side although the client saw an error.

        >>> fake = FakeOpenAI()
        >>> fault = fake.inject("POST", "/fine_tuning/jobs", "500", after=True)
        >>> fault.remaining
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

    # --- controls for tests ---------------------------------------------------------------

    def count(self, method: str, path_pattern: str) -> int:
        """How many requests matched `method` ("*" for any) and `path_pattern` (as `inject`).

        >>> FakeOpenAI().count("POST", "/fine_tuning/jobs")
        0
        """
        probe = Fault(method.upper(), path_pattern, "500")
        with self._lock:
            return sum(probe.matches(r.method, r.path, r.url_path) for r in self.requests)

    def advance(self, seconds: float) -> float:
        """Move the fake clock forward and bring every job up to date; returns the new time."""
        with self._lock:
            now = self.clock.advance(seconds)
            self._sync_jobs()
            return now

    def job(self, job_id: str, surface: str = "openai") -> dict[str, Any]:
        """The job as the API would return it now (no clock movement)."""
        with self._lock:
            job = self.jobs[job_id]
            jobs.sync(self, job)
            return job.render(surface)

    def fail_job(
        self,
        job_id: str,
        code: str = "server_error",
        message: str = "The job failed due to an internal error.",
        param: str | None = None,
    ) -> None:
        """Make the job fail, with `error={code, message, param}`, at its next transition."""
        with self._lock:
            job = self.jobs[job_id]
            jobs.sync(self, job)
            if job.status in jobs.TERMINAL:
                raise ValueError(f"job {job_id} is already {job.status}")
            job.fail_with = {"code": code, "message": message, "param": param}

    def fail_next_job(
        self,
        code: str = "invalid_training_file",
        message: str = "Training file line 3: the example has no 'messages' field.",
        param: str | None = "training_file",
    ) -> None:
        """Make the next created job fail when its file validation ends."""
        with self._lock:
            self.next_job_failure = {"code": code, "message": message, "param": param}

    def set_state(self, job_id: str, status: str, *, allow_unknown: bool = False) -> None:
        """Force a job into `status` now ("succeeded" produces the model, result file, ...).

        `allow_unknown=True` reports any other string as-is (a state the client has never seen).
        """
        with self._lock:
            job = self.jobs[job_id]
            jobs.sync(self, job)
            jobs.set_state(self, job, status, self.clock.now(), allow_unknown=allow_unknown)

    def add_file(
        self,
        data: bytes | str,
        *,
        filename: str = "train.jsonl",
        purpose: str = "fine-tune",
        surface: str = "openai",
    ) -> str:
        """Store a file as if it had been uploaded; returns its id.

        A "fine-tune" file that is not JSONL of objects gets status "error" with
        `status_details` naming the line, once `file_processing_seconds` have passed.
        """
        data = data.encode() if isinstance(data, str) else data
        with self._lock:
            now = self.clock.now()
            file_id = "file-" + (
                self.ids.hex(32) if surface.startswith("azure") else self.ids.alnum(22)
            )
            self.files[file_id] = StoredFile(
                id=file_id,
                filename=filename,
                purpose=purpose,
                data=data,
                created_at=now,
                ready_at=now + self.file_processing_seconds,
                problem=jsonl_problem(data) if purpose == "fine-tune" else None,
            )
            return file_id

    # --- model catalogue ----------------------------------------------------------------------

    def is_tunable(self, model: str) -> bool:
        """Whether a fine-tuning job may start from `model` (not from a shut-down base)."""
        if jobs.base_model(model) in self.retired:
            return False
        return model in self.models or model.startswith("ft:") or ".ft-" in model

    def is_servable(self, model: str) -> bool:
        """Whether chat/models answer for `model` (base models and live fine-tuned ones)."""
        if model in self.retired:
            return False
        return model in self.models or model in self.fine_tuned_models

    def is_deployable(self, name: str) -> bool:
        """Whether an ARM deployment may point at `name` (model, fine-tuned model, checkpoint)."""
        if self.is_servable(name) or not (name.startswith(("ft:", "ftchkpt-")) or ".ft-" in name):
            return True
        return any(c["id"] == name for job in self.jobs.values() for c in job.checkpoints)

    # --- clients ------------------------------------------------------------------------------

    def serve(self) -> FakeOpenAIServer:
        """Start a loopback server for this fake (stop it with `.stop()`)."""
        return FakeOpenAIServer(self).start()

    def client(self, **kwargs: Any) -> Any:
        """An `openai.OpenAI` client pointed at the running server (kwargs override)."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", self._running_server().openai_base_url)
        return _import_openai().OpenAI(**kwargs)

    def _running_server(self) -> FakeOpenAIServer:
        if self.server is None:
            raise RuntimeError(
                "this fake is not being served; use FakeOpenAIServer(fake).start() (or the "
                "fake_openai pytest fixture) before asking for a client"
            )
        return self.server


class FakeAzureOpenAI(FakeOpenAI):
    """The same fake, with Azure defaults: `client()` returns `openai.AzureOpenAI`.

    >>> fake = FakeAzureOpenAI()
    >>> fake.deployment_path("my-ft").endswith("/accounts/aoai-fake/deployments/my-ft")
    True
    """

    api_key = "azure-test-fake-key"
    #: Azure's catalogue adds the open models Foundry resources tune with Global training; the
    #: azure-openai rules name none of the catalogue's models as retired today.
    default_models = DEFAULT_MODELS | FOUNDRY_OPEN_MODELS
    default_retired: dict[str, str] = {}
    api_version = "2025-04-01-preview"
    management_api_version = "2024-10-01"
    #: Any non-empty Bearer token is accepted unless `management_tokens` is given.
    management_token = "fake-arm-token"
    subscription_id = "00000000-0000-0000-0000-000000000000"
    resource_group = "rg-fake"
    account = "aoai-fake"

    def client(self, **kwargs: Any) -> Any:
        """An `openai.AzureOpenAI` client on the running server (kwargs override)."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("api_version", self.api_version)
        kwargs.setdefault("azure_endpoint", self._running_server().azure_endpoint)
        return _import_openai().AzureOpenAI(**kwargs)

    def v1_client(self, **kwargs: Any) -> Any:
        """An `openai.OpenAI` client on the Azure v1 surface (`{endpoint}/openai/v1/`)."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", f"{self._running_server().azure_endpoint}/openai/v1/")
        return _import_openai().OpenAI(**kwargs)

    def management_headers(self) -> dict[str, str]:
        """Headers for ARM calls: `{"Authorization": "Bearer <management_token>"}`."""
        return {"Authorization": f"Bearer {self.management_token}"}

    def deployment_path(self, name: str) -> str:
        """The ARM path of deployment `name` on this fake's account (no host, no query)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.account}/deployments/{name}"
        )

    def deployment_url(self, name: str) -> str:
        """Full ARM URL of deployment `name`, with `?api-version=`."""
        base = self._running_server().management_url
        return f"{base}{self.deployment_path(name)}?api-version={self.management_api_version}"


class FakeOpenAIServer:
    """Serve a `FakeOpenAI` on 127.0.0.1 (port 0: the OS picks) from a daemon thread.

    >>> with FakeOpenAIServer() as server:
    ...     server.openai_base_url.endswith("/v1")
    True
    """

    def __init__(self, fake: FakeOpenAI | None = None, host: str = "127.0.0.1", port: int = 0):
        self.fake = fake if fake is not None else FakeOpenAI()
        self.fake.server = self
        self._http = LoopbackServer(self.fake.handle, host, port)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return self._http.url

    @property
    def openai_base_url(self) -> str:
        """`base_url` for `openai.OpenAI`: the url plus `/v1`."""
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """`azure_endpoint` for `openai.AzureOpenAI` (the url)."""
        return self.url

    @property
    def management_url(self) -> str:
        """Stand-in for `https://management.azure.com` (the url; serves the ARM paths)."""
        return self.url

    def start(self) -> FakeOpenAIServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            'The fake needs the openai SDK only for .client(): pip install "finetune-hub[openai]"'
        ) from None
    return openai
