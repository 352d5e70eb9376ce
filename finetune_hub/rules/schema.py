"""Typed shapes of the rules data (see docs/rules.md for the TOML layout).

Every fact carries where it comes from: a `Provenance` with the sources a user can open (page
title and URL), the date they were read (`as_of`) and whether the fact is confirmed. Checks
built on unconfirmed facts report warnings, never errors.

>>> p = Provenance(sources=(Source(title="Deprecations", url="https://example.com/d"),),
...                as_of=dt.date(2026, 11, 30))
>>> p.cite()
'source: Deprecations <https://example.com/d>, read 2026-11-30'
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from finetune_hub.data.formats import DataFormat

Method = str  # "sft", "dpo", "rft", "rlhf", "continued-pretraining", "distillation"

#: What a limit is: a hard limit (error), a default account quota (error unless the user
#: declares a raised quota), or an unconfirmed figure (warning).
LimitKind = Literal["hard", "quota", "unconfirmed"]


class Source(BaseModel):
    """A page a user can open: its title and URL (no URL for user overrides and team notes).

    >>> Source(title="Model lifecycle", url="https://example.com/m").link()
    'Model lifecycle <https://example.com/m>'
    """

    model_config = ConfigDict(frozen=True)

    title: str
    url: str | None = None

    def link(self) -> str:
        return f"{self.title} <{self.url}>" if self.url else self.title


class Provenance(BaseModel):
    """Where a fact comes from. `confirmed=False` marks an UNCONFIRMED fact; `note` says why.

    >>> Provenance(sources=(Source(title="team policy"),), as_of=dt.date(2026, 11, 1),
    ...            confirmed=False, note="no public page states it").cite()
    'UNCONFIRMED (no public page states it), source: team policy, read 2026-11-01'
    """

    model_config = ConfigDict(frozen=True)

    sources: tuple[Source, ...] = ()
    as_of: dt.date
    confirmed: bool = True
    note: str = ""

    @property
    def source(self) -> str:
        """The sources as one readable string (titles with their URLs)."""
        return "; ".join(s.link() for s in self.sources) or "unknown"

    def cite(self) -> str:
        flag = ""
        if not self.confirmed:
            flag = "UNCONFIRMED" + (f" ({self.note})" if self.note else "") + ", "
        return f"{flag}source: {self.source}, read {self.as_of.isoformat()}"


class HyperparameterSpec(BaseModel):
    """One hyperparameter as a backend takes it.

    `name` is finetune_hub's vocabulary (`epochs`, `batch_size`, ...); `provider_name` is the
    backend's (`n_epochs`, `epochCount`, ...). `wire="string"` sends the value as a string
    (Bedrock's `hyperParameters` is a map of strings).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    provider_name: str
    type: Literal["int", "float", "str", "bool"]
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: list[Any] | None = None
    default: Any = None
    auto: bool = False  # the backend accepts "auto" (OpenAI) / "Auto"
    auto_value: str = "auto"
    wire: Literal["native", "string"] = "native"
    required: bool = False
    description: str = ""
    provenance: Provenance

    def range_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        lo = "" if self.min is None else f"{self.min:g} {'<' if self.min_exclusive else '≤'} "
        hi = "" if self.max is None else f" {'<' if self.max_exclusive else '≤'} {self.max:g}"
        text = f"{lo}{self.name}{hi}" if (lo or hi) else f"any {self.type}"
        return text + (f" or {self.auto_value!r}" if self.auto else "")


class HyperparameterHint(BaseModel):
    """What to say when a user passes a name the backend does not take (`max_steps`, an absolute
    `learning_rate` where the backend takes a multiplier, ...). `use` names the parameter to use
    instead, when there is one. With `accept`, the backend takes the name as `use` (the value is
    mapped, with the note as a warning) instead of refusing it.

    >>> HyperparameterHint(use="batch_size", note="TRL's name for the batch size").use
    'batch_size'
    """

    model_config = ConfigDict(extra="forbid")

    use: str | None = None
    note: str
    accept: bool = False
    provenance: Provenance


class BatchTokenLimit(BaseModel):
    """Per-record token budget that depends on the batch size (Titan Text)."""

    min_batch: int
    max_batch: int
    max_tokens: int


class RoleRules(BaseModel):
    """Order rules for conversation roles (empty lists mean no constraint)."""

    allowed: list[str] = Field(default_factory=list)
    first: list[str] = Field(default_factory=list)  # roles allowed for the first message
    last: list[str] = Field(default_factory=list)
    alternate: bool = False  # user/assistant(model) must alternate
    system_only_first: bool = True


class ServingPlan(BaseModel):
    """One way to serve a tuned model that a cost estimate prices: a serving mode of the
    provider's registry entry (`kind`) with the deployment options to price it with, and how
    long a commitment binds (`term_hours`, 0 when it can be deleted at any time).

    >>> ServingPlan(kind="azure-deployment", label="Standard", options={"sku": "standard"}).kind
    'azure-deployment'
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    label: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    term_hours: int = 0


class ResolvedRules(BaseModel):
    """All rules that apply to one (provider, base model, method), flattened.

    `provenance` maps each field name to where its value comes from.
    """

    provider: str
    provider_display_name: str
    model_id: str | None  # canonical id; None for the provider's generic rules
    requested_model: str
    method: Method
    model_status: Literal["active", "legacy", "deprecated", "generic"] = "active"
    status_note: str = ""
    deprecated_on: dt.date | None = None
    shutdown_on: dt.date | None = None  # the model shuts down (is retired); TOML `retired_on` too
    shutdown_word: Literal["shuts down", "retires"] = "shuts down"
    new_jobs_end: dt.date | None = None  # no new fine-tuning jobs from this date on
    restricted_on: dt.date | None = None  # from this date only some customers may fine-tune
    restriction: str = ""  # who still may, from `restricted_on` on
    replacement: str = ""  # the provider's named successor
    lifecycle_note: str = ""  # shown with every lifecycle notice
    quota_help: str = ""  # how to raise a default account quota at this provider
    declared_quotas: dict[str, int] = Field(default_factory=dict)  # quotas the user declared
    hyperparameter_hints: dict[str, HyperparameterHint] = Field(default_factory=dict)

    formats: list[DataFormat] = Field(default_factory=list)
    # formats finetune_hub converts to an accepted one before upload, when nothing is lost
    # (`auto_convert = {chat = "gemini"}`): validation checks the converted records
    auto_convert: dict[DataFormat, DataFormat] = Field(default_factory=dict)
    tokenizer: str = "chars:4:1"
    near_limit_margin: float = 0.0  # estimators: within this fraction of a limit -> warning
    message_overhead: int = 0  # tokens added per message (role markers)
    reply_overhead: int = 0  # tokens added once per example (reply priming)
    max_tokens_per_example: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    over_limit: Literal["error", "warning"] = "error"  # "warning" where the backend truncates
    batch_token_limits: list[BatchTokenLimit] = Field(default_factory=list)

    min_training_records: int | None = None
    max_training_records: int | None = None
    min_validation_records: int | None = None
    max_validation_records: int | None = None
    max_total_records: int | None = None
    validation: Literal["optional", "required", "unsupported"] = "optional"
    max_file_bytes: int | None = None
    max_validation_file_bytes: int | None = None

    roles: RoleRules = Field(default_factory=RoleRules)
    forbidden_strings: list[str] = Field(default_factory=list)
    images: bool = False
    max_images_per_example: int | None = None
    tools: bool = True
    weights: bool = True  # assistant `weight` 0/1 honoured
    suffix_max_chars: int | None = None
    suffix_pattern: str | None = None
    severity: dict[str, Literal["error", "warning", "ignore"]] = Field(default_factory=dict)
    quotas: dict[str, str] = Field(default_factory=dict)  # field -> the provider's quota name
    auto_epochs: dict[str, int] | None = (
        None  # OpenAI's "auto" heuristic (base, min_target, max_target, max)
    )
    hosting_usd_per_hour: dict[str, float] = Field(
        default_factory=dict
    )  # deployment SKU (lower case) -> $/hour
    # -- prices and pricing shape (docs/costs.md); a price that is absent is unknown ----------
    training_billing: Literal["tokens", "hours", "free"] = "tokens"
    training_usd_per_1m_tokens: dict[str, float] = Field(default_factory=dict)  # tier -> $
    training_usd_per_hour: dict[str, float] = Field(default_factory=dict)  # tier -> $/hour
    price_tier_option: str | None = None  # the job option that names the tier (training_type)
    default_price_tier: str = "default"  # the tier when that option is not set
    storage_billed: bool = False  # the provider bills each tuned model every month it is kept
    storage_usd_per_month: float | None = None
    machine_usd_per_hour: dict[str, float] = Field(default_factory=dict)  # serving machines
    serving: list[ServingPlan] = Field(default_factory=list)  # deployment types to price
    serving_note: str = ""  # how a tuned model is served when no deployment is priced
    price_note: str = ""  # what else bills (grader tokens, teacher tokens, ...)

    hyperparameters: dict[str, HyperparameterSpec] = Field(default_factory=dict)
    provenance: dict[str, Provenance] = Field(default_factory=dict)

    def cite(self, field: str) -> str:
        p = self.provenance.get(field)
        return p.cite() if p else "finetune_hub default"

    def confirmed(self, field: str) -> bool:
        p = self.provenance.get(field)
        return p is None or p.confirmed

    def limit_kind(self, field: str) -> LimitKind:
        """ "hard" (error), "quota" (a default account quota: error unless raised) or
        "unconfirmed" (warning). A quota the user declared counts as a hard limit at its value."""
        if not self.confirmed(field):
            return "unconfirmed"
        if field in self.quotas and field not in self.declared_quotas:
            return "quota"
        return "hard"

    def quota_text(self, field: str) -> str:
        """What to tell a user who is over a default quota: its name and how to raise it."""
        name = self.quotas.get(field, field)
        how = f" {self.quota_help}" if self.quota_help else ""
        return (
            f"this is {self.provider_display_name}'s default account quota {name!r}, not a hard "
            f"limit.{how} Then declare the raised value: quotas={{{field!r}: N}}"
        )

    def token_limit(self, batch_size: int | None = None) -> int | None:
        """The per-example token cap, narrowed by a batch-size table when there is one."""
        limit = self.max_tokens_per_example
        if batch_size is None or not self.batch_token_limits:
            return limit
        rows = [r for r in self.batch_token_limits if r.min_batch <= batch_size <= r.max_batch]
        if not rows:  # outside the table: the tightest budget it defines is the safe guess
            rows = [min(self.batch_token_limits, key=lambda r: r.max_tokens)]
        budget = rows[0].max_tokens
        return budget if limit is None else min(limit, budget)


#: Fields a rules block may set (everything in ResolvedRules that is a rule, not identity).
BLOCK_FIELDS = frozenset(ResolvedRules.model_fields) - {
    "provider",
    "provider_display_name",
    "model_id",
    "requested_model",
    "method",
    "provenance",
    "model_status",
    "status_note",
    "deprecated_on",
    "shutdown_on",
    "new_jobs_end",
    "shutdown_word",
    "restricted_on",
    "restriction",
    "replacement",
    "lifecycle_note",
    "quota_help",
    "declared_quotas",
    "hyperparameter_hints",
}

#: Block fields that describe prices and how they are charged (`[[pricing]]` entries set them).
PRICE_FIELDS = frozenset(
    {
        "hosting_usd_per_hour",
        "training_billing",
        "training_usd_per_1m_tokens",
        "training_usd_per_hour",
        "price_tier_option",
        "default_price_tier",
        "storage_billed",
        "storage_usd_per_month",
        "machine_usd_per_hour",
        "serving",
        "serving_note",
        "price_note",
    }
)
