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


class _Batch:
    """The records of a scan waiting to be counted: their texts, in record order, and per record
    the tokens known without counting, where its prompt texts end in `texts` (`mids`) and where
    all its texts end (`ends`); `preference` holds `(record, end of target texts, end of chosen
    texts)` for the records with chosen/rejected texts, and `new_firsts` the positions in `texts`
    of first prompt texts whose counts are to be remembered."""

    __slots__ = ("texts", "known", "mids", "ends", "preference", "new_firsts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.known: list[int] = []
        self.mids: list[int] = []
        self.ends: list[int] = []
        self.preference: list[tuple[int, int, int]] = []
        self.new_firsts: list[int] = []

    def clear(self) -> None:
        self.texts.clear()
        self.known.clear()
        self.mids.clear()
        self.ends.clear()
        self.preference.clear()
        self.new_firsts.clear()


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
        emit = self._emit
        checker = self.checker
        record_rules = self._record_rules
        first_char = self.first_char
        fingerprint = self.fingerprint
        hashes, hash_lines = res.hashes, res.hash_lines
        hash_append, line_append = hashes.append, hash_lines.append
        # Role sequences repeat: the verdict of each distinct one is looked up here, and only a
        # new sequence goes through `_roles_need_check`.
        role_rules = self.roles
        verdicts = self._role_verdicts
        roles_need_check = self._roles_need_check
        # The batch to count. Each record's texts go straight into `texts`, and the record keeps
        # only three ints (below): its `Example` is dropped at once. (Holding a batch of
        # Examples, six lists each, made the garbage collector run over them again and again.)
        # The first prompt text of a record (its system prompt, typically) often repeats verbatim
        # across a file: its count is looked up in `_first_counts`, not recounted.
        b = _Batch()
        texts, known, mids, ends = b.texts, b.known, b.mids, b.ends
        extend = texts.extend
        known_append, mids_append, ends_append = known.append, mids.append, ends.append
        cache = self._first_counts
        cache_get = cache.get
        mo, ro = self.rules.message_overhead, self.rules.reply_overhead
        overhead = bool(mo or ro)
        records = images = 0
        for line, raw, record in reader:
            self.line = line
            ex = checker(record, emit)
            forbidden = first_char is not None and (
                first_char == "" or _contains(ex.groups, first_char)
            )
            roles = ex.roles
            if roles and role_rules is not None:
                check_roles = verdicts.get(tuple(roles))
                if check_roles is None:
                    check_roles = roles_need_check(roles)
            else:
                check_roles = False
            if forbidden or check_roles or ex.images or ex.tools:
                record_rules(ex, record, forbidden, check_roles)
            records += 1
            images += ex.images
            hash_append(fingerprint(raw if raw[-1:] == b"\n" else raw + b"\n"))
            line_append(line)
            # -- into the batch: prompt texts, target texts, then chosen and rejected ones
            prompt, target, chosen, rejected = ex.groups
            pre = mo * len(roles) + ro if overhead else 0
            if prompt and len(prompt[0]) <= _CACHE_MAX_CHARS:
                n = cache_get(prompt[0], -1)
                if n >= 0:
                    pre += n
                    extend(prompt[1:])
                else:
                    if len(cache) < _CACHE_MAX_ENTRIES:
                        b.new_firsts.append(len(texts))
                    extend(prompt)
            else:
                extend(prompt)
            known_append(pre)
            mids_append(len(texts))
            extend(target)
            if chosen or rejected:
                b.preference.append((len(known) - 1, len(texts), len(texts) + len(chosen)))
                extend(chosen)
                extend(rejected)
            ends_append(len(texts))
            if len(ends) >= BATCH:
                self._count(b, res)
                b.clear()
        if ends:
            self._count(b, res)
        res.records += records
        res.images += images
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
    def _count(self, b: _Batch, res: ScanResult) -> None:
        """Count the texts of a batch in one call, then each record's prompt, output and total.

        The batch holds the last `len(b.ends)` records scanned (their lines are the last entries
        of `res.hash_lines`). Counts stay exact: a cached first text has its exact count.
        """
        texts = b.texts
        counts = self.counter.count_many(texts) if texts else []
        cache = self._first_counts
        for k in b.new_firsts:
            if len(cache) >= _CACHE_MAX_ENTRIES:
                break
            cache[texts[k]] = counts[k]
        prefix = [0, *accumulate(counts)]
        mids, ends = b.mids, b.ends
        # a record's prompt texts start where the previous record's texts end
        starts = [0, *ends]
        prompts = [
            pre + prefix[mid] - prefix[start]
            for pre, start, mid in zip(b.known, starts, mids, strict=False)  # one start too many
        ]
        # everything after the prompt is trained on: the target, chosen and rejected texts
        outs = [prefix[end] - prefix[mid] for mid, end in zip(mids, ends, strict=True)]
        res.trained += sum(outs)
        # a preference record's output is its target and the longer of chosen and rejected
        for k, target_end, chosen_end in b.preference:
            chosen = prefix[chosen_end] - prefix[target_end]
            rejected = prefix[ends[k]] - prefix[chosen_end]
            outs[k] -= chosen if chosen < rejected else rejected
        totals = [p + o for p, o in zip(prompts, outs, strict=True)]
        res.tokens.extend(totals)
        self._limits(prompts, outs, totals, res)

    def _limits(
        self, prompts: list[int], outs: list[int], totals: list[int], res: ScanResult
    ) -> None:
        """Check a batch's totals against the limits (per example, input and output). Issues are
        made in record order; a batch within every limit, the usual case, is checked with a few
        `max` calls instead of record by record."""
        rules = self.rules
        limit = self.spec.limit
        max_in, max_out = rules.max_input_tokens, rules.max_output_tokens
        top = max(totals)
        if limit and top > limit:
            res.capped_total += sum(t if t < limit else limit for t in totals)
        else:
            res.capped_total += sum(totals)
        exact = self.counter.exact
        margin = rules.near_limit_margin if not exact else 0.0
        lo = limit * (1 - margin) if limit else 0
        if not (
            (limit and top > lo)
            or (max_in and max(prompts) > max_in)
            or (max_out and max(outs) > max_out)
        ):
            return
        hi = limit * (1 + margin) if limit else 0
        lines = res.hash_lines[len(res.hash_lines) - len(totals) :]
        for line, prompt, out, total in zip(lines, prompts, outs, totals, strict=True):
            if limit:
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
            if max_in and prompt > max_in:
                self.line = line
                self._side_limit(
                    "too_many_input_tokens", "input", prompt, max_in, "max_input_tokens", exact
                )
            if max_out and out > max_out:
                self.line = line
                self._side_limit(
                    "too_many_output_tokens", "output", out, max_out, "max_output_tokens", exact
                )

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
