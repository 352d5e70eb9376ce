"""`FakeVertex`: Google Vertex AI and Cloud Storage on one loopback server, for the real SDKs.

One server answers:

- google-genai in Vertex mode (`/v1beta1/.../tuningJobs`, `...:generateContent`), with enums as
  names and int64 as strings, as the real REST API;
- google-cloud-aiplatform over REST (`api_transport="rest"`: `/v1/.../pipelineJobs`, `models`,
  `endpoints`, long-running `operations`, `:predict`), with enum numbers when the client asks for
  `$alt=json;enum-encoding=int`;
- the Cloud Storage JSON API for google-cloud-storage with `STORAGE_EMULATOR_HOST` set to the
  fake's URL (multipart and resumable uploads, checksums, preconditions, downloads, lists).

Jobs and pipelines move on a `FakeClock` (each GET of one advances it `auto_advance` seconds).
Names carry a project number (`projects/123456789012/...`) whatever project id the client used.

    from finetune_hub.testing import FakeVertex

    with FakeVertex() as fake:                     # or the `fake_vertex` pytest fixture
        client = fake.genai_client()               # google.genai.Client on the fake
        job = client.tunings.tune(base_model="gemini-2.5-flash", training_dataset=...)
        fake.advance(600)
        assert client.tunings.get(name=job.name).state.name == "JOB_STATE_SUCCEEDED"

This module imports nothing outside the standard library until a client helper is called.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from . import gcs_fake_routes, vertex_fake_pipelines, vertex_fake_serving, vertex_fake_tuning
from .fake_clock import FakeClock
from .fake_http import FakeRequest, FakeResponse, LoopbackServer
from .gcs_fake import FakeStorage
from .vertex_fake_faults import FAULT_KINDS, Fault, RecordedRequest, record, target_matches
from .vertex_fake_pipelines import PipelineJob
from .vertex_fake_serving import Serving, default_reply
from .vertex_fake_tuning import TuningJob
from .vertex_fake_wire import ApiError, Ctx, rpc_status

__all__ = ["FakeVertex"]

_VERTEX_ROUTES = [
    *vertex_fake_tuning.ROUTES,
    *vertex_fake_pipelines.ROUTES,
    *vertex_fake_serving.ROUTES,
]
_ROUTES = [
    (method, re.compile(pattern), operation, handler, api)
    for routes, api in ((_VERTEX_ROUTES, "vertex"), (gcs_fake_routes.ROUTES, "storage"))
    for method, pattern, operation, handler in routes
]
_STORAGE_PREFIXES = ("/storage/v1", "/upload/storage/v1", "/download/storage/v1")


class FakeVertex:
    """State, routing, faults and clients of the Vertex AI + Cloud Storage fake; thread-safe.

    >>> fake = FakeVertex(auto_advance=0)
    >>> fake.storage.put("gs://finetune-hub-test/data/train.jsonl", b'{"contents": []}')
    >>> fake.parent("finetune-hub-test", "us-central1")   # ids become project numbers
    'projects/123456789012/locations/us-central1'
    >>> fake.parent("other-project", "europe-west4")
    'projects/123456789013/locations/europe-west4'
    """

    #: The access token `credentials()` carries; any non-empty Bearer token is accepted
    #: unless `tokens=` is given.
    token = "ya29.fake-vertex-token"

    def __init__(
        self,
        *,
        project: str = "finetune-hub-test",
        location: str = "us-central1",
        bucket: str = "finetune-hub-test",
        project_number: str = "123456789012",
        clock: FakeClock | None = None,
        auto_advance: float = 30.0,
        durations: dict[str, float] | None = None,
        task_seconds: dict[str, float] | None = None,
        models: Iterable[str] | None = None,
        preference_models: Iterable[str] | None = None,
        reply: Callable[[str, list[dict[str, Any]]], str] | None = None,
        tokens: Iterable[str] | None = None,
    ) -> None:
        defaults = {**vertex_fake_tuning.DEFAULT_DURATIONS, "pipeline_pending": 30.0}
        unknown = set(durations or {}) - set(defaults)
        if unknown:
            raise ValueError(f"unknown durations {sorted(unknown)}; expected {sorted(defaults)}")
        self.project, self.location, self.bucket = project, location, bucket
        self.project_number = project_number
        self.clock = clock or FakeClock()
        self.auto_advance = auto_advance
        self.durations = {**defaults, **(durations or {})}
        self.task_seconds = {**vertex_fake_pipelines.DEFAULT_TASK_SECONDS, **(task_seconds or {})}
        self.models = set(vertex_fake_tuning.TUNABLE_MODELS if models is None else models)
        self.preference_models = set(
            vertex_fake_tuning.PREFERENCE_MODELS if preference_models is None else preference_models
        )
        #: Publisher models generateContent answers for, beside the tunable ones.
        self.serving_models: set[str] = {"gemini-2.5-flash", "gemini-2.5-pro"}
        self.retired_models = set(vertex_fake_pipelines.RETIRED_MODELS)
        self.reply = reply or default_reply
        self.tokens = None if tokens is None else set(tokens)
        self._ids = itertools.count(4_000_000_000_000_000_001)
        self._projects: dict[str, str] = {project: project_number}
        self._lock = threading.RLock()
        self._http: LoopbackServer | None = None
        self.reset()

    # --- state --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every job, pipeline, model, endpoint, object, bucket, fault and request."""
        with self._lock:
            self.tuning_jobs: dict[str, TuningJob] = {}
            self.pipeline_jobs: dict[str, PipelineJob] = {}
            self.serving = Serving(fake=self)
            self.storage = FakeStorage(self.clock, self.project_number)
            if self._http is not None:
                self.storage.base_url = self._http.url
            self.requests: list[RecordedRequest] = []
            self.faults: list[Fault] = []
            #: generateContent/predict calls answered: {"model", "request", "reply"}.
            self.chats: list[dict[str, Any]] = []
            self.next_job_failure: dict[str, Any] | None = None
            self.next_pipeline_failure: tuple[str | None, dict[str, Any]] | None = None

    def new_id(self) -> str:
        """A fresh numeric resource id (19 digits, like Vertex's)."""
        return str(next(self._ids))

    def parent(self, project: str, location: str) -> str:
        """`projects/{number}/locations/{location}` for a project id or number."""
        with self._lock:
            if not project.isdigit():
                number = self._projects.setdefault(
                    project, str(int(self.project_number) + len(self._projects))
                )
                project = number
        return f"projects/{project}/locations/{location}"

    def normalise(self, name: str) -> str:
        """A resource name with its project id replaced by the project number."""
        match = re.match(r"projects/([^/]+)/locations/([^/]+)(.*)", name)
        if not match:
            return name
        return self.parent(match.group(1), match.group(2)) + match.group(3)

    def poll_advance(self) -> None:
        """Advance the clock `auto_advance` seconds (what each GET of a job or pipeline does)."""
        if self.auto_advance:
            self.clock.advance(self.auto_advance)

    def advance(self, seconds: float) -> float:
        """Move the fake clock forward and bring every job and pipeline up to date."""
        with self._lock:
            now = self.clock.advance(seconds)
            for job in self.tuning_jobs.values():
                vertex_fake_tuning.sync(self, job)
            for pipeline in self.pipeline_jobs.values():
                vertex_fake_pipelines.sync(self, pipeline)
            return now

    # --- steering jobs ------------------------------------------------------------------------

    def tuning_job(self, name: str) -> dict[str, Any]:
        """The tuning job (full name or id) as GET returns it now, without moving the clock."""
        with self._lock:
            job = self._tuning(name)
            vertex_fake_tuning.sync(self, job)
            return job.render()

    def _tuning(self, name: str) -> TuningJob:
        name = self.normalise(name)
        job = self.tuning_jobs.get(name) or next(
            (j for j in self.tuning_jobs.values() if j.id == name), None
        )
        if job is None:
            raise KeyError(f"no tuning job {name!r}")
        return job

    def fail_tuning_job(
        self, name: str, message: str = "Internal error occurred.", status: str = "INTERNAL"
    ) -> None:
        """Make the job fail at its next transition, with `error {code, message}`."""
        with self._lock:
            job = self._tuning(name)
            vertex_fake_tuning.sync(self, job)
            if job.state in vertex_fake_tuning.TERMINAL:
                raise ValueError(f"tuning job {job.name} is already {job.state}")
            job.fail_with = rpc_status(status, message)

    def fail_next_tuning_job(
        self, message: str = "Internal error occurred.", status: str = "INTERNAL"
    ) -> None:
        """Make the next created tuning job fail when its dataset has been read."""
        with self._lock:
            self.next_job_failure = rpc_status(status, message)

    def set_tuning_state(self, name: str, state: str) -> None:
        """Force a tuning job into `state` now ("JOB_STATE_SUCCEEDED" also makes its model)."""
        with self._lock:
            job = self._tuning(name)
            now = self.clock.now()
            if state == "JOB_STATE_SUCCEEDED":
                vertex_fake_tuning.succeed(self, job, now)
                return
            job.state, job.updated = state, now
            if state == "JOB_STATE_RUNNING" and job.started is None:
                job.started = now
            if state in vertex_fake_tuning.TERMINAL:
                job.ended = now

    def pipeline_job(self, name: str) -> dict[str, Any]:
        """The pipeline job (full name or id) as GET returns it now, without moving the clock."""
        with self._lock:
            job = self._pipeline(name)
            vertex_fake_pipelines.sync(self, job)
            return job.render()

    def _pipeline(self, name: str) -> PipelineJob:
        name = self.normalise(name)
        job = self.pipeline_jobs.get(name) or next(
            (j for j in self.pipeline_jobs.values() if j.name.endswith(f"/{name}")), None
        )
        if job is None:
            raise KeyError(f"no pipeline job {name!r}")
        return job

    def fail_pipeline(
        self, name: str, task: str | None = None, message: str = "The task failed."
    ) -> None:
        """Make a pipeline fail when `task` (default: the next one to finish) finishes."""
        with self._lock:
            job = self._pipeline(name)
            job.fail_task, job.fail_with = task, rpc_status("INTERNAL", message)

    def fail_next_pipeline(
        self, task: str | None = None, message: str = "The task failed."
    ) -> None:
        """Make the next created pipeline fail when `task` (default: its first task) finishes."""
        with self._lock:
            self.next_pipeline_failure = (task, rpc_status("INTERNAL", message))

    # --- faults and the log -------------------------------------------------------------------

    def inject(
        self,
        method: str,
        target: str,
        kind: str | int,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        after: bool = False,
    ) -> Fault:
        """Answer the next `times` matching requests with a fault (None: every one).

        `target` is an operation name ("tuningJobs.create", "storage.objects.insert", ... as in
        `requests[i].operation`) or a regex matching the whole path; `method` may be "*".
        `kind`: "429" (with `Retry-After`, `retry_after` seconds, default 1), "500", "503",
        "drop" (close the connection, no answer) or "slow" (sleep `delay` real seconds first).
        `after=True` does the work first, then answers with the fault: a create that took
        effect although the client saw an error.

        >>> FakeVertex().inject("POST", "tuningJobs.create", "500", after=True).remaining
        1
        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        fault = Fault(method.upper(), target, kind, times, retry_after, delay, after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def sent(self, method: str, target: str) -> list[RecordedRequest]:
        """The requests that matched `method` ("*": any) and `target` (as in `inject`), oldest
        first. Safer in a test than `requests[-1]`: google-cloud-storage 3.x fetches the
        bucket's metadata on a background thread after an upload, so that GET may come last.

        >>> FakeVertex().sent("POST", "storage.objects.insert")
        []
        """
        with self._lock:
            return [
                r
                for r in self.requests
                if method in ("*", r.method) and target_matches(target, r.operation, r.path)
            ]

    def count(self, method: str, target: str) -> int:
        """How many requests matched `method` ("*": any) and `target` (as in `inject`).

        >>> FakeVertex().count("POST", "tuningJobs.create")
        0
        """
        return len(self.sent(method, target))

    def _take_fault(self, method: str, operation: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining != 0 and fault.matches(method, operation, path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    # --- HTTP ---------------------------------------------------------------------------------

    def _route(self, request: FakeRequest) -> tuple[str, str, Any, dict[str, str]]:
        for method, pattern, operation, handler, api in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return api, operation, handler, match.groupdict()
        api = "storage" if request.path.startswith(_STORAGE_PREFIXES) else "vertex"
        if not request.path.startswith(("/v1/", "/v1beta1/", "/ui/", *_STORAGE_PREFIXES)):
            api = "unknown"
        return api, "", None, {}

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one HTTP request (what the loopback server calls for every request)."""
        api, operation, handler, groups = self._route(request)
        entry = record(request, api, operation)
        with self._lock:
            self.requests.append(entry)
            fault = self._take_fault(request.method, operation, request.path)
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault and fault.kind != "slow" and not fault.after:
            response = fault.response("storage" if api == "storage" else "vertex")
        else:
            response = self._dispatch(request, api, handler, groups)
            if fault and fault.after and fault.kind != "slow":
                response = fault.response("storage" if api == "storage" else "vertex")
        entry.status = 0 if response.drop else response.status
        return response

    def _dispatch(self, request: FakeRequest, api: str, handler: Any, groups: dict) -> FakeResponse:
        shape = "storage" if api == "storage" else "vertex"
        try:
            with self._lock:
                if api == "vertex":
                    self._check_auth(request)
                if handler is None:
                    raise ApiError(
                        404, f"The fake has no route for {request.method} {request.path}."
                    )
                groups = gcs_fake_routes.unquote_groups(groups)
                return handler(Ctx(self, request, shape), **groups)
        except ApiError as err:
            return err.response(shape)
        except Exception as exc:  # a bug in the fake: answer 500 and say so
            traceback.print_exc()
            return ApiError(
                500, f"The fake crashed on {request.method} {request.path}: {exc!r}"
            ).response(shape)

    def _check_auth(self, request: FakeRequest) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if (
            scheme.lower() != "bearer"
            or not token
            or (self.tokens is not None and token not in self.tokens)
        ):
            raise ApiError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )

    # --- serving ------------------------------------------------------------------------------

    def start(self) -> FakeVertex:
        """Serve on 127.0.0.1 (a free port); returns self. Starting twice is a no-op."""
        if self._http is None:
            self._http = LoopbackServer(self.handle).start()
            self.storage.base_url = self._http.url
        return self

    def stop(self) -> None:
        """Stop serving. Stopping twice is a no-op."""
        http, self._http = self._http, None
        if http is not None:
            http.stop()

    def __enter__(self) -> FakeVertex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`: `api_endpoint` for Vertex, `STORAGE_EMULATOR_HOST` for GCS."""
        if self._http is None:
            raise RuntimeError("the fake is not being served; call .start() (or use the fixture)")
        return self._http.url

    # --- clients ------------------------------------------------------------------------------

    @property
    def gcs_uri(self) -> str:
        """The upload prefix the fixture's options use: `gs://{bucket}/finetune-hub`."""
        return f"gs://{self.bucket}/finetune-hub"

    def credentials(self) -> Any:
        """A `google.oauth2.credentials.Credentials` with this fake's token (no refresh)."""
        from google.oauth2.credentials import Credentials

        return Credentials(token=self.token)

    @property
    def options(self) -> dict[str, Any]:
        """Connection options for a finetune_hub Vertex job on this fake."""
        return {
            "project": self.project,
            "location": self.location,
            "gcs_uri": self.gcs_uri,
            "credentials": self.credentials(),
            "api_endpoint": self.url,
        }

    def genai_client(self, **http_options: Any) -> Any:
        """A `google.genai.Client` in Vertex mode on this fake (keep a reference while using it)."""
        from google import genai
        from google.genai import types

        return genai.Client(
            vertexai=True,
            project=self.project,
            location=self.location,
            credentials=self.credentials(),
            http_options=types.HttpOptions(base_url=self.url, **http_options),
        )

    def storage_client(self) -> Any:
        """A `google.cloud.storage.Client` on this fake (anonymous, like an emulator client)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def init_aiplatform(self) -> Any:
        """`aiplatform.init(...)` on this fake over REST; returns the `aiplatform` module."""
        from google.cloud import aiplatform

        aiplatform.init(
            project=self.project,
            location=self.location,
            api_endpoint=self.url,
            api_transport="rest",
            credentials=self.credentials(),
        )
        return aiplatform
