"""Amazon Bedrock model customization through boto3: S3 upload, customization jobs, events from
the job's sub-phase states, metrics from its output CSVs, Converse and custom-model deletion.

The connection (options, credentials, clients, error translation) is `bedrock_connection.py`;
the serving modes (Provisioned Throughput, on-demand custom model deployments) are
`bedrock_deploy.py`; Bedrock's wire shapes (states, names, CSVs, Converse) are `bedrock_wire.py`.

Job options: `role_arn` and `s3_uri` (required), `job_name`, `custom_model_name`,
`customization_type`, `teacher_model` and `max_response_length` (distillation), `vpc_config`,
`kms_key_id`, `tags`, `multipart_threshold`. docs/providers/bedrock.md has the full table.

>>> backend = BedrockBackend.from_options({"role_arn": "arn:aws:iam::123456789012:role/ft",
...                                        "s3_uri": "s3://my-bucket/ft/"})
>>> backend.names("ftj_0123456789ab", suffix="gozaru")[:2]
('fh-0123456789ab', 'gozaru-0123456789ab')
"""

from __future__ import annotations

import os
import re
from typing import Any

from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue
from finetune_hub.providers.base import (
    Capability,
    DataRef,
    PreparedJob,
    ProviderJob,
    TuningBackend,
)
from finetune_hub.providers.bedrock_connection import BedrockConnection, is_not_found
from finetune_hub.providers.bedrock_wire import (
    CUSTOMIZATION_TYPES,
    JOB_NAME_RE,
    MODEL_NAME_RE,
    ROLE_ARN_RE,
    S3_URI_RE,
    STATE_MAP,
    TUNABLE_TYPES,
    converse_args,
    converse_text,
    file_digest,
    job_status,
    jsonable,
    merge_metrics_csv,
    parse_time,
    phase_events,
    slug,
)
from finetune_hub.status import JobEvent, MetricPoint

_METRICS_FILES = ("step_wise_training_metrics.csv", "validation_metrics.csv")
#: (option, pattern, what it is for, what it must look like): checked before any upload
_REQUIRED = (
    (
        "role_arn",
        ROLE_ARN_RE,
        "the IAM role Bedrock assumes to read the data and write the output "
        "(see docs/providers/bedrock.md)",
        "an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)",
    ),
    (
        "s3_uri",
        S3_URI_RE,
        "(s3://bucket/prefix/) where the data and the job output go",
        "an s3://bucket/prefix/ URI",
    ),
)
_NAMES = (
    ("job_name", JOB_NAME_RE, "jobName"),
    ("custom_model_name", MODEL_NAME_RE, "customModelName"),
)


#: The job name `names()` derives from a local job id (`fh-` + its 12 hex digits).
_MADE_HERE = re.compile(r"^fh-([0-9a-f]{12})$")
_METHOD_OF = {kind: method for method, kind in CUSTOMIZATION_TYPES.items()}


class BedrockBackend(TuningBackend):
    """Amazon Bedrock: S3 data, model customization jobs, sub-phase events, metrics CSVs,
    Converse, custom-model deletion. A custom model answers through a deployment
    (`model.deploy("provisioned-throughput" | "on-demand", confirm_cost=True)`)."""

    name = "bedrock"
    display_name = "Amazon Bedrock"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.METRICS,
            Capability.CHAT,
            Capability.DELETE_MODEL,
            Capability.LIST_JOBS,
        }
    )
    state_map = STATE_MAP
    connection_class = BedrockConnection

    def client(self, service: str) -> Any:
        """The connection's boto3 client for `service`."""
        return self.connection.client(service)

    # -- checks -----------------------------------------------------------------------------------
    def check(self, job: PreparedJob) -> list[Issue]:
        """Options Bedrock needs (role, S3 location, name patterns, a customization type for the
        method, a teacher for distillation), checked before anything is uploaded."""
        o = self.options
        issues: list[Issue] = []
        for key, pattern, purpose, shape in _REQUIRED:
            value = getattr(o, key)
            if not value:
                issues.append(
                    _issue(f"missing_{key}", key, f"Bedrock needs options['{key}']: {purpose}")
                )
            elif not pattern.match(value):
                issues.append(_issue(f"invalid_{key}", key, f"{value!r} is not {shape}"))
        for key, pattern, what in _NAMES:
            value = getattr(o, key)
            if value is not None and (not 1 <= len(value) <= 63 or not pattern.match(value)):
                issues.append(
                    _issue(
                        f"invalid_{key}",
                        key,
                        f"{value!r} is not a valid Bedrock {what} "
                        f"(1-63 characters, pattern {pattern.pattern})",
                    )
                )
        kind = self.customization_type(job.method)
        if o.customization_type and o.customization_type not in CUSTOMIZATION_TYPES.values():
            issues.append(
                _issue(
                    "invalid_customization_type",
                    "customization_type",
                    f"unknown customizationType {o.customization_type!r} "
                    f"(one of {', '.join(CUSTOMIZATION_TYPES.values())})",
                )
            )
        elif kind is None:
            issues.append(
                _issue(
                    "unsupported_method",
                    "customization_type",
                    f"finetune_hub does not submit Bedrock {job.method!r} jobs yet "
                    f"(it submits: {', '.join(CUSTOMIZATION_TYPES)})",
                )
            )
        if kind == "DISTILLATION" and not o.teacher_model:
            issues.append(
                _issue(
                    "missing_teacher_model",
                    "teacher_model",
                    "distillation needs options['teacher_model'] "
                    "(the teacher model id or inference profile)",
                )
            )
        return issues

    def preflight(self, job: PreparedJob) -> list[Issue]:
        """The model offered and accessible, the caller's and the role's permissions (IAM policy
        simulation), the bucket reachable, before any upload: see `bedrock_preflight.py`."""
        from finetune_hub.providers.bedrock_preflight import preflight

        return preflight(self, job)

    def customization_type(self, method: str) -> str | None:
        """Bedrock's customizationType for `method`: options['customization_type'], else the
        method's own (None when finetune_hub has none for it)."""
        return self.options.customization_type or CUSTOMIZATION_TYPES.get(method)

    # -- files ------------------------------------------------------------------------------------
    def _bucket_prefix(self, operation: str) -> tuple[str, str]:
        m = S3_URI_RE.match(self.options.s3_uri or "")
        if not m:
            raise ProviderError(
                self.name,
                operation,
                "options['s3_uri'] must be s3://bucket/prefix/",
                retryable=False,
            )
        prefix = m.group(2)
        return m.group(1), (prefix if not prefix or prefix.endswith("/") else prefix + "/")

    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        """Upload to `<s3_uri><job id>/<purpose>.jsonl` with a SHA-256 checksum (multipart above
        `multipart_threshold`, 8 MiB by default). An identical object there is reused; a
        different one is never replaced."""
        from boto3.s3.transfer import TransferConfig

        bucket, prefix = self._bucket_prefix("upload")
        key = f"{prefix}{job_id}/{purpose}.jsonl"
        uri = f"s3://{bucket}/{key}"
        digest = file_digest(path)
        size = os.path.getsize(path)
        existing = self._head(bucket, key)
        if existing is not None:
            theirs = (existing.get("Metadata") or {}).get("sha256")
            if theirs != digest:
                raise ProviderError(
                    self.name,
                    "upload",
                    f"{uri} already exists with different content (sha256 "
                    f"{theirs or 'unknown'}, ours {digest}); not overwriting it: use another "
                    "s3_uri or delete the object",
                    retryable=False,
                )
            return DataRef(purpose=purpose, id=uri, path=str(path), bytes=size)
        threshold = self.options.multipart_threshold
        config = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=max(threshold, 5 * 1024 * 1024),
            max_concurrency=4,
        )
        extra = {
            "Metadata": {"sha256": digest},
            "ChecksumAlgorithm": "SHA256",
            "ContentType": "application/jsonl",
        }
        s3 = self.client("s3")
        self.call(
            "upload", lambda: s3.upload_file(path, bucket, key, ExtraArgs=extra, Config=config)
        )
        return DataRef(purpose=purpose, id=uri, path=str(path), bytes=size)

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        s3 = self.client("s3")
        try:
            return self.call("upload", lambda: s3.head_object(Bucket=bucket, Key=key))
        except ProviderError as exc:
            if is_not_found(exc):
                return None
            raise

    # -- jobs -------------------------------------------------------------------------------------
    def names(self, job_id: str, suffix: str | None = None) -> tuple[str, str, str]:
        """(jobName, customModelName, clientRequestToken) for the local job id: options'
        `job_name` / `custom_model_name` when set, else derived from the id (and `suffix`)."""
        core = slug(job_id.removeprefix("ftj_"))
        job_name = self.options.job_name or f"fh-{core}"[:63]
        default_model = f"{slug(suffix)}-{core}" if suffix else f"fh-{core}"
        model_name = self.options.custom_model_name or default_model[-63:].lstrip("-_")
        token = slug(f"fh-{job_id}")[:256]
        return job_name, model_name, token

    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        o = self.options
        bucket, prefix = self._bucket_prefix("create")
        job_name, model_name, token = self.names(job.job_id, job.suffix)
        kind = self.customization_type(job.method) or "FINE_TUNING"
        kwargs: dict[str, Any] = {
            "jobName": job_name,
            "customModelName": model_name,
            "roleArn": o.role_arn,
            "clientRequestToken": token,
            "baseModelIdentifier": job.model_id,
            "customizationType": kind,
            "trainingDataConfig": {"s3Uri": refs["training"].id},
            "outputDataConfig": {"s3Uri": f"s3://{bucket}/{prefix}{job.job_id}/output/"},
            "hyperParameters": {k: _wire_string(v) for k, v in job.hyperparameters.items()},
        }
        if "validation" in refs:
            kwargs["validationDataConfig"] = {"validators": [{"s3Uri": refs["validation"].id}]}
        if kind == "DISTILLATION":
            teacher = {
                "teacherModelIdentifier": o.teacher_model,
                "maxResponseLengthForInference": o.max_response_length,
            }
            kwargs["customizationConfig"] = {"distillationConfig": {"teacherModelConfig": teacher}}
        if o.vpc_config:
            kwargs["vpcConfig"] = o.vpc_config
        if o.kms_key_id:
            kwargs["customModelKmsKeyId"] = o.kms_key_id
        if o.tags:
            tags = [{"key": str(k), "value": str(v)} for k, v in o.tags.items()]
            kwargs["jobTags"] = tags
            kwargs["customModelTags"] = tags
        bedrock = self.client("bedrock")
        created = self.call("create", lambda: bedrock.create_model_customization_job(**kwargs))
        return self.get(created["jobArn"])

    def find(self, job_id: str) -> ProviderJob | None:
        """The job named after `job_id` (exact name match), if an earlier create made it."""
        job_name, _, _ = self.names(job_id)
        bedrock = self.client("bedrock")
        page = self.call(
            "find",
            lambda: bedrock.list_model_customization_jobs(nameContains=job_name, maxResults=100),
        )
        for summary in page.get("modelCustomizationJobSummaries", []):
            if summary.get("jobName") == job_name:
                return self.get(summary["jobArn"])
        return None

    def get(self, provider_job_id: str) -> ProviderJob:
        return self._to_job(self._describe(provider_job_id, "get"))

    def _describe(self, provider_job_id: str, operation: str) -> dict[str, Any]:
        """The job as Bedrock describes it, as plain data; errors name `operation`."""
        bedrock = self.client("bedrock")
        raw = self.call(
            operation, lambda: bedrock.get_model_customization_job(jobIdentifier=provider_job_id)
        )
        return jsonable(raw)

    def cancel(self, provider_job_id: str) -> None:
        bedrock = self.client("bedrock")
        self.call(
            "cancel", lambda: bedrock.stop_model_customization_job(jobIdentifier=provider_job_id)
        )

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """One page of ListModelCustomizationJobs, newest first; the cursor is its nextToken."""
        kwargs: dict[str, Any] = {
            "maxResults": limit,
            "sortBy": "CreationTime",
            "sortOrder": "Descending",
        }
        if after is not None:
            kwargs["nextToken"] = after
        bedrock = self.client("bedrock")
        page = self.call("list_jobs", lambda: bedrock.list_model_customization_jobs(**kwargs))
        summaries = jsonable(page.get("modelCustomizationJobSummaries", []))
        return [self._summary_to_job(s) for s in summaries], page.get("nextToken") or None

    def _summary_to_job(self, summary: dict[str, Any]) -> ProviderJob:
        status = summary.get("status")
        made_here = _MADE_HERE.match(summary.get("jobName") or "")
        base = summary.get("baseModelArn") or ""
        return ProviderJob(
            id=summary["jobArn"],
            status=job_status(status, summary.get("statusDetails")),
            raw_status=status,
            fine_tuned_model=summary.get("customModelArn") if status == "Completed" else None,
            created_at=parse_time(summary.get("creationTime")),
            finished_at=parse_time(summary.get("endTime")),
            raw=summary,
            base_model=base.rsplit("/", 1)[-1] or None,
            method=_METHOD_OF.get(summary.get("customizationType") or ""),
            local_job_id=f"ftj_{made_here.group(1)}" if made_here else None,
        )

    def _to_job(self, raw: dict[str, Any]) -> ProviderJob:
        status = raw.get("status")
        failed = status == "Failed"
        return ProviderJob(
            id=raw["jobArn"],
            status=job_status(status, raw.get("statusDetails")),
            raw_status=status,
            fine_tuned_model=raw.get("outputModelArn") if status == "Completed" else None,
            error=(raw.get("failureMessage") or "the job failed") if failed else None,
            created_at=parse_time(raw.get("creationTime")),
            finished_at=parse_time(raw.get("endTime")),
            raw=raw,
        )

    # -- events and metrics -----------------------------------------------------------------------
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        """One event per sub-phase state seen now (validation, data processing, training) and
        one for the job's end, from `statusDetails`: Bedrock keeps no event log. Ids are
        `<phase>:<status>`."""
        found = [JobEvent(**e) for e in phase_events(self._describe(provider_job_id, "events"))]
        ids = [e.id for e in found]
        return found[ids.index(after) + 1 :] if after in ids else found

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        """Per-step metrics from `step_wise_training_metrics.csv` and `validation_metrics.csv`
        anywhere under the job's output prefix, merged by step."""
        job = self._describe(provider_job_id, "metrics")
        m = S3_URI_RE.match((job.get("outputDataConfig") or {}).get("s3Uri", ""))
        if not m:
            return []
        bucket, prefix = m.group(1), m.group(2)
        s3 = self.client("s3")
        points: dict[int, dict[str, Any]] = {}
        for key in sorted(self._list_keys(bucket, prefix)):
            name = key.rsplit("/", 1)[-1]
            if name not in _METRICS_FILES:
                continue
            body = self.call(
                "metrics", lambda k=key: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
            )
            merge_metrics_csv(points, body.decode("utf-8"), validation=name.startswith("valid"))
        return [MetricPoint(**points[s]) for s in sorted(points)]

    def _list_keys(self, bucket: str, prefix: str) -> list[str]:
        s3 = self.client("s3")
        keys: list[str] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            page = self.call("metrics", lambda a=args: s3.list_objects_v2(**a))
            keys += [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return keys

    # -- using the model --------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One Converse turn on `model` as it is (a model id or ARN Bedrock serves without a
        deployment, an inference profile, a Provisioned Throughput ARN). A custom model usually
        needs a deployment first: `model.deploy(...)`, then `deployment.chat(...)`."""
        return self.converse(model, messages, **kwargs)

    def converse(self, model_id: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One bedrock-runtime Converse call; returns the reply text. OpenAI-style messages are
        converted (system messages to `system`, consecutive turns of one role merged)."""
        runtime = self.client("bedrock-runtime")
        args = converse_args(model_id, messages, **kwargs)
        return converse_text(self.call("chat", lambda: runtime.converse(**args)))

    def delete_model(self, model: str) -> None:
        """Delete the custom model (its deployments first); one already gone is not an error."""
        bedrock = self.client("bedrock")
        try:
            self.call("delete_model", lambda: bedrock.delete_custom_model(modelIdentifier=model))
        except ProviderError as exc:
            if not is_not_found(exc):
                raise

    def tunable_models(self) -> list[str] | None:
        """The foundation model ids Bedrock lists for fine-tuning, continued pre-training or
        distillation in the connection's region (`list_foundation_models(byCustomizationType)`).

        >>> BedrockBackend.from_options({}).tunable_models()  # doctest: +SKIP
        ['amazon.nova-lite-v1:0:300k', 'amazon.titan-text-lite-v1:0:4k', ...]
        """
        bedrock = self.client("bedrock")
        found: set[str] = set()
        for kind in TUNABLE_TYPES:
            page = self.call(
                "tunable_models",
                lambda k=kind: bedrock.list_foundation_models(byCustomizationType=k),
            )
            found.update(m["modelId"] for m in page.get("modelSummaries", []) if m.get("modelId"))
        return sorted(found)


def _issue(code: str, key: str, message: str) -> Issue:
    return Issue(code=code, field=f"options.{key}", message=message)


def _wire_string(value: Any) -> str:
    """Bedrock's hyperParameters are a string map: booleans as 'true'/'false'."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
