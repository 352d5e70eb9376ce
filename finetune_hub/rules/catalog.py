"""Load the rules data and resolve it for one (provider, base model, method).

The TOML layout is described in docs/rules.md. In short: `[provider]` (identity and dates),
`[blocks.NAME]` (reusable sets of limits, with `extends`), `[hyperparameters.SET.PARAM]`
(hyperparameter specs, a set may `extends` another), `[generic]` (method -> block for models the
rules do not list) and `[[models]]` (id, aliases, status, dates, method -> block). Every block,
set entry and model carries `source` and `as_of`; `unconfirmed` is `true` or a list of the keys
in that table that are UNCONFIRMED.
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
from finetune_hub.rules.schema import BLOCK_FIELDS, HyperparameterSpec, Provenance, ResolvedRules

_META = {"extends", "source", "as_of", "unconfirmed"}
_USER = Provenance(source="user override", as_of=dt.date.today())


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

    def override(self, provider: str, model: str | None = None, method: str | None = None, **fields: Any) -> None:
        """Override rule fields for a model (or the provider's generic rules when `model` is None).

        >>> override("openai", "gpt-4.1-mini", max_tokens_per_example=50_000)  # doctest: +SKIP
        """
        self.provider_data(provider)
        bad = sorted(set(fields) - BLOCK_FIELDS)
        if bad:
            raise RulesError(f"unknown rule field(s) {', '.join(bad)}; known: {', '.join(sorted(BLOCK_FIELDS))}")
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
        entry: dict[str, Any] = {"id": model_id, "aliases": list(aliases), "source": "user", "as_of": dt.date.today()}
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
        self, provider: str, base_model: str, method: str = "sft", *, today: dt.date | None = None
    ) -> tuple[ResolvedRules, list[Issue]]:
        """Flatten the rules for one job; returns them with model-level notices as `Issue`s."""
        data = self.provider_data(provider)
        today = today or dt.date.today()
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
                    message=f"{pinfo.get('display_name', provider)} {base_model} does not support method "
                    f"{method!r}; supported: {', '.join(supported) or 'none'}",
                )
            )
            block_name = _first(model.get("methods", {}).values()) if model else _first(data.get("generic", {}).values())
        values, prov = self._flatten_block(provider, block_name) if block_name else ({}, {})
        if model is not None:
            _apply(values, prov, model.get("overrides", {}), _provenance(model, "overrides"))
        for key in ((provider, None, None), (provider, None, method)) + (
            ((provider, model["id"], None), (provider, model["id"], method)) if model else ()
        ):
            _apply(values, prov, self._overrides.get(key, {}), _USER)
        values["hyperparameters"] = self._hyperparameters(provider, values.get("hyperparameters"))
        ident = {
            "provider": provider,
            "provider_display_name": pinfo.get("display_name", provider),
            "model_id": model["id"] if model else None,
            "requested_model": base_model,
            "method": method,
            "model_status": model.get("status", "active") if model else "generic",
            "status_note": model.get("status_note", "") if model else "",
            "deprecated_on": model.get("deprecated_on") if model else None,
            "shutdown_on": model.get("shutdown_on") if model else None,
            "new_jobs_end": pinfo.get("new_jobs_end"),
        }
        if model is not None:
            for k in ("deprecated_on", "shutdown_on", "model_status"):
                prov[k] = _provenance(model, "status" if k == "model_status" else k)
        prov["new_jobs_end"] = _provenance(pinfo, "new_jobs_end")
        try:
            rules = ResolvedRules(**ident, **values, provenance=prov)
        except PydanticValidationError as exc:
            raise RulesError(f"{provider} rules for {base_model} ({method}) are malformed: {exc}") from None
        notes.extend(_lifecycle_notes(rules, via, today))
        return rules, notes

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

    def _flatten_block(self, provider: str, name: str) -> tuple[dict[str, Any], dict[str, Provenance]]:
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
                prov[key] = _provenance(block, key)
        return values, prov

    def _hyperparameters(self, provider: str, set_name: str | None) -> dict[str, HyperparameterSpec]:
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
                    specs[name] = HyperparameterSpec(name=name, provenance=_provenance(spec, None), **body)
                except PydanticValidationError as exc:
                    raise RulesError(f"{provider}: hyperparameter {current}.{name} is malformed: {exc}") from None
        return specs


# -- module-level convenience -----------------------------------------------------------------
@cache
def default_catalog() -> Catalog:
    """The process-wide catalog used by `fh.validate` and `TuningJob`."""
    return Catalog()


def resolve(provider: str, base_model: str, method: str = "sft", **kw: Any) -> tuple[ResolvedRules, list[Issue]]:
    return default_catalog().resolve(provider, base_model, method, **kw)


def override(provider: str, model: str | None = None, method: str | None = None, **fields: Any) -> None:
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
            text = resources.files("finetune_hub.rules").joinpath(entry.rules).read_text(encoding="utf-8")
        else:
            text = Path(entry.rules).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"provider": {"name": entry.name, "display_name": entry.display_name}}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: {exc}") from None


def _provenance(table: dict[str, Any], key: str | None) -> Provenance:
    unconfirmed = table.get("unconfirmed", False)
    confirmed = not (unconfirmed is True or (key is not None and key in (unconfirmed or ())))
    return Provenance(source=table.get("source", "unknown"), as_of=table.get("as_of", dt.date(1970, 1, 1)), confirmed=confirmed)


def _apply(values: dict[str, Any], prov: dict[str, Provenance], fields: dict[str, Any], p: Provenance) -> None:
    for key, value in fields.items():
        values[key] = value
        prov[key] = p


def _merge(base: dict[str, Any], extra: dict[str, Any], origin: str) -> None:
    for section in ("blocks", "hyperparameters", "generic"):
        base.setdefault(section, {}).update(extra.get(section, {}))
    base.setdefault("provider", {}).update(extra.get("provider", {}))
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


def _lifecycle_notes(rules: ResolvedRules, fine_tuned_from: str | None, today: dt.date) -> list[Issue]:
    notes: list[Issue] = []
    name = rules.model_id or rules.requested_model
    if rules.model_status in ("legacy", "deprecated"):
        notes.append(
            Issue(
                code=f"model_{rules.model_status}",
                severity=Severity.WARNING,
                field="base_model",
                message=f"{name} is {rules.model_status}" + (f": {rules.status_note}" if rules.status_note else "")
                + f" ({rules.cite('model_status')})",
            )
        )
    for field, code, what in (
        ("shutdown_on", "model_shutdown", f"{name} shuts down"),
        ("new_jobs_end", "fine_tuning_ending", f"{rules.provider_display_name} stops accepting new fine-tuning jobs"),
    ):
        date = getattr(rules, field)
        if date is None:
            continue
        passed = date <= today
        severity = Severity.ERROR if passed and rules.confirmed(field) else Severity.WARNING
        tense = "since" if passed else "on"
        notes.append(
            Issue(
                code=code if passed else code + "_announced",
                severity=severity,
                field="base_model",
                message=f"{what} {tense} {date.isoformat()} ({rules.cite(field)})",
            )
        )
    return notes
