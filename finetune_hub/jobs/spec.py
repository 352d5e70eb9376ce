"""`JobSpec`: one fine-tuning job description, the same for every backend (in code or in a file)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator
from pydantic import ValidationError as PydanticValidationError

from finetune_hub.data.formats import DataFormat
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
    mapping: dict[str, str] = Field(
        default_factory=dict
    )  # field -> the file's column: {"instruction": "text"}
    options: dict[str, Any] = Field(
        default_factory=dict
    )  # provider-specific: region, role_arn, endpoint...
    datasets: dict[str, str] = Field(
        default_factory=dict
    )  # named data sets beside the files (Vertex RLHF)
    quotas: dict[str, Any] = Field(
        default_factory=dict
    )  # raised account quotas, e.g. max_training_records

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in _FORMATS:
            raise ValueError(f"{value!r} is not a data format; use one of: {', '.join(_FORMATS)}")
        return value

    @field_validator("mapping")
    @classmethod
    def _plain_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        from finetune_hub.data.convert import check_mapping
        from finetune_hub.errors import ConversionError

        try:
            return check_mapping(value)
        except ConversionError as exc:
            raise ValueError(str(exc)) from None

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
        if path.exists() and not path.is_file():  # a FIFO would block, a device never end
            raise JobSpecError(f"{path}: not a regular file; give a .yaml, .yml or .toml job file")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise JobSpecError(f"{path}: cannot read job file ({exc.strerror})") from None
        data = _parse(path, _decode(path, raw))
        if not isinstance(data, dict):
            raise JobSpecError(f"{path}: a job file must hold a mapping of job fields")
        for key in data:
            if not isinstance(key, str):
                raise JobSpecError(f"{path}: field names must be text, found {key!r}")
        _refuse_lone_surrogates(path, data)
        try:
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
        except (ValueError, OSError) as exc:  # a NUL byte in a path, a symlink loop
            raise JobSpecError(f"{path}: a data file path cannot be used ({exc})") from None
        try:
            return cls(**data)
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise JobSpecError(f"{path}: {problems}") from None


_FORMATS = tuple(f.value for f in DataFormat)


def _decode(path: Path, raw: bytes) -> str:
    """The job file's text: UTF-8 (a byte-order mark is fine), else an error naming the file."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise JobSpecError(f"{path}: the job file is UTF-16; save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobSpecError(
            f"{path}: the job file is not UTF-8 (byte {exc.start + 1} is {raw[exc.start]:#04x}); "
            "save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise JobSpecError(
            f"{path}: the job file holds NUL bytes (UTF-16 without a byte-order mark?); "
            "save it as UTF-8"
        )
    return text


def _refuse_lone_surrogates(path: Path, data: dict[str, Any]) -> None:
    """YAML escapes such as "\\ud83d" make strings no UTF-8 or JSON can hold (the store and
    `model_dump_json` would fail later): refuse them here, naming the field."""
    stack: list[tuple[str, Any]] = [(key, value) for key, value in data.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(path, f"{where} (a key)", key)
                stack.append((f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        else:
            _check_text(path, where, value)


def _check_text(path: Path, where: str, value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JobSpecError(
                f"{path}: {where} holds {value[exc.start]!r}, half of a UTF-16 surrogate pair, "
                "which is not text; write the character itself"
            ) from None


def _parse(path: Path, text: str) -> Any:
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise JobSpecError(f"{path}: {exc}") from None
        except RecursionError:
            raise JobSpecError(f"{path}: the file nests too deeply to be a job file") from None
    try:
        import yaml
    except ImportError:
        raise JobSpecError(
            f"{path}: reading YAML job files needs PyYAML: pip install pyyaml"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JobSpecError(f"{path}: {exc}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2024-13-45
        raise JobSpecError(f"{path}: a value cannot be read ({exc})") from None
    except RecursionError:
        raise JobSpecError(f"{path}: the file nests too deeply to be a job file") from None
