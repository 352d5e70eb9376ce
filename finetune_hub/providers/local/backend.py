"""`LocalBackend`: the same `TuningJob` flow, trained on this machine by a detached worker process.

Options are `LocalOptions` (connection.py): `output_dir`, `device`, `download`,
`trust_remote_code`, `quantization`, `num_processes` (and `num_machines`, `machine_rank`,
`main_process_ip`, `main_process_port`, `distributed`), `num_threads`, `gradient_checkpointing`,
`target_modules`, `weight_decay`. The run folder `<output_dir>/<job id>/` holds everything (runner.py); the
provider job id is its path and the tuned model id is its `adapter/` folder. Serving modes are in
deploy.py (`merge`, `serve`); a tuned model also answers without one (`model.chat`).

>>> job = fh.TuningJob(provider="local", base_model="smollm2-135m-instruct",
...                    training_file="train.jsonl", hyperparameters={"epochs": 1})  # doctest: +SKIP
>>> model = job.submit().wait(poll_interval=2)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from finetune_hub.errors import MissingDependencyError, ModelNotFoundError, ProviderError
from finetune_hub.issues import Issue
from finetune_hub.providers.base import (
    Capability,
    DataRef,
    PreparedJob,
    ProviderJob,
    TuningBackend,
)
from finetune_hub.providers.local.connection import LocalConnection
from finetune_hub.providers.local.runner import (
    TERMINAL_STATES,
    RunDir,
    now_iso,
    pid_alive,
    write_json_atomic,
)
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint, StateMap

_S = JobStatus
LOCAL_STATES = {
    "queued": _S.QUEUED,
    "running": _S.RUNNING,
    "cancelling": _S.CANCELLING,  # the cancel flag is there; the worker has not stopped yet
    "succeeded": _S.SUCCEEDED,
    "failed": _S.FAILED,
    "cancelled": _S.CANCELLED,
}
_TRAINING_DEPS = ("torch", "transformers", "peft", "safetensors")
_QLORA_HINT = 'pip install "finetune-hub[qlora]"'


def require_training_stack() -> None:
    """Raise `MissingDependencyError` naming the extra when torch, transformers or peft is absent."""
    missing = [m for m in _TRAINING_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f'local training needs {", ".join(missing)}: pip install "finetune-hub[local]"'
        )


class LocalBackend(TuningBackend):
    """Local PEFT (LoRA/QLoRA SFT and DPO) in a detached worker process, followed like a cloud job.

    >>> backend = LocalBackend.from_options({"output_dir": "runs"})
    >>> backend.run_dir("ftj_0").path
    PosixPath('runs/ftj_0')
    """

    name = "local"
    display_name = "Local (PEFT)"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.METRICS,
            Capability.CHECKPOINTS,
            Capability.CHAT,
            Capability.DELETE_MODEL,
            Capability.LIST_JOBS,
        }
    )
    state_map = StateMap("local", LOCAL_STATES)
    connection_class = LocalConnection
    serving_note = (
        "a tuned model answers on this machine as it is: call model.chat(...); "
        "deploy('merge') writes a merged model folder, deploy('serve') starts an "
        "OpenAI-compatible endpoint"
    )

    def __init__(self, connection: LocalConnection) -> None:
        super().__init__(connection)
        self._children: list[subprocess.Popen[bytes]] = []

    @property
    def output_dir(self) -> Path:
        return self.connection.output_dir

    def run_dir(self, provider_job_id: str) -> RunDir:
        """The run folder of a provider job id (its path, or a name under `output_dir`)."""
        path = Path(provider_job_id)
        return RunDir(path if path.is_absolute() else self.output_dir / provider_job_id)

    # -- checks -------------------------------------------------------------------------------------
    def check(self, job: PreparedJob) -> list[Issue]:
        """The base model is here (or may be downloaded: `download`), QLoRA has bitsandbytes, and
        the step settings given both as hyperparameters and as options agree."""
        from finetune_hub.providers.local.models import find_model

        issues: list[Issue] = []
        opts = self.options
        try:
            find_model(
                job.model_id, download=opts.download, trust_remote_code=opts.trust_remote_code
            )
        except ModelNotFoundError as exc:
            issues.append(Issue(code="unknown_model", field="base_model", message=str(exc)))
        for hp, option in (("max_steps", "max_steps"), ("save_steps", "save_steps"),
                           ("logging_steps", "log_steps")):  # fmt: skip
            given, other = job.hyperparameters.get(hp), getattr(opts, option)
            if given is not None and other is not None and given != other:
                issues.append(
                    Issue(
                        code="invalid_option",
                        field=f"options.{option}",
                        message=f"options {option}={other} and hyperparameters {hp}={given} "
                        "disagree; give it once (the hyperparameter is TRL's name)",
                    )
                )
        if opts.distributed == "fsdp" and opts.quantization not in (None, "none"):
            issues.append(
                Issue(
                    code="invalid_option",
                    field="options.distributed",
                    message="FSDP over quantized (QLoRA) weights is not supported by the local "
                    "backend; use distributed='ddp' (a 4-bit copy per GPU) or no quantization",
                )
            )
        quant = opts.quantization
        if quant not in (None, "none") and importlib.util.find_spec("bitsandbytes") is None:
            issues.append(
                Issue(
                    code="missing_dependency",
                    field="options.quantization",
                    message=f"quantization={quant!r} (QLoRA) needs bitsandbytes: {_QLORA_HINT}",
                )
            )
        return issues

    def preflight(self, job: PreparedJob) -> list[Issue]:
        """Enough memory for the base model, before a run starts (local/preflight.py)."""
        from finetune_hub.providers.local.preflight import preflight

        return preflight(self, job)

    # -- data ---------------------------------------------------------------------------------------
    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        """Nothing leaves the machine: the file is copied into the run folder (`data/`), under its
        purpose and content hash, so the worker still reads it after the job layer's temporary
        `.jsonl` (from a `.gz`) is gone. An identical copy already there is reused."""
        with self.connection.errors("upload"):
            digest = _sha256(path)
            folder = self.run_dir(job_id).path / "data"
            target = folder / f"{purpose}-{digest[:16]}.jsonl"
            if not (target.is_file() and _sha256(target) == digest):
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{target.name}.tmp"
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            size = target.stat().st_size
        return DataRef(purpose=purpose, id=str(target.resolve()), path=str(path), bytes=size)

    # -- jobs ---------------------------------------------------------------------------------------
    def find(self, job_id: str) -> ProviderJob | None:
        run = RunDir(self.output_dir / job_id)
        return self.get(str(run.path)) if run.exists() else None

    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        """Write `<output_dir>/<job id>/job.json` and start the worker. For a job whose run exists
        and is not finished (its worker was killed), restart the worker: it resumes from the last
        checkpoint."""
        require_training_stack()
        run = RunDir(self.output_dir / job.job_id)
        if run.exists():
            return self.resume(str(run.path))
        with self.connection.errors("create"):
            run.path.mkdir(parents=True, exist_ok=True)
            write_json_atomic(run.job_path, self._job_file(job, refs))
            run.write_status(state="queued", step=0, created_at=now_iso())
            run.add_event("job created", type="state")
            try:
                self._start(run)
            except BaseException:
                run.job_path.unlink(missing_ok=True)  # never started: a retry creates it again
                raise
        return self.get(str(run.path))

    def _job_file(self, job: PreparedJob, refs: dict[str, DataRef]) -> dict[str, Any]:
        """What the worker reads: the job, its training options and its hyperparameters in the
        TRL / PEFT names (the rules' defaults filled in where the job gave none)."""
        defaults = {
            spec.provider_name: spec.default
            for spec in (job.rules.hyperparameters.values() if job.rules else ())
            if spec.default is not None
        }
        validation = refs.get("validation")
        return {
            "key": job.job_id,
            "spec": {
                "base_model": job.model_id,
                "training_file": refs["training"].id,
                "source_file": refs["training"].path,  # as the user gave it
                "validation_file": validation.id if validation else None,
                "method": job.method,
                "suffix": job.suffix,
                "options": self.options.training(),
            },
            "hyperparameters": {**defaults, **job.hyperparameters},
            "created_at": now_iso(),
        }

    def resume(self, provider_job_id: str) -> ProviderJob:
        """Restart the worker of an unfinished run (after a kill or a crash); it resumes from the
        last checkpoint. A finished or running run is left as it is.

        >>> LocalBackend.from_options(job.spec.options).resume(job.provider_job_id)  # doctest: +SKIP
        """
        require_training_stack()
        run = self.run_dir(provider_job_id)
        with self.connection.errors("resume"):
            status = run.status()
            if status.get("state") in ("succeeded", "cancelled") or pid_alive(status.get("pid")):
                return self.get(str(run.path))
            if run.cancel_requested():
                run.cancel_path.unlink()
            run.write_status(state="queued", error=None, pid=None, finished_at=None)
            run.add_event("restarting the worker", type="state")
            self._start(run)
        return self.get(str(run.path))

    def _start(self, run: RunDir) -> None:
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
        if not self.options.download:  # nothing may reach a hub unless the job says so
            env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
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
        self._children.append(proc)

    def get(self, provider_job_id: str) -> ProviderJob:
        run = self.run_dir(provider_job_id)
        if not run.exists():
            raise ProviderError(
                self.name, "get", f"no local run at {run.path}", status_code=404, retryable=False
            )
        with self.connection.errors("get"):
            return self._described(run)

    def _read(self, run: RunDir) -> ProviderJob:
        for proc in self._children:
            proc.poll()  # reap our own finished workers so their pids read as dead
        status = run.status()
        state = status.get("state", "queued")
        error = status.get("error")
        if state not in TERMINAL_STATES and status.get("pid") and not pid_alive(status["pid"]):
            status = run.status()  # the worker may have finished between the two reads
            state = status.get("state", "queued")
            if state not in TERMINAL_STATES:
                error = (
                    f"the worker process (pid {status.get('pid')}) ended without finishing; see "
                    f"{run.log_path}. Resume from the last checkpoint with "
                    "LocalBackend.from_options(job.spec.options).resume(job.provider_job_id)"
                )
                run.write_status(state="failed", error=error, finished_at=now_iso())
                run.add_event(error, level="error", type="state")
                state = "failed"
        if state not in TERMINAL_STATES and run.cancel_requested():
            state = "cancelling"
        model = str(run.adapter_dir) if state == "succeeded" and run.adapter_dir.is_dir() else None
        return ProviderJob(
            id=str(run.path),
            status=self.state_map(state),
            raw_status=state,
            fine_tuned_model=model,
            error=error if state == "failed" else None,
            error_code="worker_failed" if state == "failed" else None,
            created_at=_parse_time(status.get("created_at")),
            finished_at=_parse_time(status.get("finished_at")),
            raw=status,
            smoke_test=status.get("smoke_test"),
        )

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """The run folders under `output_dir`, newest first, whoever started them (another
        store, another process); the cursor is the last folder's name."""
        with self.connection.errors("list_jobs"):
            folder = self.output_dir
            runs = [RunDir(p) for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
            runs = [run for run in runs if run.exists()]
            runs.sort(key=lambda run: (run.job().get("created_at") or "", run.path.name))
            runs.reverse()
            names = [run.path.name for run in runs]
            if after is not None:
                runs = runs[names.index(after) + 1 :] if after in names else []
            page = runs[:limit]
            jobs = [self._described(run) for run in page]
        return jobs, (page[-1].path.name if len(runs) > limit else None)

    def _described(self, run: RunDir) -> ProviderJob:
        """The run's state with what its job file says (base model, method, local job id)."""
        data = run.job()
        spec = data.get("spec") or {}
        key = data.get("key") or ""
        return self._read(run).model_copy(
            update={
                "base_model": spec.get("base_model"),
                "method": spec.get("method"),
                "local_job_id": key if key.startswith("ftj_") else None,
            }
        )

    def cancel(self, provider_job_id: str) -> None:
        """Graceful: the worker sees the flag at its next batch, saves a checkpoint and stops."""
        run = self.run_dir(provider_job_id)
        with self.connection.errors("cancel"):
            if run.status().get("state") not in TERMINAL_STATES:
                run.request_cancel()
                run.add_event("cancel requested", type="state")

    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        with self.connection.errors("events"):
            events = [JobEvent(**e) for e in self.run_dir(provider_job_id).events()]
        if after is not None:
            ids = [e.id for e in events]
            if after in ids:
                events = events[ids.index(after) + 1 :]
        return events

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        points = []
        with self.connection.errors("metrics"):
            found = self.run_dir(provider_job_id).metrics()
        for p in found:
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
        with self.connection.errors("checkpoints"):
            for step, folder in self.run_dir(provider_job_id).checkpoints():
                created = dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.UTC)
                out.append(
                    Checkpoint(id=folder.name, step=step, model=str(folder), created_at=created)
                )
        return out

    # -- using the model ----------------------------------------------------------------------------
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """Greedy generation with an adapter folder, a merged folder or a base model name
        (`max_tokens`, default 128)."""
        require_training_stack()
        from finetune_hub.providers.local.serve import generate

        return self.call(
            "chat",
            lambda: generate(
                model,
                messages,
                max_new_tokens=max_new_tokens(kwargs),
                device=self.options.device,
            ),
        )

    def delete_model(self, model: str) -> None:
        """Delete an adapter folder a local run wrote (the run folder, its events, metrics and
        checkpoints stay). A folder that is already gone is not an error."""
        path = Path(model)
        if not path.exists():
            return
        if not ((path / "adapter_config.json").is_file() and RunDir(path.parent).exists()):
            raise ProviderError(
                self.name,
                "delete_model",
                f"{path} is not the adapter folder of a local run; finetune_hub deletes only "
                "what it wrote",
                retryable=False,
            )
        self.call("delete_model", lambda: shutil.rmtree(path))


def max_new_tokens(kwargs: dict[str, Any], default: int = 128) -> int:
    """The reply length of a chat call (`max_tokens`, `max_completion_tokens` or
    `max_new_tokens`)."""
    for key in ("max_tokens", "max_completion_tokens", "max_new_tokens"):
        if kwargs.get(key):
            return int(kwargs[key])
    return default


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
