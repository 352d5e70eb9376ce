"""Amazon Bedrock model customization through boto3: S3 upload, customization jobs, metrics from
the job's output files, provisioned throughput / on-demand deployments and Converse.

Connection: `options` `region` (else `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1),
`profile`, `endpoint_url` (boto3 also honours `AWS_ENDPOINT_URL` itself). Credentials come from
boto3's usual chain and are never stored. botocore's own retries are off
(`total_max_attempts=1`; botocore reads `max_attempts` as retries after the first try, so
`max_attempts=1` would still retry once): the one retry policy is finetune_hub's
`call_with_retries`, so a retried create always checks `find` first.

Job options: `role_arn` and `s3_uri` (required), `job_name`, `custom_model_name`,
`customization_type`, `teacher_model` (distillation), `vpc_config`, `kms_key_id`, `tags`.
Deployment code (provisioned throughput, on-demand deployments, prices) is in `bedrock_deploy.py`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)

from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.issues import Issue
from finetune_hub.providers.base import Capability, DataRef, Provider, ProviderError, ProviderJob
from finetune_hub.providers.bedrock_deploy import BedrockDeployMixin
from finetune_hub.providers.bedrock_util import (  # noqa: F401 - re-exported
    _PHASES,
    _STORED,
    BEDROCK_STATES,
    CUSTOMIZATION_TYPES,
    JOB_NAME_RE,
    MODEL_NAME_RE,
    NOT_FOUND_CODES,
    ROLE_ARN_RE,
    S3_URI_RE,
    STATE_MAP,
    TOKEN_RE,
    _error_code,
    _file_digest,
    _http_status,
    _jsonable,
    _parse_time,
    _slug,
    client_error,
    job_status,
    merge_metrics_csv,
)
from finetune_hub.providers.openai import _plain_jsonl
from finetune_hub.rules import resolve
from finetune_hub.status import JobEvent, MetricPoint

if TYPE_CHECKING:
    from finetune_hub.jobs.spec import JobSpec

T = TypeVar("T")


class BedrockProvider(BedrockDeployMixin, Provider):
    """Amazon Bedrock: S3 data, model customization jobs, metrics CSVs, PT / on-demand, Converse."""

    name = "bedrock"
    display_name = "Amazon Bedrock"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.METRICS,
            Capability.CHAT,
            Capability.DEPLOY,
            Capability.DELETE_MODEL,
        }
    )
    state_map = STATE_MAP

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._clients: dict[str, Any] = {}
        self._session: Any = None

    # -- connection -------------------------------------------------------------------------------
    @property
    def region(self) -> str:
        return (
            self.options.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )

    def client(self, service: str) -> Any:
        """A boto3 client (`bedrock`, `s3`, `bedrock-runtime`), made on first use."""
        if service not in self._clients:
            if self._session is None:
                self._session = boto3.session.Session(
                    profile_name=self.options.get("profile"), region_name=self.region
                )
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=self.options.get("timeout", 60),
                read_timeout=self.options.get("timeout", 60),
            )
            kwargs: dict[str, Any] = {"config": config}
            if self.options.get("endpoint_url"):
                kwargs["endpoint_url"] = self.options["endpoint_url"]
            self._clients[service] = self._session.client(service, **kwargs)
        return self._clients[service]

    def credentials_source(self) -> dict[str, str]:
        if "profile" in self.options:
            return {"aws": f"profile:{self.options['profile']}"}
        return {
            "aws": "env:AWS_ACCESS_KEY_ID"
            if "AWS_ACCESS_KEY_ID" in os.environ
            else "boto3 default chain"
        }

    def stored_options(self) -> dict[str, Any]:
        return {k: self.options[k] for k in _STORED if k in self.options}

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one boto3 call, turning botocore errors into `ProviderError`."""
        try:
            return fn()
        except ClientError as exc:
            raise client_error(self.name, operation, exc) from None
        except (EndpointConnectionError, ConnectionClosedError) as exc:
            raise ProviderError(
                self.name, operation, f"connection failed: {exc}", retryable=True
            ) from None
        except BotoCoreError as exc:
            raise ProviderError(self.name, operation, str(exc), retryable=False) from None

    # -- checks -----------------------------------------------------------------------------------
    def check(self, spec: JobSpec) -> list[Any]:
        """Options Bedrock needs, checked before anything is uploaded."""
        o = {**self.options, **spec.options}
        issues: list[Issue] = []
        required = (
            (
                "role_arn",
                ROLE_ARN_RE,
                "the IAM role Bedrock assumes to read the data and write the output (see docs/providers/bedrock.md)",
                "an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)",
            ),
            (
                "s3_uri",
                S3_URI_RE,
                "(s3://bucket/prefix/) where the data and the job output go",
                "an s3://bucket/prefix/ URI",
            ),
        )
        for key, pattern, purpose, shape in required:
            value = o.get(key)
            if not value:
                issues.append(
                    Issue(
                        code=f"missing_{key}",
                        field=f"options.{key}",
                        message=f"Bedrock needs options['{key}']: {purpose}",
                    )
                )
            elif not pattern.match(value):
                issues.append(
                    Issue(
                        code=f"invalid_{key}",
                        field=f"options.{key}",
                        message=f"{value!r} is not {shape}",
                    )
                )
        for key, pattern, what in (
            ("job_name", JOB_NAME_RE, "jobName"),
            ("custom_model_name", MODEL_NAME_RE, "customModelName"),
        ):
            value = o.get(key)
            if value is not None and (not 1 <= len(value) <= 63 or not pattern.match(value)):
                issues.append(
                    Issue(
                        code=f"invalid_{key}",
                        field=f"options.{key}",
                        message=f"{value!r} is not a valid Bedrock {what} (1-63 characters, pattern {pattern.pattern})",
                    )
                )
        if spec.method == "distillation" and not o.get("teacher_model"):
            issues.append(
                Issue(
                    code="missing_teacher_model",
                    field="options.teacher_model",
                    message="distillation needs options['teacher_model'] (the teacher model id or inference profile)",
                )
            )
        if o.get("customization_type") and o["customization_type"] not in (
            "FINE_TUNING",
            "CONTINUED_PRE_TRAINING",
            "DISTILLATION",
        ):
            issues.append(
                Issue(
                    code="invalid_customization_type",
                    field="options.customization_type",
                    message=f"unknown customizationType {o['customization_type']!r}",
                )
            )
        return issues

    # -- files ------------------------------------------------------------------------------------
    def _bucket_prefix(self) -> tuple[str, str]:
        m = S3_URI_RE.match(self.options.get("s3_uri") or "")
        if not m:
            raise ProviderError(
                self.name,
                "upload",
                "options['s3_uri'] must be s3://bucket/prefix/",
                retryable=False,
            )
        prefix = m.group(2)
        return m.group(1), (prefix if not prefix or prefix.endswith("/") else prefix + "/")

    def upload(self, path: str, purpose: str, job_id: str | None = None) -> DataRef:
        """Upload to `<s3_uri><job id>/<purpose>.jsonl` with a SHA-256 checksum (multipart above
        `multipart_threshold`, 8 MiB by default). Reuses an identical object; refuses to replace a
        different one."""
        from boto3.s3.transfer import TransferConfig

        bucket, prefix = self._bucket_prefix()
        folder = job_id or self.options.get("job_id") or _file_digest(path)[:16]
        key = f"{prefix}{folder}/{purpose}.jsonl"
        s3 = self.client("s3")
        with _plain_jsonl(path) as plain:
            digest = _file_digest(plain)
            size = os.path.getsize(plain)
            existing = self._head(bucket, key)
            if existing is not None:
                theirs = (existing.get("Metadata") or {}).get("sha256")
                if theirs != digest:
                    raise ProviderError(
                        self.name,
                        "upload",
                        f"s3://{bucket}/{key} already exists with different content (sha256 {theirs or 'unknown'}, ours {digest}); not overwriting it: use another s3_uri or delete the object",
                        retryable=False,
                    )
                return DataRef(
                    purpose=purpose, id=f"s3://{bucket}/{key}", path=str(path), bytes=size
                )
            threshold = int(self.options.get("multipart_threshold", 8 * 1024 * 1024))
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
            self.call(
                "upload", lambda: s3.upload_file(plain, bucket, key, ExtraArgs=extra, Config=config)
            )
        return DataRef(purpose=purpose, id=f"s3://{bucket}/{key}", path=str(path), bytes=size)

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            return self.client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in NOT_FOUND_CODES or _http_status(exc) == 404:
                return None
            raise client_error(self.name, "upload", exc) from None

    # -- jobs -------------------------------------------------------------------------------------
    def names(self, spec: JobSpec | None, idempotency_key: str) -> tuple[str, str, str]:
        """(jobName, customModelName, clientRequestToken) for the local job id."""
        core = _slug(idempotency_key.removeprefix("ftj_"))
        job_name = self.options.get("job_name") or f"fh-{core}"[:63]
        suffix = _slug(spec.suffix) if spec is not None and spec.suffix else ""
        model_name = self.options.get("custom_model_name") or (
            f"{suffix}-{core}" if suffix else f"fh-{core}"
        )[-63:].lstrip("-_")
        token = _slug(f"fh-{idempotency_key}")[:256]
        return job_name, model_name, token

    def create(self, spec: JobSpec, refs: dict[str, DataRef], idempotency_key: str) -> ProviderJob:
        rules, _ = resolve(self.name, spec.base_model, spec.method)
        o = {**self.options, **spec.options}
        role = o.get("role_arn")
        if not role or not ROLE_ARN_RE.match(role):
            raise ProviderError(
                self.name, "create", "options['role_arn'] must be an IAM role ARN", retryable=False
            )
        bucket, prefix = self._bucket_prefix()
        job_name, model_name, token = self.names(spec, idempotency_key)
        values = {
            k: str(v)
            for k, v in check_hyperparameters(spec.hyperparameters, rules).provider_values.items()
        }
        kwargs: dict[str, Any] = {
            "jobName": job_name,
            "customModelName": model_name,
            "roleArn": role,
            "clientRequestToken": token,
            "baseModelIdentifier": rules.model_id or spec.base_model,
            "customizationType": o.get("customization_type")
            or CUSTOMIZATION_TYPES.get(spec.method, "FINE_TUNING"),
            "trainingDataConfig": {"s3Uri": refs["training"].id},
            "outputDataConfig": {"s3Uri": f"s3://{bucket}/{prefix}{idempotency_key}/output/"},
            "hyperParameters": values,
        }
        if "validation" in refs:
            kwargs["validationDataConfig"] = {"validators": [{"s3Uri": refs["validation"].id}]}
        if kwargs["customizationType"] == "DISTILLATION":
            teacher = {
                "teacherModelIdentifier": o["teacher_model"],
                "maxResponseLengthForInference": int(o.get("max_response_length", 1000)),
            }
            kwargs["customizationConfig"] = {"distillationConfig": {"teacherModelConfig": teacher}}
        if o.get("vpc_config"):
            kwargs["vpcConfig"] = o["vpc_config"]
        if o.get("kms_key_id"):
            kwargs["customModelKmsKeyId"] = o["kms_key_id"]
        if o.get("tags"):
            tags = [{"key": str(k), "value": str(v)} for k, v in dict(o["tags"]).items()]
            kwargs["jobTags"] = tags
            kwargs["customModelTags"] = tags
        bedrock = self.client("bedrock")
        created = self.call("create", lambda: bedrock.create_model_customization_job(**kwargs))
        return self.get(created["jobArn"])

    def find(self, idempotency_key: str) -> ProviderJob | None:
        job_name, _, _ = self.names(None, idempotency_key)
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
        bedrock = self.client("bedrock")
        raw = self.call(
            "get", lambda: bedrock.get_model_customization_job(jobIdentifier=provider_job_id)
        )
        return self._to_job(raw)

    def cancel(self, provider_job_id: str) -> None:
        bedrock = self.client("bedrock")
        self.call(
            "cancel", lambda: bedrock.stop_model_customization_job(jobIdentifier=provider_job_id)
        )

    def _to_job(self, raw: dict[str, Any]) -> ProviderJob:
        raw = _jsonable({k: v for k, v in raw.items() if k != "ResponseMetadata"})
        status = raw.get("status")
        failed = status == "Failed"
        return ProviderJob(
            id=raw["jobArn"],
            status=job_status(status, raw.get("statusDetails")),
            raw_status=status,
            fine_tuned_model=raw.get("outputModelArn") if status == "Completed" else None,
            error=(raw.get("failureMessage") or "the job failed") if failed else None,
            created_at=_parse_time(raw.get("creationTime")),
            finished_at=_parse_time(raw.get("endTime")),
            raw=raw,
        )

    # -- events and metrics -----------------------------------------------------------------------
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        """One event per sub-phase state seen now (validation, data processing, training), from
        `statusDetails`; Bedrock has no event log. Ids are `<phase>:<status>`."""
        job = self.get(provider_job_id).raw
        found: list[JobEvent] = []
        base_time = _parse_time(job.get("creationTime")) or dt.datetime.now(dt.UTC)
        for key, label in _PHASES:
            detail = (job.get("statusDetails") or {}).get(key) or {}
            state = detail.get("status")
            if state and state != "NotStarted":
                when = _parse_time(detail.get("lastModifiedTime")) or base_time
                found.append(
                    JobEvent(
                        id=f"{key}:{state}",
                        created_at=when,
                        level="error" if state == "Failed" else "info",
                        message=f"{label}: {state}",
                        type="status",
                    )
                )
        if job.get("status") in ("Completed", "Failed", "Stopped"):
            when = (
                _parse_time(job.get("endTime"))
                or _parse_time(job.get("lastModifiedTime"))
                or base_time
            )
            message = f"job {job['status']}" + (
                f": {job.get('failureMessage')}" if job["status"] == "Failed" else ""
            )
            found.append(
                JobEvent(
                    id=f"job:{job['status']}",
                    created_at=when,
                    level="error" if job["status"] == "Failed" else "info",
                    message=message,
                    type="status",
                )
            )
        ids = [e.id for e in found]
        return found[ids.index(after) + 1 :] if after in ids else found

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        """Per-step metrics from `step_wise_training_metrics.csv` and `validation_metrics.csv`
        anywhere under the job's output prefix, merged by step."""
        job = self.get(provider_job_id).raw
        out = (job.get("outputDataConfig") or {}).get("s3Uri", "")
        m = S3_URI_RE.match(out)
        if not m:
            return []
        bucket, prefix = m.group(1), m.group(2)
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
                break
        points: dict[int, dict[str, Any]] = {}
        for key in sorted(keys):
            name = key.rsplit("/", 1)[-1]
            if name not in ("step_wise_training_metrics.csv", "validation_metrics.csv"):
                continue
            body = self.call(
                "metrics", lambda k=key: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
            )
            merge_metrics_csv(
                points, body.decode("utf-8"), validation=name.startswith("validation")
            )
        return [MetricPoint(**points[s]) for s in sorted(points)]
