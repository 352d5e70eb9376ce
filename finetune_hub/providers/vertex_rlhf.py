"""RLHF on Vertex AI with three data sets: checks, the conversion to Gemini preference tuning, and
Google's RLHF pipeline run as a Vertex AI `PipelineJob`.

The data sets of a `method="rlhf"` job (docs/providers/vertex.md):

- `prompt`: prompts for reinforcement learning, `{"input_text"}` records;
- `preference`: human preferences for the reward model,
  `{"input_text", "candidate_0", "candidate_1", "choice"}`;
- `eval` (optional): other prompts, or preference records, to evaluate on.

Name them in `datasets={"prompt": ..., "preference": ..., "eval": ...}`; `training_file` stands
for whichever of prompt/preference is not named (so `training_file=prefs, datasets={"prompt":
prompts}` works too). Each is validated against its own format, then across: eval prompts must
not appear in the training prompts, and a pair whose two candidates are identical is flagged.

Today's way to the same goal is Gemini preference tuning: `preference_to_gemini(prefs, out)`
turns the human preferences into Gemini preference data in one call (`candidate_{choice}` is
preferred, the other is not), for a `method="dpo"` job on gemini-2.5-flash. The pipeline itself
(google-cloud-pipeline-components' `rlhf_pipeline`, template `rlhf-train-template`) still runs
for the base models its table supports (t5-small/-large/-xl/-xxl, llama-2-7b/-13b(-chat)); PaLM's
text-bison@001 is retired. Its tuning steps run on a2-ultragpu-8g (8 x NVIDIA A100 80GB) in
us-central1 (accelerator_type="GPU") or on 32 TPU v3 cores in europe-west4 ("TPU"), as the
template's `resolve_machine_spec` says; the job states that cost and needs
`options={"confirm_cost": True}` before it is submitted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from finetune_hub.data.reader import JsonlReader
from finetune_hub.errors import ConversionError, ProviderError
from finetune_hub.issues import Issue, Severity
from finetune_hub.providers.base import DataRef, PreparedJob, ProviderJob
from finetune_hub.status import JobEvent, JobStatus

ROLES = ("prompt", "preference", "eval")
_FORMATS = {"prompt": "rlhf_prompt", "preference": "rlhf_preference", "eval": None}
#: The template's two training phases, by task name, for events.
PHASES = {"reward-model-trainer": "reward model", "reinforcer": "reinforcement learning"}
PIPELINE_STATES = {
    "PIPELINE_STATE_QUEUED": JobStatus.QUEUED,
    "PIPELINE_STATE_PENDING": JobStatus.QUEUED,
    "PIPELINE_STATE_RUNNING": JobStatus.RUNNING,
    "PIPELINE_STATE_PAUSED": JobStatus.PAUSED,
    "PIPELINE_STATE_CANCELLING": JobStatus.CANCELLING,
    "PIPELINE_STATE_SUCCEEDED": JobStatus.SUCCEEDED,
    "PIPELINE_STATE_FAILED": JobStatus.FAILED,
    "PIPELINE_STATE_CANCELLED": JobStatus.CANCELLED,
}
#: accelerator_type -> (machine, what it is, region) from the template's resolve_machine_spec.
MACHINES = {
    "GPU": ("a2-ultragpu-8g", "8 x NVIDIA A100 80GB", "us-central1"),
    "TPU": ("cloud-tpu", "32 TPU v3 cores", "europe-west4"),
}


def pipeline_price(accelerator_type: str) -> tuple[float | None, str]:
    """The pipeline's hourly machine rate for `accelerator_type` and its citation (source, read
    date), from the rules data: `training_usd_per_hour` of the rlhf `[[pricing]]` entry in
    rules/vertex.toml; (None, "") where no source gives one.

    >>> pipeline_price("GPU")[0]
    45.8
    """
    from finetune_hub.rules.catalog import default_catalog

    values, prov = default_catalog().pricing("vertex", None, "rlhf")
    rates = {k.lower(): v for k, v in values.get("training_usd_per_hour", {}).items()}
    price = rates.get(accelerator_type.lower())
    cited = prov["training_usd_per_hour"].cite() if "training_usd_per_hour" in prov else ""
    return (None, "") if price is None else (float(price), cited)


# -- the data sets ------------------------------------------------------------------------------
def dataset_paths(job: PreparedJob) -> tuple[dict[str, str], list[Issue]]:
    """role -> (purpose of the uploaded file, i.e. its `refs` key), and problems naming roles."""
    issues = [
        Issue(
            code="unknown_dataset",
            field=f"datasets.{name}",
            message=f"Vertex RLHF takes the data sets {', '.join(ROLES)}; not {name!r}",
        )
        for name in job.datasets
        if name not in ROLES
    ]
    roles = {role: role for role in ROLES if role in job.datasets}
    missing = [r for r in ("prompt", "preference") if r not in roles]
    if len(missing) == 2:
        issues.append(
            Issue(
                code="missing_dataset",
                field="datasets",
                message="RLHF needs a prompt and a preference data set: training_file=<preferences>, "
                "datasets={'prompt': <prompts>} (eval is optional)",
            )
        )
    elif missing:
        roles[missing[0]] = "training"
    return roles, issues


def _path(job: PreparedJob, purpose: str) -> str:
    return job.training_file if purpose == "training" else job.datasets[purpose]


def _prompt_text(record: dict[str, Any]) -> str | None:
    if isinstance(record.get("input_text"), str):
        return record["input_text"].strip()
    messages = record.get("messages")
    if isinstance(messages, list):
        return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return None


def dataset_issues(job: PreparedJob) -> list[Issue]:
    """Every named data set against its own format, then the checks across them."""
    from finetune_hub.checks.validation import validate

    roles, issues = dataset_paths(job)
    if any(i.code == "missing_dataset" for i in issues):
        return issues
    for role, purpose in roles.items():
        if purpose == "training" or _path(job, purpose) == job.training_file:
            continue  # the job layer has validated training_file already
        report = validate(
            _path(job, purpose), job.provider, job.base_model, "rlhf", format=_FORMATS[role]
        )
        for issue in [*report.errors, *report.warnings]:
            if issue.file is None and issue.line is None:
                continue  # about the model or the job, already in the job's own report
            issues.append(issue.model_copy(update={"message": f"{role} data set: {issue.message}"}))
    seen: dict[str, int] = {}
    for role in ("prompt", "preference"):
        for line, _raw, record in JsonlReader(_path(job, roles[role])):
            text = _prompt_text(record)
            if text:
                seen.setdefault(text, line)
            if role == "preference" and record.get("candidate_0") == record.get("candidate_1"):
                issues.append(_identical(_path(job, roles[role]), line))
    if "eval" in roles:
        eval_path = _path(job, roles["eval"])
        overlap = []
        for line, _raw, record in JsonlReader(eval_path):
            if _prompt_text(record) in seen:
                overlap.append(line)
            if "candidate_0" in record and record.get("candidate_0") == record.get("candidate_1"):
                issues.append(_identical(eval_path, line))
        if overlap:
            lines = ", ".join(map(str, overlap[:10])) + (" ..." if len(overlap) > 10 else "")
            issues.append(
                Issue(
                    code="eval_overlaps_training",
                    file=eval_path,
                    line=overlap[0],
                    message=f"{len(overlap)} eval prompt(s) also appear in the training prompts "
                    f"(lines {lines}); evaluate on prompts the model has not trained on",
                )
            )
    return issues


def _identical(path: str, line: int) -> Issue:
    return Issue(
        code="identical_candidates",
        severity=Severity.WARNING,
        file=path,
        line=line,
        field="candidate_1",
        message="candidate_0 and candidate_1 are identical: the pair teaches the reward model "
        "nothing",
    )


def cost_issue(accelerator_type: str, confirmed: bool) -> Issue:
    """The pipeline's hourly machine cost, stated before it starts: an error until confirmed."""
    machine, what, region = MACHINES.get(accelerator_type.upper(), ("?", accelerator_type, "?"))
    price, cited = pipeline_price(accelerator_type)
    rate = (
        f"about ${price:.2f} per hour ({cited})"
        if price is not None
        else "a rate finetune_hub does not know"
    )
    text = (
        f"the RLHF pipeline trains the reward model and then the policy on {machine} "
        f"({what}, {region}) at {rate}, for as long as its steps take"
    )
    if confirmed:
        return Issue(code="pipeline_cost", severity=Severity.WARNING, message=text)
    return Issue(
        code="cost_confirmation_required",
        field="options.confirm_cost",
        message=f"{text}; pass options={{'confirm_cost': True}} to submit it",
    )


def preference_to_gemini(src: str | Path, dst: str | Path) -> Any:
    """Human preferences (`input_text`, `candidate_0/1`, `choice`) as Gemini preference data, in
    one call: `candidate_{choice}` becomes the completion with score 1, the other score 0.
    Refuses (`ConversionError`) when any record would be skipped or lose a field.

    >>> preference_to_gemini("prefs.jsonl", "gemini_prefs.jsonl")  # doctest: +SKIP
    """
    from finetune_hub.data.convert import convert

    summary = convert(src, dst, to="gemini_preference", source_format="rlhf_preference")
    if not summary.lossless:
        raise ConversionError(
            f"{src}: not converted losslessly to Gemini preference data:\n{summary}"
        )
    return summary


# -- the pipeline --------------------------------------------------------------------------------
def pipeline_id(job_id: str) -> str:
    """The PipelineJob id for a local job id ([a-z0-9-], at most 128): the idempotency key.

    >>> pipeline_id("ftj_1A2b")
    'fh-ftj-1a2b'
    """
    return ("fh-" + re.sub(r"[^a-z0-9-]", "-", job_id.lower()))[:128]


def load_template(connection: Any, uri: str) -> dict[str, Any]:
    """The compiled pipeline spec at `uri` (Artifact Registry https, gs:// or a local file)."""
    import yaml

    if uri.startswith("gs://"):
        bucket, _, name = uri[5:].partition("/")
        text = connection.call(
            "create", lambda: connection.storage.bucket(bucket).blob(name).download_as_text()
        )
    elif uri.startswith(("https://", "http://")):
        from google.auth.transport.requests import AuthorizedSession

        session = AuthorizedSession(connection.credentials)

        def fetch() -> str:
            response = session.get(uri, timeout=connection.options.timeout)
            response.raise_for_status()
            return response.text

        text = connection.call("create", fetch)
    else:
        text = Path(uri).read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    if isinstance(spec, dict) and "pipelineSpec" in spec:  # a whole PipelineJob file
        spec = spec["pipelineSpec"]
    if not isinstance(spec, dict) or "root" not in spec:
        raise ProviderError(
            "vertex", "create", f"{uri} is not a compiled pipeline spec", retryable=False
        )
    return spec


def pipeline_body(
    connection: Any, job: PreparedJob, refs: dict[str, DataRef], spec: dict[str, Any]
) -> dict[str, Any]:
    """The PipelineJob resource for the RLHF template, parameters checked against the spec."""
    o = connection.options
    roles, _ = dataset_paths(job)
    values: dict[str, Any] = {
        "prompt_dataset": refs[roles["prompt"]].id,
        "preference_dataset": refs[roles["preference"]].id,
        "large_model_reference": job.model_id,
        "model_display_name": job.suffix or f"finetune-hub-{job.job_id}",
        "deploy_model": o.deploy_model,
        "accelerator_type": o.accelerator_type,
        "project": connection.project,
        "location": connection.location,
        **job.hyperparameters,
    }
    if "eval" in roles:
        values["eval_dataset"] = refs[roles["eval"]].id
    if o.instruction:
        values["instruction"] = o.instruction
    declared = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    unknown = sorted(k for k in values if declared and k not in declared)
    if unknown:
        raise ProviderError(
            "vertex",
            "create",
            f"the pipeline template {o.rlhf_template} takes no parameter(s) {unknown}",
            retryable=False,
        )
    bucket, prefix = connection.gcs_prefix()
    root = o.pipeline_root or f"gs://{bucket}/{prefix + '/' if prefix else ''}pipeline-root"
    body: dict[str, Any] = {
        "display_name": f"finetune-hub-{job.job_id}"[:128],
        "pipeline_spec": spec,
        "runtime_config": {"gcs_output_directory": root, "parameter_values": values},
        "labels": {**o.labels, "finetune-hub-job": pipeline_id(job.job_id)[3:63]},
    }
    if o.rlhf_template.startswith("https://"):
        body["template_uri"] = o.rlhf_template
    if o.service_account:
        body["service_account"] = o.service_account
    return body


def to_provider_job(pipeline: Any, state_map: Any) -> ProviderJob:
    """A GAPIC `PipelineJob` as a `ProviderJob`; the model is the upload step's output."""
    raw_state = pipeline.state.name
    model = None
    for task in pipeline.job_detail.task_details:
        output = dict(task.execution.metadata or {}).get("output:model_resource_name")
        if output:
            model = str(output).strip()
    error = pipeline.error.message if pipeline.error and pipeline.error.message else None
    return ProviderJob(
        id=pipeline.name,
        status=state_map(raw_state),
        raw_status=raw_state,
        fine_tuned_model=model if raw_state == "PIPELINE_STATE_SUCCEEDED" else None,
        error=error,
        error_code=str(pipeline.error.code) if error else None,
        created_at=_time(pipeline.create_time),
        finished_at=_time(pipeline.end_time),
        raw=json.loads(type(pipeline).to_json(pipeline)),
    )


def pipeline_events(pipeline: Any) -> list[JobEvent]:
    """Task starts and ends as events, oldest first; the two training phases are `type="phase"`."""
    events = []
    for task in pipeline.job_detail.task_details:
        phase = PHASES.get(task.task_name)
        kind = "phase" if phase else "task"
        label = f"{phase} phase ({task.task_name})" if phase else f"task {task.task_name}"
        data = {"task": task.task_name, **({"phase": phase} if phase else {})}
        start = _time(task.start_time)
        if start:
            events.append(
                JobEvent(
                    id=f"{task.task_id}:start",
                    created_at=start,
                    message=f"{label} started",
                    type=kind,
                    data=data,
                )
            )
        end = _time(task.end_time)
        if end:
            state = task.state.name.lower()
            level = "error" if state == "failed" else "info"
            events.append(
                JobEvent(
                    id=f"{task.task_id}:{state}",
                    created_at=end,
                    level=level,
                    message=f"{label} {state}",
                    type=kind,
                    data=data,
                )
            )
    return sorted(events, key=lambda e: (e.created_at, e.id))


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value if value.year > 1970 else None
    return None
