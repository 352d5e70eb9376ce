"""`CostEstimate`: what a job will cost before anything is uploaded, from its validation statistics
and the prices in the rules data (docs/costs.md gives every formula).

- trained tokens = Σ min(per-example cap, tokens of example) × epochs (the epochs given, the
  backend's default, or its "auto" rule where the rules state one);
- training = trained tokens × price per 1M tokens / 1,000,000 (token-billed backends), or an
  hourly rate × the run's hours, which nobody knows before it runs (RFT, Vertex RLHF);
- storage = a monthly price per tuned model, where the provider charges one;
- serving = one line per deployment type the rules name, priced by that serving mode's
  `Deployer.cost()` (the jobs layer fills them in): per hour, day (24 h) and month (720 h).

Every price names its sources (title and link) and the date they were read; a price that no
source gives is `None`, shown as "unknown", never guessed. Nothing here switches on a provider:
how each provider charges is data (`[[pricing]]` in its rules file).

>>> est = fh.TuningJob(provider="azure-openai", base_model="gpt-4.1", training_file="chat.jsonl",
...                    options={"training_type": "GlobalStandard"}).estimate_cost()  # doctest: +SKIP
>>> est.training.usd, est.trained_tokens  # doctest: +SKIP
(0.0026, 1300)
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from finetune_hub.checks.report import ValidationReport
from finetune_hub.rules.schema import Provenance, ResolvedRules

HOURS_PER_DAY = 24
HOURS_PER_MONTH = 720  # 30 days, as the providers' own cost pages count a month
_URL = re.compile(r"<(https?://[^>\s]+)>")


class PriceSource(BaseModel):
    """Where one price comes from: readable sources (titles with links), the links alone, the
    date they were read, and whether a source confirms the figure (with why not)."""

    text: str = "unknown"
    urls: list[str] = Field(default_factory=list)
    as_of: str | None = None
    confirmed: bool = True
    note: str = ""

    @classmethod
    def of(cls, prov: Provenance | None) -> PriceSource | None:
        """From the provenance of a rules field (None when the field has none)."""
        if prov is None:
            return None
        return cls(
            text=prov.source,
            urls=[s.url for s in prov.sources if s.url],
            as_of=prov.as_of.isoformat(),
            confirmed=prov.confirmed,
            note=prov.note,
        )

    @classmethod
    def from_text(cls, text: str | None, as_of: str | None) -> PriceSource | None:
        """From a free-text source (`"Title <https://...>"`) and a date, as deployers give them."""
        if not text:
            return None
        text, _, note = text.partition("; UNCONFIRMED: ")
        unconfirmed = bool(note) or "UNCONFIRMED" in text
        return cls(
            text=text, urls=_URL.findall(text), as_of=as_of, confirmed=not unconfirmed, note=note
        )

    def cite(self) -> str:
        flag = "" if self.confirmed else "UNCONFIRMED" + (f" ({self.note})" if self.note else "")
        read = f", read {self.as_of}" if self.as_of else ""
        return (f"{flag}, " if flag else "") + f"source: {self.text}{read}"


class CostLine(BaseModel):
    """One part of the bill (training, storage): its amount in USD (None: unknown), the unit
    price it comes from, the formula with the numbers filled in, and where the price comes from.
    `charged=False` says the provider does not bill this part at all."""

    what: str
    usd: float | None = None
    unit_usd: float | None = None
    unit: str = ""
    formula: str = ""
    charged: bool = True
    source: PriceSource | None = None

    @property
    def known(self) -> bool:
        return self.usd is not None or not self.charged

    def text(self) -> str:
        if not self.charged:
            return f"{self.what}: not charged"
        amount = "unknown" if self.usd is None else usd(self.usd)
        return f"{self.what}: {amount} ({self.formula})"


class ServingCost(BaseModel):
    """What one way of serving the tuned model costs while it exists: per hour, day (24 h) and
    month (720 h); for a commitment, the whole term (`term_hours` × hourly). `note` is the
    deployer's own sentence (units × rate, a commitment's terms, "not needed", ...)."""

    kind: str
    label: str
    hourly_usd: float | None = None
    term_hours: int = 0
    note: str | None = None
    source: PriceSource | None = None
    available: bool = True  # False: this mode does not serve this model (the note says why)

    @property
    def daily_usd(self) -> float | None:
        return None if self.hourly_usd is None else self.hourly_usd * HOURS_PER_DAY

    @property
    def monthly_usd(self) -> float | None:
        return None if self.hourly_usd is None else self.hourly_usd * HOURS_PER_MONTH

    @property
    def commitment_usd(self) -> float | None:
        if not self.term_hours or self.hourly_usd is None:
            return None
        return self.hourly_usd * self.term_hours

    def text(self) -> str:
        if not self.available:
            return f"{self.label}: {self.note}"
        if self.hourly_usd is None:
            rates = "unknown per hour"
        else:
            rates = (
                f"{usd(self.hourly_usd)}/hour, {usd(self.daily_usd)}/day, "
                f"{usd(self.monthly_usd)}/month"
            )
        if self.term_hours:
            whole = "unknown" if self.commitment_usd is None else usd(self.commitment_usd)
            rates += f"; the {self.term_hours:,}-hour term costs {whole} in all"
        return f"{self.label}: {rates}"


class CostEstimate(BaseModel):
    """What a job will cost: trained tokens, training, storage and each way of serving the
    model, every price with its source and date ("unknown" where no source gives one).

    >>> est = job.estimate_cost()  # doctest: +SKIP
    >>> print(est)  # doctest: +SKIP
    >>> est.training.usd, est.serving[0].hourly_usd, est.sources()  # doctest: +SKIP
    """

    provider: str
    provider_display_name: str = ""
    base_model: str
    model_id: str | None = None
    method: str
    tier: str | None = None
    estimated_on: dt.date
    records: int = 0
    tokens_per_epoch: int | None = None
    epochs: int | None = None
    epochs_source: str = ""
    trained_tokens: int | None = None
    training_billing: Literal["tokens", "hours", "free"] = "tokens"
    training: CostLine
    storage: CostLine
    serving: list[ServingCost] = Field(default_factory=list)
    serving_note: str = ""
    notes: list[str] = Field(default_factory=list)

    # -- reading it ------------------------------------------------------------------------------
    @property
    def training_usd(self) -> float | None:
        """The training run's estimated cost in USD, or None when it cannot be known in advance."""
        return self.training.usd

    def hourly(self, kind: str | None = None) -> float | None:
        """The hourly price of the first serving line of `kind` (default: the first line)."""
        for line in self.serving:
            if kind is None or line.kind == kind:
                return line.hourly_usd
        return None

    def sources(self) -> list[PriceSource]:
        """Every price source used, once each."""
        seen: dict[str, PriceSource] = {}
        for src in [self.training.source, self.storage.source, *(s.source for s in self.serving)]:
            if src is not None:
                seen.setdefault(src.text + (src.as_of or ""), src)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what `finetune-hub cost --json` prints)."""
        data = self.model_dump(mode="json")
        for line, out in zip(self.serving, data["serving"], strict=True):
            out.update(
                daily_usd=line.daily_usd,
                monthly_usd=line.monthly_usd,
                commitment_usd=line.commitment_usd,
            )
        return data

    # -- display ---------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """The estimate as plain-text lines (what `print(estimate)` and the CLI show)."""
        name = self.model_id or self.base_model
        tier = f", {self.tier} tier" if self.tier else ""
        out = [
            f"cost estimate: {self.provider_display_name or self.provider} {name} "
            f"({self.method}{tier}), on {self.estimated_on}"
        ]
        if self.trained_tokens is not None:
            out.append(
                f"  trained tokens: {self.trained_tokens:,} = {self.tokens_per_epoch:,} tokens "
                f"per epoch x {self.epochs} epochs ({self.epochs_source})"
            )
        elif self.training_billing == "tokens":
            out.append(
                "  trained tokens: unknown (no epoch count given and no default in the rules)"
            )
        out.append("  " + self.training.text())
        if self.storage.charged:
            out.append("  " + self.storage.text())
        if self.serving:
            out.append("  serving (billed while a deployment exists):")
            out.extend(f"    {line.text()}" for line in self.serving)
        if self.serving_note:
            out.append(f"  serving: {self.serving_note}")
        out.extend(f"  note: {n}" for n in self.notes)
        cited = self.sources()
        if cited:
            out.append("  prices from:")
            out.extend(f"    {src.cite()}" for src in cited)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        name = html.escape(self.model_id or self.base_model)
        head = (
            f"<b>Cost estimate</b>: {html.escape(self.provider_display_name or self.provider)} "
            f"{name} ({html.escape(self.method)}), {self.estimated_on}"
        )
        rows = [("trained tokens", _tokens_text(self), "")]
        for line in (self.training, self.storage):
            if line.charged:
                amount = "unknown" if line.usd is None else usd(line.usd)
                rows.append((line.what, f"<b>{amount}</b>", html.escape(line.formula)))
        body = "".join(
            f"<tr><td>{html.escape(a)}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows
        )
        serving = "".join(
            "<tr>"
            f"<td>{html.escape(s.label)}</td>"
            f"<td>{_money(s.hourly_usd) if s.available else '—'}</td>"
            f"<td>{_money(s.daily_usd) if s.available else '—'}</td>"
            f"<td>{_money(s.monthly_usd) if s.available else '—'}</td>"
            f"<td>{html.escape(s.note or '')}</td>"
            "</tr>"
            for s in self.serving
        )
        serving_table = (
            "<table><tr><th>serving</th><th>per hour</th><th>per day</th><th>per month</th>"
            f"<th>note</th></tr>{serving}</table>"
            if serving
            else ""
        )
        note = f"<p>{html.escape(self.serving_note)}</p>" if self.serving_note else ""
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        sources = "".join(f"<li>{_source_html(s)}</li>" for s in self.sources())
        return (
            f"<div>{head}<table>{body}</table>{serving_table}{note}"
            f"<ul>{notes}</ul><p>prices from:</p><ul>{sources}</ul></div>"
        )


# -- computing it ----------------------------------------------------------------------------------
def estimate(
    report: ValidationReport,
    rules: ResolvedRules,
    *,
    options: dict[str, Any] | None = None,
    serving: list[ServingCost] | None = None,
    today: dt.date | None = None,
) -> CostEstimate:
    """The estimate for a validated job: `report` gives the token statistics and epochs,
    `rules` the prices and how they are charged, `options` the job options (the training tier
    named by `rules.price_tier_option`), `serving` the priced deployment types.

    >>> est = estimate(report, rules, serving=[])  # doctest: +SKIP
    """
    from finetune_hub.rules.lifecycle import today as current_day

    stats = report.stats
    per_epoch = stats.tokens_per_epoch
    if per_epoch is None and stats.estimated_trained_tokens is not None and stats.epochs:
        per_epoch = stats.estimated_trained_tokens // stats.epochs
    trained = per_epoch * stats.epochs if per_epoch is not None and stats.epochs else None
    tier = _tier(rules, options or {})
    training = _training(rules, tier, trained)
    notes = [rules.price_note] if rules.price_note else []
    return CostEstimate(
        provider=rules.provider,
        provider_display_name=rules.provider_display_name,
        base_model=report.base_model,
        model_id=rules.model_id,
        method=rules.method,
        tier=tier if rules.price_tier_option else None,
        estimated_on=today or current_day(),
        records=stats.training.records,
        tokens_per_epoch=per_epoch,
        epochs=stats.epochs,
        epochs_source=stats.epochs_source,
        trained_tokens=trained if rules.training_billing == "tokens" else None,
        training_billing=rules.training_billing,
        training=training,
        storage=_storage(rules),
        serving=list(serving or []),
        serving_note=rules.serving_note,
        notes=notes,
    )


def _tier(rules: ResolvedRules, options: dict[str, Any]) -> str:
    given = options.get(rules.price_tier_option) if rules.price_tier_option else None
    return str(given or rules.default_price_tier).lower()


def _price(table: dict[str, float], tier: str) -> float | None:
    """The price of `tier`, else the price for any tier (`any`), else unknown."""
    lowered = {k.lower(): v for k, v in table.items()}
    value = lowered.get(tier, lowered.get("any"))
    return None if value is None else float(value)


def _training(rules: ResolvedRules, tier: str, trained: int | None) -> CostLine:
    if rules.training_billing == "free":
        return CostLine(
            what="training",
            usd=0.0,
            formula="runs on your own machine: nothing bills it",
            source=PriceSource.of(rules.provenance.get("training_billing")),
        )
    if rules.training_billing == "hours":
        rate = _price(rules.training_usd_per_hour, tier)
        src = PriceSource.of(rules.provenance.get("training_usd_per_hour"))
        rate_text = "an hourly rate no source gives" if rate is None else f"{usd(rate)} per hour"
        return CostLine(
            what="training",
            usd=None,
            unit_usd=rate,
            unit="hour",
            formula=f"{rate_text} x the run's hours, which are not known before it runs",
            source=src if rate is not None else None,
        )
    price = _price(rules.training_usd_per_1m_tokens, tier)
    src = PriceSource.of(rules.provenance.get("training_usd_per_1m_tokens"))
    if price is None:
        where = f" for the {tier} tier" if rules.price_tier_option else ""
        tokens = f"{trained:,} trained tokens" if trained is not None else "the trained tokens"
        return CostLine(
            what="training",
            unit="1M trained tokens",
            formula=f"{tokens} x a price per 1M tokens{where} that no source in the rules gives",
        )
    if trained is None:
        return CostLine(
            what="training",
            unit_usd=price,
            unit="1M trained tokens",
            formula=f"unknown trained tokens x {usd(price)} per 1M tokens",
            source=src,
        )
    return CostLine(
        what="training",
        usd=trained * price / 1_000_000,
        unit_usd=price,
        unit="1M trained tokens",
        formula=f"{trained:,} trained tokens x {usd(price)} per 1M tokens",
        source=src,
    )


def _storage(rules: ResolvedRules) -> CostLine:
    if not rules.storage_billed:
        return CostLine(what="storage", charged=False, formula="not charged")
    price = rules.storage_usd_per_month
    if price is None:
        return CostLine(
            what="storage per month",
            unit="month",
            formula="each tuned model is billed every month it is kept, at a price no source gives",
        )
    return CostLine(
        what="storage per month",
        usd=float(price),
        unit_usd=float(price),
        unit="month",
        formula=f"{usd(price)} per tuned model per month, until the model is deleted",
        source=PriceSource.of(rules.provenance.get("storage_usd_per_month")),
    )


# -- display helpers -------------------------------------------------------------------------------
def usd(value: float | None) -> str:
    """A dollar amount: cents for sums of a dollar or more, 4 decimals below.

    >>> usd(1224.0), usd(0.0026), usd(None)
    ('$1,224.00', '$0.0026', 'unknown')
    """
    if value is None:
        return "unknown"
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:,.4f}"


def _money(value: float | None) -> str:
    return html.escape(usd(value))


def _tokens_text(est: CostEstimate) -> str:
    if est.trained_tokens is None:
        return "—" if est.training_billing != "tokens" else "unknown"
    return html.escape(
        f"{est.trained_tokens:,} ({est.tokens_per_epoch:,} per epoch x {est.epochs} epochs, "
        f"{est.epochs_source})"
    )


def _source_html(src: PriceSource) -> str:
    text = html.escape(src.cite())
    for url in src.urls:
        safe = html.escape(url)
        text = text.replace(safe, f"<a href='{safe}' target='_blank'>{safe}</a>")
    return text
