"""The validation hot loop: one pass over (a byte range of) one file, applying resolved rules.

Records are checked as they stream by; token counting is batched (one call into the counter per
`BATCH` records) because counting dominates the cost. Per record the result keeps only 16 bytes
in compact arrays (token count, 8-byte fingerprint, line number), and results of byte ranges
merge in order. Duplicates are then found with `duplicate_pairs`, an open-addressing table of
4-byte record numbers (8 bytes a record), not a dict of Python ints (about 140 bytes a record).
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import accumulate
from typing import Any

from finetune_hub.data.formats import DataFormat
from finetune_hub.data.reader import JsonlReader, is_gzip
from finetune_hub.data.records import CHECKERS, Example, find_path
from finetune_hub.data.tokens import TokenCounter, get_counter
from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.schema import ResolvedRules, RoleRules

BATCH = 256
_CACHE_MAX_CHARS = 4096  # longer first texts are rarely repeated; hashing them costs more
_CACHE_MAX_ENTRIES = 4096
_ROLE_VERDICTS_MAX = 4096  # distinct role sequences remembered (a hostile file can vary them all)
_SYSTEM_ROLES = frozenset({"system", "developer"})


class IssueCollector:
    """Keeps the first `cap` issues of each code and counts the rest."""

    def __init__(self, cap: int, overrides: dict[str, str] | None = None) -> None:
        self.cap = cap
        self.overrides = overrides or {}
        self.listed: list[Issue] = []
        self.counts: dict[str, int] = {}

    def add(
        self,
        code: str,
        message: str,
        severity: Severity,
        line: int | None,
        field: str | None,
        file: str | None,
    ) -> None:
        override = self.overrides.get(code)
        if override == "ignore":
            return
        n = self.counts.get(code, 0)
        self.counts[code] = n + 1
        if n < self.cap:
            sev = Severity(override) if override else severity
            self.listed.append(
                Issue(code=code, message=message, severity=sev, line=line, field=field, file=file)
            )

    def add_issue(self, issue: Issue) -> None:
        self.add(issue.code, issue.message, issue.severity, issue.line, issue.field, issue.file)


@dataclass
class ScanResult:
    """What one scan found; merged across byte ranges by `merge_results`."""

    path: str
    lines: int = 0
    bytes: int = 0
    records: int = 0
    bom: bool = False
    images: int = 0
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    tokens: array = field(default_factory=lambda: array("I"))
    trained: int = 0
    capped_total: int = 0  # sum(min(limit, tokens))
    over_limit: int = 0
    near_limit: int = 0
    hashes: array = field(default_factory=lambda: array("q"))
    hash_lines: array = field(default_factory=lambda: array("I"))
    compressed: bool = False
    over_max_bytes: bool = False  # reading stopped once more than `ScanSpec.max_bytes` were read


@dataclass
class ScanSpec:
    """Everything a scan needs; picklable so byte ranges can run in worker processes."""

    rules: ResolvedRules
    format: DataFormat
    tokenizer: str
    limit: int | None
    limit_field: str  # the rules field the limit comes from (for its source and confirmation)
    limit_note: str  # e.g. "batch size 3", shown with over-limit messages
    cap: int
    label: str  # file name used in issues
    fingerprint: str = (
        "builtin"  # "builtin" (hash(); same in forked workers) or "blake2b" (any process)
    )
    max_bytes: int | None = (
        None  # the file-size cap, applied while reading a .gz (decompressed bytes)
    )


class Scanner:
    def __init__(self, spec: ScanSpec, counter: TokenCounter | None = None) -> None:
        self.spec = spec
        self.rules = spec.rules
        self.checker = CHECKERS[spec.format]
        self.counter = counter or get_counter(spec.tokenizer)
        self.collector = IssueCollector(spec.cap, dict(self.rules.severity))
        self.forbidden, self.prefilter = _forbidden_pattern(self.rules.forbidden_strings)
        self.roles: RoleRules | None = (
            self.rules.roles if _has_role_rules(self.rules.roles) else None
        )
        # Texts without the first character shared by all forbidden strings skip the regex search
        # ("" means there is no shared first character: every text is searched).
        self.first_char: str | None = None if self.forbidden is None else (self.prefilter or "")[:1]
        self.fingerprint = _fingerprint(spec.fingerprint)
        self._role_verdicts: dict[tuple[str, ...], bool] = {}
        self._first_counts: dict[str, int] = {}
        self._role_emit = self._emit if self.rules.confirmed("roles") else self._warn
        self.line = 0
        self._unknown_role_line = -1  # the line whose record had an unknown role

    def scan(
        self, path: str | os.PathLike[str], start: int = 0, end: int | None = None
    ) -> ScanResult:
        res = ScanResult(path=str(path), compressed=is_gzip(path))
        reader = JsonlReader(
            path,
            on_problem=self._reader_problem,
            start=start,
            end=end,
            # a plain file's size is known before reading; a .gz's only as it is decompressed
            max_bytes=self.spec.max_bytes if res.compressed else None,
        )
        batch: list[tuple[int, Example]] = []
        emit = self._emit
        checker = self.checker
        record_rules = self._record_rules
        first_char = self.first_char
        fingerprint = self.fingerprint
        hashes, hash_lines = res.hashes, res.hash_lines
        for line, raw, record in reader:
            self.line = line
            ex = checker(record, emit)
            forbidden = first_char is not None and (
                first_char == "" or _contains(ex.groups, first_char)
            )
            roles = bool(ex.roles) and self._roles_need_check(ex.roles)
            if forbidden or roles or ex.images or ex.tools:
                record_rules(ex, record, forbidden, roles)
            res.records += 1
            res.images += ex.images
            hashes.append(fingerprint(raw if raw[-1:] == b"\n" else raw + b"\n"))
            hash_lines.append(line)
            batch.append((line, ex))
            if len(batch) >= BATCH:
                self._count(batch, res)
                batch.clear()
        if batch:
            self._count(batch, res)
        res.lines, res.bytes, res.bom = reader.lines, reader.bytes_read, reader.bom
        res.over_max_bytes = reader.over_max_bytes
        res.issues = self.collector.listed
        res.counts = self.collector.counts
        return res

    # -- per record ---------------------------------------------------------------------------
    def _emit(self, code: str, field: str | None, message: str, warning: bool = False) -> None:
        # One cause, one message: a record whose role is unknown ("bot") gets that one issue,
        # not also "role not allowed", "first/last role" and "no assistant message".
        if code == "unknown_role":
            self._unknown_role_line = self.line
        elif code in _ROLE_CONSEQUENCES and self._unknown_role_line == self.line:
            return
        self.collector.add(
            code,
            message,
            Severity.WARNING if warning else Severity.ERROR,
            self.line,
            field,
            self.spec.label,
        )

    def _reader_problem(self, code: str, message: str, severity: Severity, line: int) -> None:
        self.collector.add(code, message, severity, line, None, self.spec.label)

    def _warn(self, code: str, field: str | None, message: str, warning: bool = True) -> None:
        self._emit(code, field, message, warning=True)

    def _roles_need_check(self, roles: list[str]) -> bool:
        """Role sequences repeat (system, user, assistant...): each distinct one is checked once."""
        if self.roles is None:
            return False
        key = tuple(roles)
        verdict = self._role_verdicts.get(key)
        if verdict is None:
            found: list[str] = []
            probe = Example()
            probe.roles = roles
            probe.role_paths = list(range(len(roles)))
            _check_roles(probe, self.roles, lambda code, *a, **k: found.append(code))
            verdict = bool(found)
            if len(self._role_verdicts) < _ROLE_VERDICTS_MAX:
                self._role_verdicts[key] = verdict
        return verdict

    def _record_rules(
        self, ex: Example, record: dict[str, Any], may_have_forbidden: bool, check_roles: bool
    ) -> None:
        rules = self.rules
        if check_roles:
            _check_roles(ex, self.roles, self._role_emit)
        if ex.images:
            if not rules.images:
                self._emit(
                    "images_not_allowed",
                    None,
                    f"{rules.model_id or rules.requested_model} ({rules.method}) does not take images ({rules.cite('images')})",
                    warning=not rules.confirmed("images"),
                )
            elif (
                rules.max_images_per_example is not None
                and ex.images > rules.max_images_per_example
            ):
                self._emit(
                    "too_many_images",
                    None,
                    f"{ex.images} images; at most {rules.max_images_per_example} per example ({rules.cite('max_images_per_example')})",
                    warning=not rules.confirmed("max_images_per_example"),
                )
        if ex.tools and not rules.tools:
            self._emit(
                "tools_not_supported",
                None,
                f"{rules.model_id or rules.requested_model} does not support tools or tool calls ({rules.cite('tools')})",
                warning=not rules.confirmed("tools"),
            )
        if self.forbidden is not None and may_have_forbidden:
            prefilter = self.prefilter
            for text in ex.texts:
                if (prefilter is None or prefilter in text) and (m := self.forbidden.search(text)):
                    self._emit(
                        "forbidden_string",
                        find_path(record, text),
                        f"contains {m.group()!r}, which {rules.provider_display_name} reserves "
                        f"({rules.cite('forbidden_strings')})",
                        warning=not rules.confirmed("forbidden_strings"),
                    )

    # -- per batch: token counts and limits ---------------------------------------------------
    def _count(self, batch: list[tuple[int, Example]], res: ScanResult) -> None:
        # The first prompt text of a record (its system prompt, typically) often repeats verbatim
        # across a file: its count is looked up, not recounted. Counts stay exact.
        cache = self._first_counts
        texts: list[str] = []
        extend = texts.extend
        cached: list[int] = []  # per example: the cached count of its first prompt text, or -1
        for _line, ex in batch:
            g = ex.groups
            first = g[0][0] if g[0] else None
            known = (
                cache.get(first, -1) if first is not None and len(first) <= _CACHE_MAX_CHARS else -1
            )
            cached.append(known)
            extend(g[0][1:] if known >= 0 else g[0])
            extend(g[1])
            if g[2] or g[3]:
                extend(g[2])
                extend(g[3])
        counts = self.counter.count_many(texts) if texts else []
        prefix = [0, *accumulate(counts)]
        rules = self.rules
        mo, ro = rules.message_overhead, rules.reply_overhead
        limit = self.spec.limit
        exact = self.counter.exact
        margin = rules.near_limit_margin if not exact else 0.0
        hi = limit * (1 + margin) if limit else 0
        lo = limit * (1 - margin) if limit else 0
        i = 0
        tokens = res.tokens
        trained = 0
        room = len(cache) < _CACHE_MAX_ENTRIES
        for (line, ex), known in zip(batch, cached, strict=True):
            g = ex.groups
            n0 = len(g[0])
            if known >= 0:
                j = i + n0 - 1
                prompt = known + prefix[j] - prefix[i]
            else:
                j = i + n0
                prompt = prefix[j] - prefix[i]
                if room and n0 and len(g[0][0]) <= _CACHE_MAX_CHARS:
                    cache[g[0][0]] = counts[i]
                    room = len(cache) < _CACHE_MAX_ENTRIES
            i, j = j, j + len(g[1])
            target = prefix[j] - prefix[i]
            i = j
            chosen = rejected = 0
            if g[2] or g[3]:
                j = i + len(g[2])
                chosen = prefix[j] - prefix[i]
                i, j = j, j + len(g[3])
                rejected = prefix[j] - prefix[i]
                i = j
            if mo or ro:
                prompt += mo * len(ex.roles) + ro
            out = target + (chosen if chosen > rejected else rejected)
            total = prompt + out
            tokens.append(total)
            trained += target + chosen + rejected
            if limit:
                res.capped_total += min(limit, total)
                if total > hi:
                    res.over_limit += 1
                    self.line = line
                    self._over_limit(total, limit, exact)
                elif total > lo:
                    res.near_limit += 1
                    self.line = line
                    self._emit(
                        "near_token_limit",
                        None,
                        f"about {total:,} tokens ({self.counter.description}), within {margin:.0%} of the "
                        f"{limit:,}-token limit; check it with the provider's own tokenizer",
                        warning=True,
                    )
            else:
                res.capped_total += total
            if rules.max_input_tokens and prompt > rules.max_input_tokens:
                self.line = line
                self._side_limit(
                    "too_many_input_tokens",
                    "input",
                    prompt,
                    rules.max_input_tokens,
                    "max_input_tokens",
                    exact,
                )
            if rules.max_output_tokens and out > rules.max_output_tokens:
                self.line = line
                self._side_limit(
                    "too_many_output_tokens",
                    "output",
                    out,
                    rules.max_output_tokens,
                    "max_output_tokens",
                    exact,
                )
        res.trained += trained

    def _over_limit(self, total: int, limit: int, exact: bool) -> None:
        rules = self.rules
        field = self.spec.limit_field
        warning = rules.over_limit == "warning" or not rules.confirmed(field)
        what = "" if exact else " (estimated)"
        consequence = " and would be truncated in training" if rules.over_limit == "warning" else ""
        self._emit(
            "too_many_tokens",
            None,
            f"{total:,} tokens{what} is over the {limit:,}-token limit per example{self._batch_text()}{consequence} "
            f"({rules.cite(field)})",
            warning=warning,
        )

    def _side_limit(
        self, code: str, side: str, value: int, limit: int, field: str, exact: bool
    ) -> None:
        what = "" if exact else " (estimated)"
        self._emit(
            code,
            None,
            f"{value:,} {side} tokens{what} is over the {limit:,}-token {side} limit ({self.rules.cite(field)})",
            warning=not self.rules.confirmed(field),
        )

    def _batch_text(self) -> str:
        return f" at {self.spec.limit_note}" if self.spec.limit_note else ""


def scan_range(spec: ScanSpec, path: str, start: int, end: int | None) -> ScanResult:
    """Scan one byte range in a worker process."""
    return Scanner(spec).scan(path, start, end)


def merge_results(parts: list[ScanResult], cap: int) -> ScanResult:
    """Merge byte-range results in file order, renumbering lines and re-capping issues."""
    if len(parts) == 1:
        return parts[0]
    out = ScanResult(path=parts[0].path, bom=parts[0].bom)
    offset = 0
    kept: dict[str, int] = {}
    for part in parts:
        for issue in part.issues:
            if kept.get(issue.code, 0) < cap:
                kept[issue.code] = kept.get(issue.code, 0) + 1
                line = issue.line + offset if issue.line else issue.line
                out.issues.append(issue.model_copy(update={"line": line}))
        for code, n in part.counts.items():
            out.counts[code] = out.counts.get(code, 0) + n
        out.hash_lines.extend(n + offset for n in part.hash_lines)
        out.hashes.extend(part.hashes)
        out.tokens.extend(part.tokens)
        for name in (
            "bytes",
            "records",
            "images",
            "trained",
            "capped_total",
            "over_limit",
            "near_limit",
        ):
            setattr(out, name, getattr(out, name) + getattr(part, name))
        out.over_max_bytes = out.over_max_bytes or part.over_max_bytes
        offset += part.lines
    out.lines = offset
    return out


def duplicate_pairs(hashes: array, other: array | None = None) -> Iterator[tuple[int, int]]:
    """Yield `(i, j)` for each record `i` whose fingerprint in `hashes` is that of an earlier
    record `j` of the same file, or, with `other`, that of record `j` of `other` (validation
    records also in the training file); `j` is the first such record.

    The table holds record numbers (4 bytes a slot, at most half full: 8 bytes a record) and
    compares fingerprints through the arrays, so no Python int is kept per record.

    >>> list(duplicate_pairs(array("q", [7, 8, 7, 7])))
    [(2, 0), (3, 0)]
    >>> list(duplicate_pairs(array("q", [9, 8]), other=array("q", [8, 8])))
    [(1, 0)]
    """
    base = hashes if other is None else other
    size = 2 * len(base) + 1
    table = array("I", bytes(4 * size))  # record number + 1; 0 is an empty slot
    if other is not None:
        for j, h in enumerate(other):
            slot = h % size
            k = table[slot]
            while k:
                if other[k - 1] == h:  # keep the first record with this fingerprint
                    break
                slot = slot + 1 if slot + 1 < size else 0
                k = table[slot]
            else:
                table[slot] = j + 1
    for i, h in enumerate(hashes):
        slot = h % size
        k = table[slot]
        while k:
            if base[k - 1] == h:
                yield i, k - 1
                break
            slot = slot + 1 if slot + 1 < size else 0
            k = table[slot]
        else:
            if other is None:
                table[slot] = i + 1


#: Issues that an unknown role in the same record already explains (not reported again).
_ROLE_CONSEQUENCES = frozenset(
    {"role_not_allowed", "first_role", "last_role", "no_assistant_message", "roles_not_alternating"}
)


def _check_roles(ex: Example, rr: RoleRules, emit: Any) -> None:
    roles = ex.roles
    if rr.allowed and not set(rr.allowed).issuperset(roles):
        for k, role in enumerate(roles):
            if role not in rr.allowed:
                emit(
                    "role_not_allowed",
                    f"{ex.role_path(k)}.role",
                    f"role {role!r} is not allowed here; allowed: {', '.join(rr.allowed)}",
                )
    if rr.first and roles[0] not in rr.first:
        emit(
            "first_role",
            f"{ex.role_path(0)}.role",
            f"the first message must be {' or '.join(rr.first)}, not {roles[0]!r}",
        )
    if rr.last and roles[-1] not in rr.last:
        emit(
            "last_role",
            f"{ex.role_path(len(roles) - 1)}.role",
            f"the last message must be {' or '.join(rr.last)}, not {roles[-1]!r}",
        )
    if rr.system_only_first:
        k = 0
        while k < len(roles) and roles[k] in _SYSTEM_ROLES:
            k += 1
        for j in range(k, len(roles)):
            if roles[j] in _SYSTEM_ROLES:
                emit(
                    "system_not_first",
                    f"{ex.role_path(j)}.role",
                    f"a {roles[j]} message may only come before the conversation",
                )
                break
    if rr.alternate:
        previous = None
        for k, role in enumerate(roles):
            if role in _SYSTEM_ROLES:
                continue
            if role == previous:
                emit(
                    "roles_not_alternating",
                    f"{ex.role_path(k)}.role",
                    f"two {role} messages in a row; user and assistant turns must alternate",
                )
                break
            previous = role


def _contains(groups: list[list[str]], char: str) -> bool:
    for group in groups:
        for text in group:
            if char in text:
                return True
    return False


def _fingerprint(kind: str) -> Any:
    """A 64-bit fingerprint of a record's bytes, for duplicate detection."""
    if kind == "builtin":
        return hash
    return lambda raw: int.from_bytes(blake2b(raw, digest_size=8).digest(), "little")


def _has_role_rules(rr: RoleRules) -> bool:
    return bool(rr.allowed or rr.first or rr.last or rr.alternate or rr.system_only_first)


def _forbidden_pattern(strings: list[str]) -> tuple[re.Pattern[str] | None, str | None]:
    if not strings:
        return None, None
    prefix = os.path.commonprefix(strings)
    pattern = re.compile("|".join(re.escape(s) for s in sorted(strings, key=len, reverse=True)))
    return pattern, prefix or None
