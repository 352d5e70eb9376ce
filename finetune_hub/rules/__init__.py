"""Provider rules as data: one TOML file per provider, loaded by `catalog`; each fact with the
pages it comes from (title and URL) and the date they were read.

>>> from finetune_hub import rules
>>> r, notes = rules.resolve("openai", "gpt-4.1-mini", "sft")  # doctest: +SKIP
>>> r.max_tokens_per_example, r.limit_kind("max_tokens_per_example")  # doctest: +SKIP
(65536, 'unconfirmed')
"""

from finetune_hub.rules.catalog import (
    Catalog,
    add_model,
    default_catalog,
    load,
    override,
    providers,
    resolve,
)
from finetune_hub.rules.lifecycle import today
from finetune_hub.rules.schema import (
    BatchTokenLimit,
    HyperparameterHint,
    HyperparameterSpec,
    Provenance,
    ResolvedRules,
    Source,
)

__all__ = [
    "BatchTokenLimit",
    "Catalog",
    "HyperparameterHint",
    "HyperparameterSpec",
    "Provenance",
    "ResolvedRules",
    "Source",
    "add_model",
    "default_catalog",
    "load",
    "override",
    "providers",
    "resolve",
    "today",
]
