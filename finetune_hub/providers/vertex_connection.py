"""Who we talk to on Google Vertex AI: options, credentials, the SDK clients, and their errors.

Options `project`, `location`, `gcs_uri` (`gs://bucket/prefix` for uploads), `credentials` (a
google-auth credentials object; never stored) and `api_endpoint` (the Vertex base URL, for
private endpoints and for fakes), else the SDKs' usual environment (`GOOGLE_CLOUD_PROJECT`,
`GOOGLE_CLOUD_LOCATION`, `GOOGLE_APPLICATION_CREDENTIALS`, then `google.auth.default()`).
Cloud Storage goes through google-cloud-storage, which honours `STORAGE_EMULATOR_HOST`.

Clients, made on first use and kept for the connection's lifetime (a google-genai client that
is garbage-collected closes its HTTP connection mid-call):

- google-genai in Vertex mode for tuning jobs and generateContent. It refreshes credentials
  before every call, so `AnonymousCredentials` fail client-side; with a custom base URL, project
  and location are passed to the client, never only through the environment. genai retries
  nothing unless asked, which is what finetune_hub wants: the job layer retries.
- google-cloud-aiplatform's GAPIC clients over REST (`transport="rest"`) for pipeline jobs,
  models, endpoints and predict; their default gRPC transport cannot reach an HTTP fake, and
  their own retries are switched off per call (`retry=None`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import Connection, ProviderOptions

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
#: Google's RLHF template in the Vertex template gallery (what vertexai's own RLHF code used).
DEFAULT_RLHF_TEMPLATE = (
    "https://us-kfp.pkg.dev/ml-pipeline/google-cloud-registry/rlhf-train-template/default"
)


class VertexOptions(ProviderOptions):
    """Options of the `vertex` provider (unknown keys are refused)."""

    project: str | None = None
    location: str | None = None
    gcs_uri: str | None = None
    credentials: Any = None  # a google-auth credentials object: never stored
    api_endpoint: str | None = None
    labels: dict[str, str] = {}
    # the RLHF pipeline (method="rlhf")
    confirm_cost: bool = False
    rlhf_template: str = DEFAULT_RLHF_TEMPLATE
    pipeline_root: str | None = None
    instruction: str | None = None
    accelerator_type: str = "GPU"
    deploy_model: bool = False
    service_account: str | None = None

    not_stored = frozenset({"credentials", "confirm_cost"})


class VertexConnection(Connection):
    """google-genai, google-cloud-storage and aiplatform GAPIC clients on one set of options."""

    provider = "vertex"
    Options = VertexOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._credentials: Any = None
        self._project: str | None = None
        self._clients: dict[str, Any] = {}

    # -- where and who ----------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self.options.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or "us-central1"

    @property
    def credentials(self) -> Any:
        if self._credentials is None:
            self._credentials, self._project = self.call("connect", self._resolve_credentials)
        return self._credentials

    def _resolve_credentials(self) -> tuple[Any, str | None]:
        if self.options.credentials is not None:
            return self.options.credentials, None
        import google.auth

        return google.auth.default(scopes=SCOPES)

    @property
    def project(self) -> str:
        project = self.options.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            _ = self.credentials  # the default chain may know the project
            project = self._project
        if not project:
            raise ProviderError(
                self.provider,
                "connect",
                "no Google Cloud project: pass options={'project': ...} or set "
                "GOOGLE_CLOUD_PROJECT",
                retryable=False,
            )
        return project

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def credentials_source(self) -> dict[str, str]:
        if self.options.credentials is not None:
            return {"google": "explicit"}
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return {"google": "env:GOOGLE_APPLICATION_CREDENTIALS"}
        return {"google": "default-chain"}

    def gcs_prefix(self) -> tuple[str, str]:
        """(bucket, prefix) of `gcs_uri`; a missing or malformed one is an error naming it."""
        match = re.fullmatch(
            r"gs://([a-z0-9][a-z0-9._-]{1,221}[a-z0-9])(?:/(.*))?", self.options.gcs_uri or ""
        )
        if not match:
            raise ProviderError(
                self.provider,
                "upload",
                f"options['gcs_uri'] must be gs://bucket/prefix, got {self.options.gcs_uri!r}",
                retryable=False,
            )
        return match.group(1), (match.group(2) or "").strip("/")

    # -- clients ----------------------------------------------------------------------------------
    def _client(self, key: str, make: Any) -> Any:
        if key not in self._clients:
            self._clients[key] = self.call("connect", make)
        return self._clients[key]

    @property
    def genai(self) -> Any:
        """The `google.genai.Client` in Vertex mode (kept: a collected client closes its socket)."""

        def make() -> Any:
            from google import genai
            from google.genai import types

            http = types.HttpOptions(timeout=int(self.options.timeout * 1000))
            if self.options.api_endpoint:
                http.base_url = self.options.api_endpoint
            return genai.Client(
                vertexai=True,
                project=self.project,
                location=self.location,
                credentials=self.credentials,
                http_options=http,
            )

        return self._client("genai", make)

    @property
    def storage(self) -> Any:
        """A `google.cloud.storage.Client` (honours `STORAGE_EMULATOR_HOST`)."""

        def make() -> Any:
            from google.cloud import storage

            return storage.Client(project=self.project, credentials=self.credentials)

        return self._client("storage", make)

    def gapic(self, service: str) -> Any:
        """An aiplatform v1 GAPIC client over REST: "pipeline", "endpoint", "model", "prediction"."""

        def make() -> Any:
            from google.cloud import aiplatform_v1

            classes = {
                "pipeline": aiplatform_v1.PipelineServiceClient,
                "endpoint": aiplatform_v1.EndpointServiceClient,
                "model": aiplatform_v1.ModelServiceClient,
                "prediction": aiplatform_v1.PredictionServiceClient,
            }
            endpoint = self.options.api_endpoint or f"{self.location}-aiplatform.googleapis.com"
            return classes[service](
                credentials=self.credentials,
                transport="rest",
                client_options={"api_endpoint": endpoint},
            )

        return self._client(f"gapic:{service}", make)

    def gapic_call(self, operation: str, service: str, method: str, **kwargs: Any) -> Any:
        """One GAPIC call with the SDK's own retries off and the connection's timeout."""
        client = self.gapic(service)
        return self.call(
            operation,
            lambda: getattr(client, method)(**kwargs, retry=None, timeout=self.options.timeout),
        )

    # -- errors -----------------------------------------------------------------------------------
    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        return translate_google_error(self.provider, operation, exc)


def translate_google_error(
    provider: str, operation: str, exc: BaseException
) -> ProviderError | None:
    """The `ProviderError` for an exception of google-genai, google-api-core (GAPIC, storage),
    google-auth, httpx or requests; None for anything else."""
    from google.api_core import exceptions as core
    from google.auth import exceptions as auth

    try:
        from google.genai import errors as genai_errors
    except ImportError:  # pragma: no cover - the vertex extra installs it
        genai_errors = None
    if genai_errors is not None and isinstance(exc, genai_errors.APIError):
        headers = getattr(exc.response, "headers", None) or {}
        return ProviderError(
            provider,
            operation,
            exc.message or str(exc),
            status_code=exc.code,
            code=exc.status,
            request_id=_request_id(headers),
            retry_after=_retry_after(headers),
        )
    if isinstance(exc, core.GoogleAPICallError):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        status = _status_name(response) or exc.reason
        return ProviderError(
            provider,
            operation,
            exc.message or str(exc),
            status_code=exc.code if isinstance(exc.code, int) else None,
            code=status,
            request_id=_request_id(headers),
            retry_after=_retry_after(headers),
        )
    if isinstance(exc, core.RetryError):
        return ProviderError(provider, operation, str(exc), retryable=True)
    if isinstance(exc, auth.DefaultCredentialsError | auth.RefreshError):
        return ProviderError(
            provider,
            operation,
            f"{exc} (pass options={{'credentials': ...}}, or set GOOGLE_APPLICATION_CREDENTIALS, "
            "or run `gcloud auth application-default login`)",
            retryable=False,
        )
    if _is_transport_error(exc):
        return ProviderError(provider, operation, f"connection failed: {exc}", retryable=True)
    return None


def _is_transport_error(exc: BaseException) -> bool:
    names = {c.__module__.split(".")[0] + "." + c.__name__ for c in type(exc).__mro__}
    return bool(
        names
        & {
            "httpx.TransportError",
            "httpx2.TransportError",
            "requests.ConnectionError",
            "requests.Timeout",
            "urllib3.ProtocolError",
        }
    )


def _request_id(headers: Any) -> str | None:
    return headers.get("x-request-id") or headers.get("x-goog-request-id") or None


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _status_name(response: Any) -> str | None:
    try:
        body = response.json()
    except Exception:  # not JSON, or no response at all
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("status") if isinstance(error, dict) else None
