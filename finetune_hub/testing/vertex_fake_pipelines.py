"""Vertex AI Pipelines (`pipelineJobs`) in the fake: create, get, list, cancel, and task details
that advance on the fake clock.

A pipeline is `PIPELINE_STATE_PENDING` for `durations["pipeline_pending"]`, then RUNNING while its
tasks run one after another, then SUCCEEDED. Tasks are the root DAG's tasks in dependency order,
each taking `fake.task_seconds.get(name, fake.task_seconds["*"])` fake seconds. A pipeline whose
`pipelineInfo.name` is `rlhf-train-template` (Google's RLHF template) runs the template's phases
instead: validate-pipeline, rlhf-preprocessor, reward-model-graph/reward-model-trainer,
reinforcement-learning-graph/reinforcer, then llm-deployment-graph/upload-llm-model (which
registers a model, `execution.metadata["output:model_resource_name"]`) and, with `deploy_model`
for text-bison only (as the template's `resolve_deploy_model` decides), deploy-llm-model (an
endpoint, `output:endpoint_resource_name`). A `large_model_reference` in
`fake.retired_models` (the PaLM models) fails in rlhf-preprocessor, as it would today.

`RETIRED_MODELS` (rules/vertex.toml, read 2026-11-30): PaLM (2025-04-09), Gemini 1.5
(2025-09-24) and Gemini 2.0 (2026-02-05, lite 2026-02-25). A tuning job on one answers 404
NOT_FOUND ("Publisher Model ... was not found"), as generateContent on one does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .vertex_fake_wire import ApiError, Ctx, rfc3339, rpc_status

__all__ = ["RETIRED_MODELS", "RLHF_TEMPLATE_NAME", "ROUTES", "PipelineJob"]

RLHF_TEMPLATE_NAME = "rlhf-train-template"
RETIRED_MODELS = frozenset(
    {
        "text-bison@001",
        "text-bison@002",
        "chat-bison@001",
        "gemini-1.5-pro-002",
        "gemini-1.5-pro",
        "gemini-1.5-flash-002",
        "gemini-1.5-flash",
        "gemini-2.0-flash-001",
        "gemini-2.0-flash",
        "gemini-2.0-flash-lite-001",
        "gemini-2.0-flash-lite",
    }
)
DEFAULT_TASK_SECONDS = {
    "*": 60.0,
    "reward-model-trainer": 300.0,
    "reinforcer": 300.0,
}
_TERMINAL = frozenset(
    {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
)
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")


@dataclass
class Task:
    """One task of a pipeline run, with its place on the timeline."""

    id: str
    name: str
    start: float
    end: float
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    state: str = "PENDING"


@dataclass
class PipelineJob:
    """A pipeline job as the fake holds it; `render()` is its REST representation."""

    name: str
    request: dict[str, Any]
    created: float
    tasks: list[Task]
    root_id: str
    state: str = "PIPELINE_STATE_PENDING"
    updated: float = 0.0
    started: float | None = None
    ended: float | None = None
    error: dict[str, Any] | None = None
    fail_task: str | None = None  # the task that fails, and with what
    fail_with: dict[str, Any] | None = None
    cancel_at: float | None = None
    model: str = ""  # the model the RLHF template's upload step registered

    @property
    def labels(self) -> dict[str, str]:
        return self.request.get("labels") or {}

    @property
    def params(self) -> dict[str, Any]:
        return (self.request.get("runtimeConfig") or {}).get("parameterValues") or {}

    def render(self) -> dict[str, Any]:
        out = {"name": self.name, **self.request, "state": self.state}
        out["createTime"] = rfc3339(self.created)
        out["updateTime"] = rfc3339(self.updated or self.created)
        if self.started is not None:
            out["startTime"] = rfc3339(self.started)
            out["jobDetail"] = {
                "pipelineContext": {"name": f"{self.name}-context"},
                "pipelineRunContext": {"name": f"{self.name}-run-context"},
                "taskDetails": [self._task(t) for t in self._visible()],
            }
        if self.ended is not None:
            out["endTime"] = rfc3339(self.ended)
        if self.error:
            out["error"] = self.error
        return out

    def _visible(self) -> list[Task]:
        root = Task(self.root_id, _pipeline_name(self.request), self.started or 0, 0)
        root.state = {
            "PIPELINE_STATE_SUCCEEDED": "SUCCEEDED",
            "PIPELINE_STATE_FAILED": "FAILED",
            "PIPELINE_STATE_CANCELLED": "CANCELLED",
            "PIPELINE_STATE_CANCELLING": "CANCELLING",
        }.get(self.state, "RUNNING")
        root.end = self.ended or 0
        return [root, *(t for t in self.tasks if t.state != "PENDING")]

    def _task(self, task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {
            "taskId": task.id,
            "taskName": task.name,
            "createTime": rfc3339(task.start),
            "startTime": rfc3339(task.start),
            "state": task.state,
        }
        if task.id != self.root_id:
            out["parentTaskId"] = task.parent or self.root_id
        if task.state in ("SUCCEEDED", "FAILED", "CANCELLED") and task.end:
            out["endTime"] = rfc3339(task.end)
        dag = task.children or task.id == self.root_id
        schema = "system.DAGExecution" if dag else "system.ContainerExecution"
        metadata = {f"output:{k}": v for k, v in task.outputs.items()}
        out["execution"] = {
            "name": f"{self.name}/executions/{task.id}",
            "displayName": task.name,
            "schemaTitle": schema,
            **({"metadata": metadata} if metadata else {}),
        }
        return out


def _pipeline_name(body: dict[str, Any]) -> str:
    return ((body.get("pipelineSpec") or {}).get("pipelineInfo") or {}).get("name", "pipeline")


def _dag_order(spec: dict[str, Any]) -> list[str]:
    tasks = ((spec.get("root") or {}).get("dag") or {}).get("tasks") or {}
    order: list[str] = []
    pending = dict(tasks)
    while pending:
        ready = [
            n
            for n, t in pending.items()
            if all(d in order for d in (t or {}).get("dependentTasks", []) if d in tasks)
        ]
        if not ready:  # a cycle: keep the spec's order
            ready = list(pending)
        for name in ready:
            order.append(name)
            del pending[name]
    return order


def _deploys(params: dict[str, Any]) -> bool:
    """The template deploys only PaLM's text-bison (`resolve_deploy_model`: BISON), if asked."""
    return bool(params.get("deploy_model", True)) and params.get("large_model_reference") in (
        "text-bison@001",
        "bison",
    )


def plan(fake: Any, job_name: str, body: dict[str, Any], start: float) -> list[Task]:
    """The tasks a pipeline will run, laid out one after another from `start`."""
    params = (body.get("runtimeConfig") or {}).get("parameterValues") or {}
    if _pipeline_name(body) == RLHF_TEMPLATE_NAME:
        layout = [
            ("validate-pipeline", None),
            ("rlhf-preprocessor", None),
            ("reward-model-graph", ["reward-model-trainer"]),
            ("reinforcement-learning-graph", ["reinforcer"]),
            (
                "llm-deployment-graph",
                ["upload-llm-model"] + (["deploy-llm-model"] if _deploys(params) else []),
            ),
        ]
    else:
        layout = [(name, None) for name in _dag_order(body.get("pipelineSpec") or {})]
    tasks: list[Task] = []
    at = start
    for name, children in layout:
        parent = Task(fake.new_id(), name, at, at)
        tasks.append(parent)
        for child in children or []:
            seconds = fake.task_seconds.get(child, fake.task_seconds["*"])
            tasks.append(Task(fake.new_id(), child, at, at + seconds, parent=parent.id))
            parent.children.append(tasks[-1].id)
            at += seconds
        if not children:
            at += fake.task_seconds.get(name, fake.task_seconds["*"])
        parent.end = at
    return tasks


def _outputs(fake: Any, job: PipelineJob, task: Task) -> None:
    """What the RLHF template's upload and deploy steps produce, registered in the fake."""
    if task.name not in ("upload-llm-model", "deploy-llm-model"):
        return
    params = job.params
    parent = job.name.split("/pipelineJobs/")[0]
    serving = fake.serving
    if task.name == "upload-llm-model":
        display = params.get("model_display_name") or f"{params.get('large_model_reference')}-rlhf"
        model = serving.add_model(
            parent,
            {
                "displayName": display,
                "artifactUri": f"{job.request['runtimeConfig']['gcsOutputDirectory']}/adapter",
                "labels": {"pipeline-job": job.name.rsplit("/", 1)[-1]},
            },
        )
        task.outputs["model_resource_name"] = job.model = model
    else:
        model = job.model
        endpoint = serving.add_endpoint(
            parent, {"displayName": serving.models[model]["displayName"]}
        )
        serving.deploy(
            endpoint,
            {
                "model": model,
                "dedicatedResources": {
                    "machineSpec": {
                        "machineType": "g2-standard-12",
                        "acceleratorType": "NVIDIA_L4",
                        "acceleratorCount": 1,
                    },
                    "minReplicaCount": 1,
                    "maxReplicaCount": 1,
                },
            },
            {},
        )
        task.outputs["endpoint_resource_name"] = endpoint


def sync(fake: Any, job: PipelineJob) -> None:
    """Bring `job` and its tasks up to the fake clock's now."""
    now, d = fake.clock.now(), fake.durations
    if job.state in _TERMINAL:
        return
    if job.state == "PIPELINE_STATE_CANCELLING":
        if now >= (job.cancel_at or now) + d["cancelling"]:
            at = (job.cancel_at or now) + d["cancelling"]
            for task in job.tasks:
                if task.state in ("RUNNING", "CANCELLING"):
                    task.state, task.end = "CANCELLED", at
            job.state, job.ended, job.updated = "PIPELINE_STATE_CANCELLED", at, at
            job.error = rpc_status("CANCELLED", "CANCELED")
        return
    if job.state == "PIPELINE_STATE_PENDING":
        if now < job.created + d["pipeline_pending"]:
            return
        job.state, job.started = "PIPELINE_STATE_RUNNING", job.created + d["pipeline_pending"]
        job.updated = job.started
    for task in job.tasks:
        if task.state in ("SUCCEEDED", "FAILED"):
            continue
        if now < task.start:
            break
        task.state = "RUNNING"
        if task.children or now < task.end:
            if task.children and now >= task.end:
                task.state = "SUCCEEDED"
            continue
        if job.fail_task == task.name or (job.fail_with and job.fail_task is None):
            task.state = "FAILED"
            for parent in job.tasks:
                if task.id in parent.children:
                    parent.state = "FAILED"
            job.error = job.fail_with or rpc_status("INTERNAL", f"Task {task.name} failed.")
            job.state, job.ended, job.updated = "PIPELINE_STATE_FAILED", task.end, task.end
            return
        task.state = "SUCCEEDED"
        _outputs(fake, job, task)
        job.updated = task.end
    if all(t.state == "SUCCEEDED" for t in job.tasks):  # an empty DAG succeeds once started
        end = job.tasks[-1].end if job.tasks else job.started or now
        job.state, job.ended, job.updated = "PIPELINE_STATE_SUCCEEDED", end, end


# --- routes --------------------------------------------------------------------------------------


def _check(body: dict[str, Any], fake: Any) -> None:
    spec = body.get("pipelineSpec")
    if not isinstance(spec, dict) or not spec.get("root"):
        raise ApiError(400, "pipeline_spec with a root is required (or a template_uri).")
    runtime = body.get("runtimeConfig") or {}
    if not runtime.get("gcsOutputDirectory"):
        raise ApiError(400, "runtime_config.gcs_output_directory (the pipeline root) is required.")
    declared = ((spec["root"].get("inputDefinitions") or {}).get("parameters")) or {}
    given = runtime.get("parameterValues") or {}
    for key in given:
        if declared and key not in declared:
            raise ApiError(
                400,
                f"The pipeline parameter {key} is not found in the pipeline job input definitions.",
            )
    for key, definition in declared.items():
        optional = definition.get("isOptional") or "defaultValue" in definition
        if key not in given and not optional:
            raise ApiError(400, f"The pipeline parameter {key} is required but not given.")


def create(ctx: Ctx, project: str, location: str, version: str) -> Any:
    fake = ctx.fake
    body = ctx.body()
    _check(body, fake)
    parent = fake.parent(project, location)
    job_id = ctx.request.query.get("pipelineJobId") or f"{_pipeline_name(body)}-{fake.new_id()}"
    if not _ID.fullmatch(job_id):
        raise ApiError(400, f"Invalid pipeline job id {job_id!r}: use [a-z0-9-], at most 128.")
    name = f"{parent}/pipelineJobs/{job_id}"
    if name in fake.pipeline_jobs:
        raise ApiError(409, f"PipelineJob {name} already exists.")
    now = fake.clock.now()
    tasks = plan(fake, name, body, now + fake.durations["pipeline_pending"])
    job = PipelineJob(name, body, now, tasks, fake.new_id(), updated=now)
    reference = job.params.get("large_model_reference")
    if reference in fake.retired_models:
        job.fail_task = "rlhf-preprocessor"
        job.fail_with = rpc_status(
            "FAILED_PRECONDITION",
            f"The base model {reference} is no longer available for tuning.",
        )
    if fake.next_pipeline_failure is not None:
        job.fail_task, job.fail_with = fake.next_pipeline_failure
        fake.next_pipeline_failure = None
    fake.pipeline_jobs[name] = job
    return ctx.ok(job.render())


def _find(ctx: Ctx, project: str, location: str, job_id: str) -> PipelineJob:
    name = f"{ctx.fake.parent(project, location)}/pipelineJobs/{job_id}"
    job = ctx.fake.pipeline_jobs.get(name)
    if job is None:
        raise ApiError(404, f'The PipelineJob "{name}" does not exist.')
    return job


def get(ctx: Ctx, project: str, location: str, version: str, job_id: str) -> Any:
    job = _find(ctx, project, location, job_id)
    ctx.fake.poll_advance()
    sync(ctx.fake, job)
    return ctx.ok(job.render())


def list_jobs(ctx: Ctx, project: str, location: str, version: str) -> Any:
    fake = ctx.fake
    parent = fake.parent(project, location) + "/"
    terms = []
    text = ctx.request.query.get("filter", "")
    for raw in text.split(" AND ") if text.strip() else []:
        key, _, value = raw.strip().partition("=")
        terms.append((key.strip(), value.strip().strip('"')))
    out = []
    for job in sorted(fake.pipeline_jobs.values(), key=lambda j: j.created, reverse=True):
        if not job.name.startswith(parent):
            continue
        sync(fake, job)
        keep = all(
            job.labels.get(k[7:]) == v
            if k.startswith("labels.")
            else job.request.get("displayName") == v
            if k in ("display_name", "displayName")
            else job.state == v
            for k, v in terms
        )
        if keep:
            out.append(job.render())
    return ctx.ok({"pipelineJobs": out} if out else {})


def cancel(ctx: Ctx, project: str, location: str, version: str, job_id: str) -> Any:
    fake = ctx.fake
    job = _find(ctx, project, location, job_id)
    sync(fake, job)
    if job.state in _TERMINAL:
        raise ApiError(
            400,
            f"Cannot cancel pipeline job {job.name} in state {job.state}.",
            status="FAILED_PRECONDITION",
        )
    if job.state != "PIPELINE_STATE_CANCELLING":
        now = fake.clock.now()
        job.state, job.cancel_at, job.updated = "PIPELINE_STATE_CANCELLING", now, now
        for task in job.tasks:
            if task.state == "RUNNING":
                task.state = "CANCELLING"
    return ctx.ok({})


_P = r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
ROUTES = [
    ("POST", rf"{_P}/pipelineJobs", "pipelineJobs.create", create),
    ("GET", rf"{_P}/pipelineJobs", "pipelineJobs.list", list_jobs),
    ("GET", rf"{_P}/pipelineJobs/(?P<job_id>[^/:]+)", "pipelineJobs.get", get),
    ("POST", rf"{_P}/pipelineJobs/(?P<job_id>[^/:]+):cancel", "pipelineJobs.cancel", cancel),
]
