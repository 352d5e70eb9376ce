"""Load the rules data and resolve it for one (provider, base model, method).

The TOML layout is described in docs/rules.md. In short: `[provider]` (identity and dates),
`[blocks.NAME]` (reusable sets of limits, with `extends`), `[hyperparameters.SET.PARAM]`
(hyperparameter specs, a set may `extends` another), `[generic]` (method -> block for models the
rules do not list), `[[models]]` (id, aliases, status, lifecycle dates, method -> block),
`[sources.KEY]` (title and URL of each page the facts come from), `[hyperparameter_hints.NAME]`
(what to say about names the backend does not take) and `[[pricing]]` (prices and how they are
charged, each entry for some models and methods: docs/costs.md). Every block, set entry, hint and model
carries `source` (source keys) and `as_of` (the date the source was read); `unconfirmed` is `true`
or a list of the keys in that table that are UNCONFIRMED, and `note` says why.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from finetune_hub import registry
from finetune_hub.errors import RulesError
from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.lifecycle import lifecycle_notes
from finetune_hub.rules.lifecycle import today as current_day
from finetune_hub.rules.schema import (
    BLOCK_FIELDS,
    PRICE_FIELDS,
    HyperparameterHint,
    HyperparameterSpec,
    Provenance,
    ResolvedRules,
    Source,
)

_META = {"extends", "source", "as_of", "unconfirmed", "note"}
#: Top-level sections the catalog reads itself; any other table of tables is provider-specific.
_SECTIONS = frozenset(
    {
        "provider",
        "generic",
        "blocks",
        "hyperparameters",
        "hyperparameter_hints",
        "models",
        "sources",
        "pricing",
    }
)
#: Model keys that describe its lifecycle; a provider-level key is the default for its models.
LIFECYCLE_KEYS = (
    "deprecated_on",
    "new_jobs_end",
    "shutdown_on",
    "restricted_on",
    "restriction",
    "replacement",
    "lifecycle_note",
)


def _user(what: str = "user override") -> Provenance:
    return Provenance(sources=(Source(title=what),), as_of=current_day())


class Catalog:
    """Rules of every provider, plus the overrides a user made in code.

    >>> cat = Catalog()
    >>> cat.override("bedrock", "amazon.titan-text-lite-v1", max_training_records=20000)  # doctest: +SKIP
    >>> rules, notes = cat.resolve("bedrock", "amazon.titan-text-lite-v1", "sft")  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self._overrides: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}

    # -- loading ----------------------------------------------------------------------------
    def provider_data(self, provider: str) -> dict[str, Any]:
        if provider not in self._data:
            self._data[provider] = _read_rules(registry.entry(provider))
        return self._data[provider]

    def load(self, path: str | Path) -> None:
        """Merge a user rules file (same layout as the packaged ones) over the packaged rules."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RulesError(f"{path}: cannot read rules file: {exc}") from None
        name = data.get("provider", {}).get("name")
        if not name:
            raise RulesError(f"{path}: [provider] name is missing")
        base = self.provider_data(name)
        _merge(base, data, str(path))

    def override(
        self, provider: str, model: str | None = None, method: str | None = None, **fields: Any
    ) -> None:
        """Override rule fields for a model (or the provider's generic rules when `model` is None).

        >>> override("openai", "gpt-4.1-mini", max_tokens_per_example=50_000)  # doctest: +SKIP
        """
        self.provider_data(provider)
        bad = sorted(set(fields) - BLOCK_FIELDS)
        if bad:
            raise RulesError(
                f"unknown rule field(s) {', '.join(bad)}; known: {', '.join(sorted(BLOCK_FIELDS))}"
            )
        canonical = self._find_model(provider, model)[0] if model else None
        key = (provider, canonical.get("id") if canonical else model, method)
        self._overrides.setdefault(key, {}).update(fields)

    def add_model(
        self,
        provider: str,
        model_id: str,
        *,
        like: str | None = None,
        methods: dict[str, str] | None = None,
        aliases: list[str] | tuple[str, ...] = (),
        **fields: Any,
    ) -> None:
        """Add a model the packaged rules do not list, copying another model's rules (`like`).

        >>> add_model("bedrock", "amazon.nova-2-lite-v1:0:256k", like="amazon.nova-lite-v1:0:300k")  # doctest: +SKIP
        """
        data = self.provider_data(provider)
        entry: dict[str, Any] = {
            "id": model_id,
            "aliases": list(aliases),
            "source": "user",
            "as_of": current_day(),
        }
        if like:
            found, _ = self._find_model(provider, like)
            if found is None:
                raise RulesError(f"{provider}: cannot copy unknown model {like!r}")
            entry = {**found, **entry}
        if methods:
            entry["methods"] = methods
        if "methods" not in entry:
            raise RulesError(f"{provider}: add_model({model_id!r}) needs like= or methods=")
        data.setdefault("models", [])
        data["models"] = [m for m in data["models"] if m["id"] != model_id] + [entry]
        if fields:
            self.override(provider, model_id, **fields)

    # -- resolving --------------------------------------------------------------------------
    def resolve(
        self,
        provider: str,
        base_model: str,
        method: str = "sft",
        *,
        today: dt.date | None = None,
        quotas: dict[str, Any] | None = None,
    ) -> tuple[ResolvedRules, list[Issue]]:
        """Flatten the rules for one job; returns them with model-level notices as `Issue`s.

        `today` defaults to `FINETUNE_HUB_TODAY` or the real date; `quotas` are the user's raised
        default quotas (`{"max_training_records": 20000}`).
        """
        data = self.provider_data(provider)
        day = today or current_day()
        pinfo = data.get("provider", {})
        notes: list[Issue] = []
        model, via = self._find_model(provider, base_model)
        if model is None:
            block_name = data.get("generic", {}).get(method)
            notes.append(_unknown_model(provider, base_model, self.model_ids(provider)))
        else:
            block_name = model.get("methods", {}).get(method)
        if block_name is None:
            supported = sorted((model or {}).get("methods") or data.get("generic", {}))
            notes.append(
                Issue(
                    code="unsupported_method",
                    field="method",
                    message=f"{pinfo.get('display_name', provider)} {base_model} does not support "
                    f"method {method!r}; supported: {', '.join(supported) or 'none'}",
                )
            )
            block_name = (
                _first(model.get("methods", {}).values())
                if model
                else _first(data.get("generic", {}).values())
            )
        values, prov = self._flatten_block(provider, block_name) if block_name else ({}, {})
        if model is not None:
            _apply(
                values,
                prov,
                model.get("overrides", {}),
                self._provenance(provider, model, "overrides"),
            )
        prices, price_prov = self.pricing(provider, model["id"] if model else None, method)
        values.update(prices)
        prov.update(price_prov)
        for key in ((provider, None, None), (provider, None, method)) + (
            ((provider, model["id"], None), (provider, model["id"], method)) if model else ()
        ):
            fields = self._overrides.get(key, {})
            _apply(values, prov, fields, _user())
            if "quotas" in values and "quotas" not in fields:  # your own value is a hard limit
                values["quotas"] = {k: v for k, v in values["quotas"].items() if k not in fields}
        values["hyperparameters"] = self._hyperparameters(provider, values.get("hyperparameters"))
        ident: dict[str, Any] = {
            "provider": provider,
            "provider_display_name": pinfo.get("display_name", provider),
            "model_id": model["id"] if model else None,
            "requested_model": base_model,
            "method": method,
            "model_status": model.get("status", "active") if model else "generic",
            "status_note": model.get("status_note", "") if model else "",
            "quota_help": pinfo.get("quota_help", ""),
            "hyperparameter_hints": self._hints(provider),
        }
        if model is not None:
            prov["model_status"] = self._provenance(provider, model, "status")
        self._lifecycle(provider, pinfo, model, ident, prov)
        try:
            rules = ResolvedRules(**ident, **values, provenance=prov)
        except PydanticValidationError as exc:
            raise RulesError(
                f"{provider} rules for {base_model} ({method}) are malformed: {exc}"
            ) from None
        if quotas:
            rules, quota_notes = _declare_quotas(rules, quotas)
            notes.extend(quota_notes)
        alternatives = self._still_accepted(provider, method, day) if model else []
        notes.extend(lifecycle_notes(rules, via, day, alternatives))
        return rules, notes

    def _lifecycle(
        self,
        provider: str,
        pinfo: dict[str, Any],
        model: dict[str, Any] | None,
        ident: dict[str, Any],
        prov: dict[str, Provenance],
    ) -> None:
        """Lifecycle keys: the model's own, else the provider-wide default."""
        for key in LIFECYCLE_KEYS:
            toml_key = key
            table: dict[str, Any] | None = None
            if model is not None and key == "shutdown_on" and "retired_on" in model:
                table, toml_key = model, "retired_on"
                ident["shutdown_word"] = "retires"
            elif model is not None and key in model:
                table = model
            elif key in pinfo:
                table = pinfo
            if table is None:
                continue
            ident[key] = table[toml_key]
            prov[key] = self._provenance(provider, table, toml_key)

    def _still_accepted(self, provider: str, method: str, day: dt.date) -> list[str]:
        """Models of the provider that take `method` and whose dates have not passed on `day`."""
        pinfo = self.provider_data(provider).get("provider", {})
        out = []
        for m in self.models(provider):
            if method not in m.get("methods", {}):
                continue
            ends = [m.get(k, pinfo.get(k)) for k in ("new_jobs_end", "shutdown_on", "retired_on")]
            if all(d is None or d > day for d in ends):
                out.append(m["id"])
        return out

    def facts(self, provider: str) -> list[tuple[str, Provenance]]:
        """Every table of the provider's rules with its provenance: `[provider]`, blocks,
        hyperparameter specs, hints and models, as `(where, provenance)`.

        >>> [w for w, p in Catalog().facts("openai")][:2]  # doctest: +SKIP
        ['[provider]', 'blocks.base']
        """
        data = self.provider_data(provider)
        out = [("[provider]", self._provenance(provider, data.get("provider", {}), None))]
        for name, block in data.get("blocks", {}).items():
            out.append((f"blocks.{name}", self._provenance(provider, block, None)))
        for set_name, entries in data.get("hyperparameters", {}).items():
            for param, spec in entries.items():
                if param != "extends" and isinstance(spec, dict):
                    where = f"hyperparameters.{set_name}.{param}"
                    out.append((where, self._provenance(provider, spec, None)))
        for name, hint in data.get("hyperparameter_hints", {}).items():
            out.append((f"hyperparameter_hints.{name}", self._provenance(provider, hint, None)))
        for model in data.get("models", []):
            out.append((f"model {model['id']}", self._provenance(provider, model, None)))
        for n, entry in enumerate(data.get("pricing", [])):
            scope = ", ".join(entry.get("models", []) + entry.get("methods", [])) or "all"
            out.append((f"pricing[{n}] ({scope})", self._provenance(provider, entry, None)))
        for section, tables in data.items():  # provider-specific tables (prices, surfaces)
            if section in _SECTIONS or not isinstance(tables, dict):
                continue
            for name, table in tables.items():
                if isinstance(table, dict) and "as_of" in table:
                    out.append((f"{section}.{name}", self._provenance(provider, table, None)))
        return out

    def stale(
        self, days: int, providers: list[str] | None = None, *, today: dt.date | None = None
    ) -> list[tuple[str, str, Provenance]]:
        """Facts read more than `days` days before `today`: `(provider, where, provenance)`."""
        day = today or current_day()
        return [
            (p, where, prov)
            for p in providers or list(registry.names())
            for where, prov in self.facts(p)
            if (day - prov.as_of).days > days
        ]

    def pricing(
        self, provider: str, model_id: str | None, method: str
    ) -> tuple[dict[str, Any], dict[str, Provenance]]:
        """The price fields of the `[[pricing]]` entries that apply to `model_id` (a canonical
        id, or None for a model the rules do not list) and `method`, in file order: an entry
        without `models` or `methods` applies to all, and a later entry replaces an earlier
        one's fields. Each field keeps the provenance of the entry that set it.

        >>> values, prov = Catalog().pricing("azure-openai", "gpt-4.1-2025-04-14", "sft")
        >>> values["training_usd_per_1m_tokens"]["globalstandard"]
        2.0
        """
        values: dict[str, Any] = {}
        prov: dict[str, Provenance] = {}
        for entry in self.provider_data(provider).get("pricing", []):
            if "models" in entry and model_id not in entry["models"]:
                continue
            if "methods" in entry and method not in entry["methods"]:
                continue
            fields = {k: v for k, v in entry.items() if k not in _META | {"models", "methods"}}
            unknown = set(fields) - PRICE_FIELDS
            if unknown:
                raise RulesError(
                    f"{provider}: a [[pricing]] entry has unknown field(s) {sorted(unknown)}; "
                    f"known: {', '.join(sorted(PRICE_FIELDS))}"
                )
            for key, value in fields.items():
                values[key] = value
                prov[key] = self._provenance(provider, entry, key)
        return values, prov

    def model_ids(self, provider: str) -> list[str]:
        return [m["id"] for m in self.provider_data(provider).get("models", [])]

    def models(self, provider: str) -> list[dict[str, Any]]:
        return list(self.provider_data(provider).get("models", []))

    def _find_model(self, provider: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        data = self.provider_data(provider)
        models = data.get("models", [])
        lowered = name.lower()
        for m in models:
            if lowered == m["id"].lower() or lowered in (a.lower() for a in m.get("aliases", [])):
                return m, None
        pattern = data.get("provider", {}).get("fine_tuned_pattern")
        match = re.match(pattern, name) if pattern else None
        if match:
            found, _ = self._find_model(provider, match.group("base"))
            if found is not None:
                return found, name
        return None, None

    def _flatten_block(
        self, provider: str, name: str
    ) -> tuple[dict[str, Any], dict[str, Provenance]]:
        blocks = self.provider_data(provider).get("blocks", {})
        chain: list[dict[str, Any]] = []
        seen: set[str] = set()
        current: str | None = name
        while current:
            if current in seen:
                raise RulesError(f"{provider}: block {current!r} extends itself")
            seen.add(current)
            block = blocks.get(current)
            if block is None:
                raise RulesError(f"{provider}: rules block {current!r} is not defined")
            chain.append(block)
            current = block.get("extends")
        values: dict[str, Any] = {}
        prov: dict[str, Provenance] = {}
        for block in reversed(chain):
            fields = {k: v for k, v in block.items() if k not in _META}
            unknown = set(fields) - BLOCK_FIELDS
            if unknown:
                raise RulesError(f"{provider}: block has unknown field(s) {sorted(unknown)}")
            for key, value in fields.items():
                values[key] = value
                prov[key] = self._provenance(provider, block, key)
        return values, prov

    def _provenance(self, provider: str, table: dict[str, Any], key: str | None) -> Provenance:
        """The provenance of `key` in `table` (or of the whole table when `key` is None)."""
        unconfirmed = table.get("unconfirmed", False)
        confirmed = not (unconfirmed is True or (key is not None and key in (unconfirmed or ())))
        return Provenance(
            sources=self.sources(provider, table.get("source")),
            as_of=table.get("as_of", dt.date(1970, 1, 1)),
            confirmed=confirmed,
            note="" if confirmed else table.get("note", ""),
        )

    def sources(self, provider: str, ref: str | list[str] | None) -> tuple[Source, ...]:
        """Source keys (`"aws-prep"`) to pages; text that is no key is kept as a title."""
        known = self.provider_data(provider).get("sources", {})
        refs = [ref] if isinstance(ref, str) else list(ref or [])
        out = []
        for r in refs:
            entry = known.get(r)
            out.append(
                Source(title=entry["title"], url=entry.get("url")) if entry else Source(title=r)
            )
        return tuple(out)

    def _hints(self, provider: str) -> dict[str, HyperparameterHint]:
        hints = self.provider_data(provider).get("hyperparameter_hints", {})
        try:
            return {
                name: HyperparameterHint(
                    use=h.get("use"),
                    note=h["note"],
                    accept=h.get("accept", False),
                    provenance=self._provenance(provider, h, None),
                )
                for name, h in hints.items()
            }
        except (KeyError, PydanticValidationError) as exc:
            raise RulesError(f"{provider}: a hyperparameter hint is malformed: {exc}") from None

    def _hyperparameters(
        self, provider: str, set_name: str | None
    ) -> dict[str, HyperparameterSpec]:
        if not set_name:
            return {}
        sets = self.provider_data(provider).get("hyperparameters", {})
        specs: dict[str, HyperparameterSpec] = {}
        chain = []
        current: str | None = set_name
        while current:
            entry = sets.get(current)
            if entry is None:
                raise RulesError(f"{provider}: hyperparameter set {current!r} is not defined")
            chain.append(entry)
            current = entry.get("extends")
        for entry in reversed(chain):
            for name, spec in entry.items():
                if name == "extends":
                    continue
                if spec is False:  # a set may remove an inherited parameter
                    specs.pop(name, None)
                    continue
                body = {k: v for k, v in spec.items() if k not in _META}
                try:
                    specs[name] = HyperparameterSpec(
                        name=name, provenance=self._provenance(provider, spec, None), **body
                    )
                except PydanticValidationError as exc:
                    raise RulesError(
                        f"{provider}: hyperparameter {current}.{name} is malformed: {exc}"
                    ) from None
        return specs


# -- module-level convenience -----------------------------------------------------------------
@cache
def default_catalog() -> Catalog:
    """The process-wide catalog used by `fh.validate` and `TuningJob`."""
    return Catalog()


def resolve(
    provider: str, base_model: str, method: str = "sft", **kw: Any
) -> tuple[ResolvedRules, list[Issue]]:
    return default_catalog().resolve(provider, base_model, method, **kw)


def override(
    provider: str, model: str | None = None, method: str | None = None, **fields: Any
) -> None:
    default_catalog().override(provider, model, method, **fields)


def add_model(provider: str, model_id: str, **kw: Any) -> None:
    default_catalog().add_model(provider, model_id, **kw)


def load(path: str | Path) -> None:
    default_catalog().load(path)


def providers() -> tuple[str, ...]:
    """The providers the registry knows (each has a rules file)."""
    return tuple(registry.names())


# -- helpers ------------------------------------------------------------------------------------
def _read_rules(entry: registry.ProviderEntry) -> dict[str, Any]:
    """A provider's rules: the packaged file named by its registry entry, or a plugin's path."""
    packaged = "/" not in entry.rules and "\\" not in entry.rules
    where = f"finetune_hub/rules/{entry.rules}" if packaged else entry.rules
    try:
        if packaged:
            text = (
                resources.files("finetune_hub.rules")
                .joinpath(entry.rules)
                .read_text(encoding="utf-8")
            )
        else:
            text = Path(entry.rules).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"provider": {"name": entry.name, "display_name": entry.display_name}}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: {exc}") from None


def _apply(
    values: dict[str, Any], prov: dict[str, Provenance], fields: dict[str, Any], p: Provenance
) -> None:
    for key, value in fields.items():
        values[key] = value
        prov[key] = p


def _merge(base: dict[str, Any], extra: dict[str, Any], origin: str) -> None:
    for section in ("blocks", "hyperparameters", "generic", "sources", "hyperparameter_hints"):
        base.setdefault(section, {}).update(extra.get(section, {}))
    base.setdefault("provider", {}).update(extra.get("provider", {}))
    base["pricing"] = base.get("pricing", []) + extra.get("pricing", [])  # later entries win
    new = {m["id"]: m for m in extra.get("models", [])}
    base["models"] = [m for m in base.get("models", []) if m["id"] not in new] + list(new.values())


def _first(values: Any) -> Any:
    return next(iter(values), None)


def _unknown_model(provider: str, name: str, known: list[str]) -> Issue:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return Issue(
        code="unknown_model",
        severity=Severity.WARNING,
        field="base_model",
        message=f"{name!r} is not in finetune_hub's {provider} rules; the provider's generic rules apply."
        f"{hint} Add it with fh.rules.add_model({provider!r}, {name!r}, like=...).",
    )


def _declare_quotas(
    rules: ResolvedRules, quotas: dict[str, Any]
) -> tuple[ResolvedRules, list[Issue]]:
    """Apply the user's declared account quotas: every field tied to the same provider quota
    takes the declared value. Keys that name no default quota get a warning."""
    notes: list[Issue] = []
    values: dict[str, int] = {}
    prov = dict(rules.provenance)
    where = f"{rules.provider_display_name} {rules.model_id or rules.requested_model}"
    declarable = ", ".join(sorted(rules.quotas)) or "none"
    for key, raw in quotas.items():
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            notes.append(
                Issue(
                    code="invalid_quota",
                    field=f"quotas.{key}",
                    message=f"quota {key}={raw!r} must be a positive whole number",
                )
            )
            continue
        if key not in rules.quotas:
            kind = "not a rule" if key not in BLOCK_FIELDS else f"a {rules.limit_kind(key)} limit"
            notes.append(
                Issue(
                    code="quota_not_applicable",
                    severity=Severity.WARNING,
                    field=f"quotas.{key}",
                    message=f"{key} is {kind} for {where}, not a default account quota, so the "
                    f"declared value changes nothing; quotas you can declare here: {declarable}",
                )
            )
            continue
        name = rules.quotas[key]
        for field, quota in rules.quotas.items():
            if quota == name:
                values[field] = raw
                prov[field] = _user(f"your declared quota {name!r} = {raw:,}")
    if not values:
        return rules, notes
    update: dict[str, Any] = dict(values)
    update["declared_quotas"] = {**rules.declared_quotas, **values}
    update["provenance"] = prov
    return rules.model_copy(update=update), notes
