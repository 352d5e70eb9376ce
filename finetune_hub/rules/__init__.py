"""Provider rules as data: one TOML file per provider, loaded by `catalog`.

>>> from finetune_hub import rules
>>> r, notes = rules.resolve("openai", "gpt-4.1-mini", "sft")  # doctest: +SKIP
>>> r.max_tokens_per_example  # doctest: +SKIP
65536
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
from finetune_hub.rules.schema import BatchTokenLimit, HyperparameterSpec, Provenance, ResolvedRules

__all__ = [
    "BatchTokenLimit",
    "Catalog",
    "HyperparameterSpec",
    "Provenance",
    "ResolvedRules",
    "add_model",
    "default_catalog",
    "load",
    "override",
    "providers",
    "resolve",
]
