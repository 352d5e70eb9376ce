"""Who we talk to on Amazon Bedrock: the option schema, the boto3 session and clients, where the
credentials come from, and botocore's / boto3's exceptions turned into `ProviderError`.

Credentials: `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`) passed in
options are used for every client and never stored; else `profile`; else boto3's own chain
(`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, SSO, an instance or task role). The region is `region`, else
`AWS_REGION`, else the session's own (`AWS_DEFAULT_REGION`, the profile's), else us-east-1.
botocore's retries are off (`total_max_attempts=1`; botocore reads `max_attempts` as retries
after the first try, so `max_attempts=1` would still retry once): the job layer's one retry policy
calls `find` before every retried create.

>>> BedrockConnection({"region": "eu-west-1", "aws_access_key_id": "AKIA...",
...                    "aws_secret_access_key": "..."}).credentials_source()
{'aws': 'explicit'}
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, ClassVar

import boto3
from boto3.exceptions import Boto3Error, S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from pydantic import Field, SecretStr

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import Connection, ProviderOptions

DEFAULT_REGION = "us-east-1"
PROVIDER = "bedrock"
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "InternalServerException",
        "RequestTimeout",
        "SlowDown",
    }
)
NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "NoSuchKey", "NotFound", "404", "NoSuchBucket"}
)
CREDENTIALS_HELP = (
    "no AWS credentials found: run `aws configure` (or `aws sso login`) and set AWS_PROFILE or "
    "options={'profile': ...}, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass "
    "options aws_access_key_id and aws_secret_access_key; on AWS compute an instance or task "
    "role is used"
)


class BedrockOptions(ProviderOptions):
    """Options of the `bedrock` provider; an unknown key is refused naming the nearest one.

    >>> opts = BedrockOptions(s3_uri="s3://b/ft/", region="eu-west-1",
    ...                       aws_access_key_id="AKIA...", aws_secret_access_key="...")
    >>> sorted(opts.stored())  # what a job record keeps: never the keys
    ['region', 's3_uri']
    """

    # -- connection
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    # -- job
    role_arn: str | None = None
    s3_uri: str | None = None
    job_name: str | None = None
    custom_model_name: str | None = None
    customization_type: str | None = None
    teacher_model: str | None = None
    max_response_length: int = Field(default=1000, gt=0)
    vpc_config: dict[str, Any] | None = None
    kms_key_id: str | None = None
    tags: dict[str, Any] | None = None
    multipart_threshold: int = Field(default=8 * 1024 * 1024, gt=0)

    not_stored: ClassVar[frozenset[str]] = frozenset({"aws_access_key_id"})


class BedrockConnection(Connection):
    """A boto3 session and its clients (`bedrock`, `s3`, `bedrock-runtime`), made on first use.

    >>> BedrockConnection({"profile": "ft"}).credentials_source()
    {'aws': 'profile:ft'}
    """

    provider = PROVIDER
    Options = BedrockOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        """The `boto3.Session`, with the credentials passed in options when there are some."""
        if self._session is None:
            self._session = self.call("connect", self._make_session)
        return self._session

    def _make_session(self) -> Any:
        redact_session_tokens_in_botocore_logs()
        o = self.options
        keys: dict[str, Any] = {}
        if o.aws_access_key_id or o.aws_secret_access_key:
            keys = {
                "aws_access_key_id": o.aws_access_key_id,
                "aws_secret_access_key": _secret(o.aws_secret_access_key),
                "aws_session_token": _secret(o.aws_session_token),
            }
        return boto3.session.Session(
            profile_name=o.profile, region_name=o.region or os.environ.get("AWS_REGION"), **keys
        )

    @property
    def region(self) -> str:
        return self.session.region_name or DEFAULT_REGION

    def client(self, service: str) -> Any:
        """A boto3 client for `service` (`bedrock`, `s3`, `bedrock-runtime`), made on first use."""
        if service not in self._clients:
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=self.options.timeout,
                read_timeout=self.options.timeout,
            )
            kwargs: dict[str, Any] = {"config": config, "region_name": self.region}
            if self.options.endpoint_url:
                kwargs["endpoint_url"] = self.options.endpoint_url
            self._clients[service] = self.call(
                "connect", lambda: self.session.client(service, **kwargs)
            )
        return self._clients[service]

    def credentials_source(self) -> dict[str, str]:
        """Where boto3 takes the credentials from, in its own order (never the keys)."""
        o = self.options
        if o.aws_access_key_id or o.aws_secret_access_key:
            return {"aws": "explicit"}
        if o.profile:
            return {"aws": f"profile:{o.profile}"}
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            return {"aws": "env:AWS_ACCESS_KEY_ID"}
        if os.environ.get("AWS_PROFILE"):
            return {"aws": f"profile:{os.environ['AWS_PROFILE']}"}
        return {"aws": "default-chain"}

    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        if isinstance(exc, ClientError):
            return client_error(operation, exc)
        if isinstance(exc, S3UploadFailedError):
            return _upload_failed(operation, exc)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ProviderError(PROVIDER, operation, f"{exc}; {CREDENTIALS_HELP}", retryable=False)
        if isinstance(exc, ProfileNotFound):
            return ProviderError(
                PROVIDER,
                operation,
                f"{exc}: add it to ~/.aws/config (`aws configure --profile NAME`) or pass "
                "another options['profile']",
                retryable=False,
            )
        if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
            return ProviderError(PROVIDER, operation, f"timed out: {exc}", retryable=True)
        if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
            return ProviderError(PROVIDER, operation, f"connection failed: {exc}", retryable=True)
        if isinstance(exc, BotoCoreError | Boto3Error):
            return ProviderError(
                PROVIDER, operation, f"{type(exc).__name__}: {exc}", retryable=False
            )
        return None


_SESSION_TOKEN = re.compile(
    r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"\s,&}\\]+)", re.IGNORECASE
)


class _RedactSessionTokens(logging.Filter):
    """botocore's DEBUG logs print every signed request (`botocore.endpoint`) and its canonical
    form (`botocore.auth`), session token (`X-Amz-Security-Token`) included: the token is
    replaced by `<redacted>` before any handler sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "security-token" in message.lower():
            record.msg, record.args = _SESSION_TOKEN.sub(r"\1<redacted>", message), None
        return True


def redact_session_tokens_in_botocore_logs() -> None:
    """Put the redacting filter on the botocore loggers that print request headers (once).

    >>> redact_session_tokens_in_botocore_logs()
    >>> line = "x-amz-security-token:IQoJb3"
    >>> record = logging.LogRecord("botocore.auth", logging.DEBUG, "", 0, line, (), None)
    >>> logging.getLogger("botocore.auth").filter(record) and record.getMessage()
    'x-amz-security-token:<redacted>'
    """
    for name in ("botocore.auth", "botocore.endpoint"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSessionTokens) for f in logger.filters):
            logger.addFilter(_RedactSessionTokens())


def client_error(operation: str, exc: ClientError) -> ProviderError:
    """A botocore `ClientError` as `ProviderError`: Bedrock's or S3's error code, HTTP status,
    request id, `Retry-After`; throttling and 5xx are retryable."""
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = error_code(exc)
    status = http_status(exc)
    headers = meta.get("HTTPHeaders") or {}
    retry_after = None
    if headers.get("retry-after"):
        try:
            retry_after = float(headers["retry-after"])
        except ValueError:
            retry_after = None
    retryable = code in RETRYABLE_CODES or status == 429 or (status is not None and status >= 500)
    return ProviderError(
        PROVIDER,
        operation,
        f"{code}: {err.get('Message') or exc}" if code else str(exc),
        status_code=status,
        request_id=meta.get("RequestId") or headers.get("x-amzn-requestid"),
        code=code,
        retry_after=retry_after,
        retryable=retryable,
    )


def _upload_failed(operation: str, exc: S3UploadFailedError) -> ProviderError:
    """boto3's managed upload wraps the S3 error it met (`NoSuchBucket`, `AccessDenied`, a 500)
    in `S3UploadFailedError`: keep the S3 error's code and status, and name the bucket."""
    cause = exc.__cause__ or exc.__context__
    found = re.search(r" to (\S+?)/(\S+): ", str(exc))
    bucket = found.group(1) if found else None
    if isinstance(cause, ClientError):
        error = client_error(operation, cause)
        if error.code == "NoSuchBucket":
            error = ProviderError(
                PROVIDER,
                operation,
                f"the S3 bucket {bucket!r} does not exist: create it, or set options['s3_uri'] "
                "to a bucket you can write to",
                status_code=error.status_code or 404,
                request_id=error.request_id,
                code="NoSuchBucket",
                retryable=False,
            )
        return error
    where = f" to bucket {bucket!r}" if bucket else ""
    return ProviderError(PROVIDER, operation, f"upload{where} failed: {exc}", retryable=True)


def is_not_found(exc: ProviderError) -> bool:
    """True for a `ProviderError` that says the thing asked for does not exist (any more)."""
    return exc.status_code == 404 or exc.code in NOT_FOUND_CODES


def error_code(exc: ClientError) -> str | None:
    return exc.response.get("Error", {}).get("Code")


def http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
