"""`JobSpec`: one fine-tuning job description, the same for every backend (in code or in a file)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer
from pydantic import ValidationError as PydanticValidationError

from finetune_hub.errors import JobSpecError
from finetune_hub.store.secret_policy import is_secret_key

MASK = "**********"


def masked(options: dict[str, Any]) -> dict[str, Any]:
    """`options` with every secret (a secret-named key, a `SecretStr`, a live credential object)
    replaced by a mask, for anything that shows or writes a job description.

    >>> masked({"api_key": "sk-123", "region": "eu-west-1"})
    {'api_key': '**********', 'region': 'eu-west-1'}
    """
    shown: dict[str, Any] = {}
    for key, value in options.items():
        plain = isinstance(value, str | int | float | bool | type(None) | dict | list | tuple)
        if is_secret_key(str(key)) or isinstance(value, SecretStr) or not plain:
            shown[key] = MASK if value is not None else None
        elif isinstance(value, dict):
            shown[key] = masked(value)
        else:
            shown[key] = value
    return shown


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

    @field_serializer("options", when_used="json")
    def _mask_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return masked(options)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, masked(value) if name == "options" else value

    def shown(self) -> dict[str, Any]:
        """The description as plain data, secrets masked (what `repr`, `str` and JSON show)."""
        return {**self.model_dump(), "options": masked(self.options)}

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
