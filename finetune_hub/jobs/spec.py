"""`JobSpec`: one fine-tuning job description, the same for every backend (in code or in a file)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from finetune_hub.errors import JobSpecError


class JobSpec(BaseModel):
    """What to train, where, on what, with which settings.

    >>> JobSpec(provider="openai", base_model="gpt-4.1-mini", training_file="train.jsonl").method
    'sft'

    A job file (YAML or TOML) holds the same keys; relative paths are relative to the file:

    ```yaml
    provider: openai
    base_model: gpt-4.1-mini-2025-04-14
    training_file: train.jsonl
    hyperparameters: {epochs: 3}
    suffix: support-bot
    ```
    """

    model_config = ConfigDict(extra="forbid")

    provider: str
    base_model: str
    training_file: str
    validation_file: str | None = None
    method: str = "sft"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    suffix: str | None = None
    format: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # provider-specific: region, role_arn, endpoint...
    datasets: dict[str, str] = Field(default_factory=dict)  # named data sets beside the files (Vertex RLHF)
    quotas: dict[str, Any] = Field(default_factory=dict)  # raised account quotas, e.g. max_training_records

    @classmethod
    def from_file(cls, path: str | Path) -> JobSpec:
        """Read a job description from a `.yaml`/`.yml` or `.toml` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise JobSpecError(f"{path}: cannot read job file ({exc.strerror})") from None
        data = _parse(path, text)
        if not isinstance(data, dict):
            raise JobSpecError(f"{path}: a job file must hold a mapping of job fields")
        for key in ("training_file", "validation_file"):
            value = data.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                data[key] = str((path.parent / value).resolve())
        if isinstance(data.get("datasets"), dict):
            data["datasets"] = {
                name: str((path.parent / value).resolve())
                if isinstance(value, str) and not Path(value).is_absolute()
                else value
                for name, value in data["datasets"].items()
            }
        try:
            return cls(**data)
        except PydanticValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise JobSpecError(f"{path}: {problems}") from None


def _parse(path: Path, text: str) -> Any:
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise JobSpecError(f"{path}: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise JobSpecError(f"{path}: reading YAML job files needs PyYAML: pip install pyyaml") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JobSpecError(f"{path}: {exc}") from None
