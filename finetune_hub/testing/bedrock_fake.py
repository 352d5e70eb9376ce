"""`FakeBedrock`: moto's Bedrock + S3 served over HTTP on 127.0.0.1, with the parts moto lacks.

    from finetune_hub.testing.bedrock_fake import FakeBedrock

    with FakeBedrock(auto_complete_after=4) as fake:       # sets nothing in os.environ
        s3 = boto3.client("s3", endpoint_url=fake.url)      # AWS_ACCESS_KEY_ID etc. = testing
        ...
        fake.complete(job_arn)                              # or fake.fail(job_arn, "message")

The extension (`bedrock_fake_ext`) adds job look-up by ARN, Provisioned Throughput, on-demand
deployments and Converse. `FakeBedrock` adds a status driver (`complete`, `fail`,
`auto_complete_after=N` polls, which walks validating -> queued -> running -> Completed and
writes the metrics CSVs into the job's output prefix), fault injection (`inject`: 429 with
`Retry-After`, 500, 503, a dropped connection, a slow answer; before or after the work), a request log
(`requests`, `count`, `s3_writes`) and `reset`. The account's Service Quotas for Bedrock
(`bedrock_fake_quotas`): `set_service_quota(name_or_code, value)` sets an applied value,
`service_quotas_denied = True` refuses ListServiceQuotas. moto is imported when a `FakeBedrock` starts, so
`finetune_hub.testing` stays importable without it. With pytest use the `fake_bedrock` fixture.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/finetune-hub-bedrock"
_OPERATIONS = [
    ("POST", r"/model-customization-jobs", "CreateModelCustomizationJob"),
    ("GET", r"/model-customization-jobs", "ListModelCustomizationJobs"),
    ("POST", r"/model-customization-jobs/.+/stop", "StopModelCustomizationJob"),
    ("GET", r"/model-customization-jobs/.+", "GetModelCustomizationJob"),
    ("GET", r"/custom-models/.+", "GetCustomModel"),
    ("DELETE", r"/custom-models/.+", "DeleteCustomModel"),
    ("POST", r"/provisioned-model-throughput", "CreateProvisionedModelThroughput"),
    ("GET", r"/provisioned-model-throughput/.+", "GetProvisionedModelThroughput"),
    ("DELETE", r"/provisioned-model-throughput/.+", "DeleteProvisionedModelThroughput"),
    ("POST", r"/model-customization/custom-model-deployments", "CreateCustomModelDeployment"),
    ("GET", r"/model-customization/custom-model-deployments/.+", "GetCustomModelDeployment"),
    ("DELETE", r"/model-customization/custom-model-deployments/.+", "DeleteCustomModelDeployment"),
    ("POST", r"/model/.+/converse", "Converse"),
]
_CRED = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")
#: "throttle" is the 429 ThrottlingException without a Retry-After header (the older name)
FAULT_KINDS = ("500", "503", "429", "throttle", "drop", "slow")


@dataclass
class Request:
    """One request the fake served: `service` (bedrock, s3), `operation` (e.g.
    CreateModelCustomizationJob, or s3:PUT), method, path and the status sent back."""

    service: str
    operation: str
    method: str
    path: str
    status: int = 0


@dataclass
class Fault:
    operation: str
    kind: str  # one of FAULT_KINDS
    times: int
    after: bool
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class _Progress:
    polls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def echo_reply(model_id: str, messages: list[dict[str, Any]], system: list[dict[str, Any]]) -> str:
    """The default Converse reply: 'Echo: <last user text>'."""
    for m in reversed(messages):
        if m.get("role") == "user":
            return "Echo: " + "".join(p.get("text", "") for p in m.get("content", []))
    return "Echo:"


class FakeBedrock:
    """moto's Bedrock/S3 with finetune_hub's extension, served on 127.0.0.1 (see module doc)."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        bucket: str = "finetune-hub-test",
        auto_complete_after: int | None = None,
        reply: Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], str] = echo_reply,
        metric_steps: int = 5,
    ) -> None:
        self.region = region
        self.bucket = bucket
        self.auto_complete_after = auto_complete_after
        self.reply = reply
        self.metric_steps = metric_steps
        self.role_arn = ROLE_ARN
        self.requests: list[Request] = []
        self.chats: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._progress: dict[str, _Progress] = {}
        #: Service Quotas: quota code -> the account's applied value (else the rules' default)
        self.service_quota_values: dict[str, int] = {}
        #: True: ListServiceQuotas answers AccessDeniedException
        self.service_quotas_denied = False
        self._lock = threading.Lock()
        self._in_flight = 0
        self._server: Any = None
        self.url = ""

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeBedrock:
        from moto.server import ThreadedMotoServer

        from . import bedrock_fake_ext

        bedrock_fake_ext.apply()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        bedrock_fake_ext.ACTIVE["fake"] = self
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        wsgi = self._server._server
        wsgi.app = self._middleware(wsgi.app)
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        from . import bedrock_fake_ext

        if self._server is not None:
            self._server.stop()
            self._server = None
        if bedrock_fake_ext.ACTIVE.get("fake") is self:
            bedrock_fake_ext.ACTIVE.pop("fake")

    def __enter__(self) -> FakeBedrock:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every job, model, PT, object, request and fault (moto's reset + ours)."""
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=30
        ).read()
        self.requests.clear()
        self.chats.clear()
        self.faults.clear()
        self._progress.clear()
        self.service_quota_values.clear()
        self.service_quotas_denied = False

    # -- helpers for tests ------------------------------------------------------------------------
    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/finetune-hub/"

    def client(self, service: str) -> Any:
        """A boto3 client on the fake (test credentials)."""
        import boto3

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_bucket(self) -> None:
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT]["global"]
        if self.bucket not in backend.buckets:
            backend.create_bucket(self.bucket, self.region)

    @property
    def backend(self) -> Any:
        """moto's Bedrock backend for the fake's account and region."""
        from moto.bedrock.models import bedrock_backends

        return bedrock_backends[ACCOUNT][self.region]

    def jobs(self) -> list[Any]:
        return list(self.backend.model_customization_jobs.values())

    def provisioned_throughputs(self) -> list[dict[str, Any]]:
        from .bedrock_fake_ext import store

        return list(store(self.backend, "pt").values())

    def set_service_quota(self, name_or_code: str, value: int) -> str:
        """Set this account's applied value of a Bedrock quota, named by its code (L-3B82104D)
        or its name (as Service Quotas lists it, or as the rules' `quotas` write it); returns
        its code. ListServiceQuotas answers it from then on; `reset()` restores the default."""
        from .bedrock_fake_quotas import default_quotas, find_quota

        code = str(find_quota(default_quotas(self.region), name_or_code)["QuotaCode"])
        self.service_quota_values[code] = int(value)
        return code

    def service_quotas(self) -> list[dict[str, Any]]:
        """The Bedrock quotas ListServiceQuotas lists now (ServiceQuota dicts)."""
        from .bedrock_fake_quotas import listed

        return listed(self)

    def count(self, operation: str) -> int:
        return sum(1 for r in self.requests if r.operation == operation)

    @property
    def busy(self) -> bool:
        """Whether a request is still being answered (a slow fault's server side, say)."""
        return self._in_flight > 0

    def s3_writes(self) -> list[Request]:
        """S3 PUT/POST requests (object and multipart uploads)."""
        return [r for r in self.requests if r.service == "s3" and r.method in ("PUT", "POST")]

    def read_object(self, uri_or_key: str) -> bytes:
        from moto.s3.models import s3_backends

        bucket, _, key = (
            uri_or_key.removeprefix("s3://").partition("/")
            if uri_or_key.startswith("s3://")
            else (self.bucket, "", uri_or_key)
        )
        return s3_backends[ACCOUNT]["global"].get_object(bucket, key).value

    # -- status driver ----------------------------------------------------------------------------
    def _job(self, ident: str) -> Any:
        from .bedrock_fake_ext import job_name

        return self.backend.model_customization_jobs[job_name(ident)]

    def set_phase(self, ident: str, validation: str, data: str, training: str) -> None:
        job = self._job(ident)
        now = datetime.now(UTC).isoformat()
        job.fh_details = {
            "validationDetails": {"status": validation, "lastModifiedTime": now},
            "dataProcessingDetails": {"status": data, "lastModifiedTime": now},
            "trainingDetails": {"status": training, "lastModifiedTime": now},
        }

    def complete(self, ident: str, *, losses: Iterable[float] | None = None) -> None:
        """Move the job to Completed and write its metrics CSVs under the output prefix."""
        job = self._job(ident)
        self.set_phase(ident, "Completed", "Completed", "Completed")
        job.status = "Completed"
        job.end_time = datetime.now(UTC).isoformat()
        self._write_metrics(job, list(losses) if losses is not None else None)

    def fail(
        self,
        ident: str,
        message: str = "Maximum input token count 4919 exceeds limit of 4096 for train data",
    ) -> None:
        job = self._job(ident)
        self.set_phase(ident, "Completed", "Completed", "Failed")
        job.status = "Failed"
        job.failure_message = message
        job.end_time = datetime.now(UTC).isoformat()

    def _on_poll(self, path: str) -> None:
        ident = path.rstrip("/").split("/")[-1]
        try:
            job = self._job(ident)
        except KeyError:
            return
        if job.status == "Stopping":
            job.status = "Stopped"
            self.set_phase(ident, "Completed", "Completed", "Stopped")
            return
        if job.status != "InProgress" or self.auto_complete_after is None:
            return
        progress = self._progress.setdefault(job.job_name, _Progress())
        progress.polls += 1
        n = progress.polls
        if n >= self.auto_complete_after:
            self.complete(ident)
        elif n >= 3:
            self.set_phase(ident, "Completed", "Completed", "InProgress")
        elif n == 2:
            self.set_phase(ident, "Completed", "InProgress", "NotStarted")

    def _write_metrics(self, job: Any, losses: list[float] | None) -> None:
        from moto.s3.models import s3_backends

        out = job.output_data_config["s3Uri"].removeprefix("s3://")
        bucket, _, prefix = out.partition("/")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        job_id = job.job_arn.rsplit("/", 1)[-1]
        base = f"{prefix}model-customization-job-{job_id}/"
        losses = losses or [round(2.0 / (i + 1), 4) for i in range(self.metric_steps)]
        rows = ["step_number,epoch_number,training_loss,perplexity"]
        rows += [f"{i},{i // 2},{loss},{round(2.718**loss, 4)}" for i, loss in enumerate(losses)]
        backend = s3_backends[ACCOUNT]["global"]
        if bucket not in backend.buckets:
            return
        backend.put_object(
            bucket,
            base + "training_artifacts/step_wise_training_metrics.csv",
            ("\n".join(rows) + "\n").encode(),
        )
        if job.validation_data_config:
            vrows = ["step_number,epoch_number,validation_loss,perplexity"]
            vrows += [
                f"{i},{i // 2},{loss * 1.1:.4f},{round(2.718 ** (loss * 1.1), 4)}"
                for i, loss in enumerate(losses)
            ]
            key = (
                base
                + "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv"
            )
            backend.put_object(bucket, key, ("\n".join(vrows) + "\n").encode())

    # -- faults -----------------------------------------------------------------------------------
    def inject(
        self,
        operation: str,
        kind: str = "500",
        times: int = 1,
        after: bool = False,
        *,
        retry_after: float | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """Make the next `times` calls of `operation` (e.g. 'CreateModelCustomizationJob',
        's3:PUT') fail. `kind`: "500" (InternalServerException), "503"
        (ServiceUnavailableException; S3: ServiceUnavailable), "429" (ThrottlingException with
        `Retry-After: retry_after`, default 1 s; S3: 503 SlowDown), "throttle" (the same without
        `Retry-After`), "drop" (the connection is closed, no answer) or "slow" (the answer comes
        `delay` real seconds late: past a client's read timeout, the client gives up while the
        server still acts). `after=True` performs the call first, then fails it (the server-side
        effect happened; the client sees an error, a dropped connection or a late answer).

        >>> FakeBedrock().inject("CreateModelCustomizationJob", "drop", after=True).kind
        'drop'
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if kind == "429" and retry_after is None:
            retry_after = 1.0
        fault = Fault(operation, kind, times, after, retry_after, delay)
        self.faults.append(fault)
        return fault

    def _take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    # -- wsgi -------------------------------------------------------------------------------------
    def _middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with self._lock:
                self._in_flight += 1
            try:
                return handle(environ, start_response)
            finally:
                with self._lock:
                    self._in_flight -= 1

        def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            method = environ.get("REQUEST_METHOD", "GET")
            path = environ.get("PATH_INFO", "")
            m = _CRED.search(environ.get("HTTP_AUTHORIZATION", ""))
            service = m.group(2) if m else "other"
            operation = _operation(service, method, path, environ.get("HTTP_X_AMZ_TARGET", ""))
            req = Request(service=service, operation=operation, method=method, path=path)
            if not path.startswith("/moto-api"):
                self.requests.append(req)
            if operation == "GetModelCustomizationJob":
                self._on_poll(path)
            fault = self._take_fault(operation)
            if fault is not None and fault.kind == "slow" and not fault.after:
                time.sleep(fault.delay)  # the server acts late: after a client's timeout
                fault = None
            if fault is not None and not fault.after:
                if fault.kind == "drop":
                    return self._drop(environ, req, start_response)
                return self._error(fault, service, req, start_response)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"], captured["headers"] = status, headers
                req.status = int(status.split()[0])
                if fault is None:
                    return start_response(status, headers, exc_info)
                return lambda data: None

            body = app(environ, capture)
            if fault is None:
                return body
            data = b"".join(body)
            if fault.kind == "slow":  # done; the answer leaves late
                time.sleep(fault.delay)
                start_response(captured["status"], captured["headers"])
                return [data]
            if fault.kind == "drop":
                return self._drop(environ, req, start_response)
            return self._error(fault, service, req, start_response)

        return counted

    @staticmethod
    def _drop(
        environ: dict[str, Any], req: Request, start_response: Callable[..., Any]
    ) -> list[bytes]:
        """Close the connection without an answer (the client sees it reset or closed)."""
        req.status = 0
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []

    @staticmethod
    def _error(
        fault: Fault, service: str, req: Request, start_response: Callable[..., Any]
    ) -> list[bytes]:
        throttle = fault.kind in ("throttle", "429")
        unavailable = fault.kind == "503"
        if throttle:
            code, status = "ThrottlingException", "429 Too Many Requests"
        elif unavailable:
            code, status = "ServiceUnavailableException", "503 Service Unavailable"
        else:
            code, status = "InternalServerException", "500 Internal Server Error"
        req.status = int(status.split()[0])
        extra = []
        if fault.retry_after is not None:
            extra.append(("Retry-After", f"{fault.retry_after:g}"))
        if service == "s3":
            s3code = (
                "SlowDown" if throttle else "ServiceUnavailable" if unavailable else "InternalError"
            )
            body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{s3code}</Code><Message>injected fault</Message><RequestId>fake-req</RequestId></Error>".encode()
            start_response(
                "503 Slow Down" if throttle else status,
                [("Content-Type", "application/xml"), ("x-amz-request-id", "fake-req"), *extra],
            )
            return [body]
        body = json.dumps({"message": f"injected {fault.kind} on {fault.operation}"}).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", "fake-req-" + fault.kind),
                *extra,
            ],
        )
        return [body]


def _operation(service: str, method: str, path: str, target: str = "") -> str:
    if service == "s3":
        return f"s3:{method}"
    if service == "servicequotas" and target:  # JSON protocol: the operation is in X-Amz-Target
        return target.rsplit(".", 1)[-1]
    for verb, pattern, name in _OPERATIONS:
        if verb == method and re.fullmatch(pattern, path):
            return name
    return f"{service}:{method} {path}"
