"""Checking the audit log: walk the chain, name the first bad record and what happened to it.

Records are numbered by their place in the chain (1, 2, 3, ...): "record N" is where the
chain first breaks, whatever the line there claims to be. The kinds:

``modified``
    the line was edited (its hash or MAC fails), or it is not a record at all;
``inserted``
    a line that does not belong: a forged record followed by the genuine one, or a copy of
    an earlier record;
``deleted``
    records N..M are missing (a later record follows N-1 directly);
``reordered``
    record N appears later in the log than it should;
``truncated``
    the checkpoint names a record beyond the end of the log;
``torn``
    the last line ends without a newline: a crash mid-write (the writer sets it aside and
    records ``audit.recovered`` when it next opens the log);
``checkpoint``
    the checkpoint is missing, unreadable, or not authenticated by the key.

Without the key only the unkeyed checks run (hashes and links): a rewrite that recomputes
every hash, a forged record, or a cut at the end then go unnoticed, and the result says so.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from exoimap.audit.anchor import Anchor, read_anchor
from exoimap.audit.log import (
    GENESIS_HASH,
    SEGMENT_RE,
    AuditRecord,
    Checkpoint,
    audit_files,
    iter_lines,
    parse_line,
    read_checkpoint,
    record_mac,
)
from exoimap.errors import AuditChainBroken, StoreUnavailable
from exoimap.secrets import Secret

__all__ = ["Problem", "VerifyResult", "verify_log"]

SEGMENT_STARTED = "audit.segment_started"
RESET_DETECTED = "audit.reset_detected"


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with the log."""

    kind: str
    record: int | None
    message: str
    file: str | None = None
    line: int | None = None

    def describe(self) -> str:
        where = f" ({self.file} line {self.line})" if self.file and self.line else ""
        number = f"record {self.record}: " if self.record is not None else ""
        return f"{self.kind}: {number}{self.message}{where}"


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_log` found. ``ok`` when the chain and checkpoint are intact."""

    records: int
    files: int
    keyed: bool
    problem: Problem | None = None
    notices: tuple[str, ...] = field(default=())
    #: The hash of the last good record (what a new segment links to after a recovery).
    last_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return self.problem is None

    def raise_if_broken(self) -> None:
        if self.problem is not None:
            raise AuditChainBroken(
                f"the audit log is not intact: {self.problem.describe()}",
                record=self.problem.record,
                kind=self.problem.kind,
            )


@dataclass(frozen=True)
class _Line:
    file: str
    number: int
    raw: bytes
    complete: bool


def _walk(files: list[tuple[int, Path]]) -> Iterator[_Line]:
    for _, path in files:
        for number, (raw, complete) in enumerate(iter_lines(path), start=1):
            yield _Line(path.name, number, raw, complete)


def _authentic(record: AuditRecord | None, key: bytes | None) -> bool:
    if record is None or not record.hash_ok:
        return False
    return key is None or hmac.compare_digest(record.mac, record_mac(key, record.hash))


def _seq_appears(lines: Iterator[_Line], seq: int, key: bytes | None) -> bool:
    for line in lines:
        record = parse_line(line.raw)
        if record is not None and record.seq == seq and _authentic(record, key):
            return True
    return False


def verify_log(
    directory: Path, key: Secret[bytes] | None, *, anchor: Path | None = None
) -> VerifyResult:
    """Check every record, the checkpoint, the segments sealed by recoveries, and (given
    its path) the anchor kept in the vault; stop at the first problem."""
    try:
        return _verify(directory, key, anchor)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot read the audit log in {directory}: {exc.strerror or exc}", retryable=False
        ) from None


def _verify(directory: Path, key: Secret[bytes] | None, anchor_path: Path | None) -> VerifyResult:
    raw_key = key.reveal() if key is not None else None
    files = audit_files(directory)
    checkpoint, checkpoint_problem = _read_checkpoint(directory, raw_key)
    anchor, anchor_problem = _read_anchor(anchor_path, raw_key)
    remember = {point.seq for point in (checkpoint, anchor) if point is not None}
    chain = _Chain(raw_key, remember=remember)
    problem = chain.walk(files)
    if problem is None:
        chain.notices.extend(_unrecorded_torn_files(directory, chain.recorded_aside))
        if raw_key is None:
            chain.notices.append(
                "verified without the key: hashes and links only; a rewrite of the whole log, "
                "a forged record or a cut at the end cannot be detected"
            )
        else:
            problem = (
                checkpoint_problem
                or _against_checkpoint(chain, checkpoint, raw_key, has_files=bool(files))
                or anchor_problem
                or _against_anchor(chain, anchor, raw_key, anchor_path)
            )
        # Always followed, so a sealed segment's own notices (older recoveries) show too.
        sealed_problem = _sealed_segment(directory, chain, key)
        problem = problem or sealed_problem or _unacknowledged(chain)
    return VerifyResult(
        chain.last,
        len(files),
        raw_key is not None,
        problem,
        tuple(chain.notices),
        chain.expected_prev,
    )


def _read_checkpoint(
    directory: Path, key: bytes | None
) -> tuple[Checkpoint | None, Problem | None]:
    if key is None:
        return None, None
    try:
        return read_checkpoint(directory), None
    except AuditChainBroken as exc:
        return None, Problem("checkpoint", None, str(exc))


def _read_anchor(path: Path | None, key: bytes | None) -> tuple[Anchor | None, Problem | None]:
    if path is None or key is None:
        return None, None
    try:
        return read_anchor(path), None
    except AuditChainBroken as exc:
        return None, Problem("anchor", None, str(exc))


# What is wrong with one line, as (kind, record number, message).
_Found = tuple[str, int, str]


@dataclass
class _Chain:
    """The walk along the chain: the record it expects next and what it noticed on the way.

    ``remember`` is the checkpoint's record number, whose hash and file are kept for
    :func:`_against_checkpoint`."""

    key: bytes | None
    remember: set[int]
    expected_seq: int = 1
    expected_prev: str = GENESIS_HASH
    #: The hash and file of each remembered record number that was found.
    remembered: dict[int, tuple[str, str]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    recorded_aside: set[str] = field(default_factory=set)
    #: The first record, when it starts a segment after a recovery (see ``recover``).
    segment_start: AuditRecord | None = None
    at_start: bool = True
    #: ``audit.reset_detected`` records: findings a recovery has not acknowledged yet.
    resets: list[AuditRecord] = field(default_factory=list)

    @property
    def last(self) -> int:
        """The number of the last good record."""
        return self.expected_seq - 1

    def walk(self, files: list[tuple[int, Path]]) -> Problem | None:
        """Check every line in order; the first problem, or None when the chain holds."""
        lines = _walk(files)
        current = next(lines, None)
        while current is not None:
            following = next(lines, None)
            found = self._check(current, following, files)
            if found is not None:
                kind, number, message = found
                return Problem(kind, number, message, current.file, current.number)
            current = following
        return None

    def _check(
        self, current: _Line, following: _Line | None, files: list[tuple[int, Path]]
    ) -> _Found | None:
        seq = self.expected_seq
        record = parse_line(current.raw)
        if not current.complete and following is None:
            return "torn", seq, "the last line is incomplete (a crash mid-write)"
        if record is None or not current.complete:
            return "modified", seq, "not a well-formed audit record"
        if not record.hash_ok:
            return "modified", seq, "the record does not match its hash"
        if not _authentic(record, self.key):
            return self._forged_or_rewritten(following)
        if self.at_start and record.event == SEGMENT_STARTED:
            # A segment started by a recovery links to the sealed one, not to genesis.
            self.expected_seq, self.expected_prev = record.seq, record.prev
            self.segment_start = record
        self.at_start = False
        found = self._out_of_place(record, files)
        if found is None:
            self._accept(record, current)
        return found

    def _forged_or_rewritten(self, following: _Line | None) -> _Found:
        """A record whose MAC fails: inserted when the genuine one follows it."""
        seq = self.expected_seq
        nxt = parse_line(following.raw) if following else None
        fits = nxt is not None and nxt.seq == seq and nxt.prev == self.expected_prev
        if fits and _authentic(nxt, self.key):
            return "inserted", seq, "a forged record was inserted"
        return "modified", seq, "the record's MAC fails (it was rewritten)"

    def _out_of_place(self, record: AuditRecord, files: list[tuple[int, Path]]) -> _Found | None:
        """An authentic record that is not the one expected next: why."""
        seq = self.expected_seq
        if record.seq < seq:
            return "inserted", seq, f"a copy of record {record.seq} was inserted"
        if record.seq > seq:
            if _seq_appears(_walk(files), seq, self.key):
                return "reordered", seq, f"found record {record.seq} where record {seq} belongs"
            if record.seq == seq + 1:
                return "deleted", seq, f"record {seq} is missing"
            return "deleted", seq, f"records {seq}-{record.seq - 1} are missing"
        if record.prev != self.expected_prev:
            # Only possible without the key: the record before was rewritten, hash and all.
            return (
                "modified",
                max(1, seq - 1),
                "the record before this one was rewritten (its hash no longer links)",
            )
        return None

    def _accept(self, record: AuditRecord, line: _Line) -> None:
        if record.event == "audit.recovered":
            aside = record.data.get("set_aside", "?")
            self.recorded_aside.add(str(aside))
            self.notices.append(
                f"record {record.seq}: recovered after a torn write; "
                f"{record.data.get('torn_bytes', '?')} bytes set aside in {aside}"
            )
        if record.event == RESET_DETECTED:
            self.resets.append(record)
        if record.seq in self.remember:
            self.remembered[record.seq] = (record.hash, line.file)
        self.expected_seq, self.expected_prev = self.expected_seq + 1, record.hash


def _unrecorded_torn_files(directory: Path, recorded_aside: set[str]) -> list[str]:
    """Notices for torn lines set aside that no ``audit.recovered`` record mentions."""
    stray = sorted(p.name for p in directory.glob("audit-*.jsonl.torn-*"))
    return [
        f"{name} holds a torn line that no audit.recovered record mentions "
        "(the writer stopped before recording it)"
        for name in stray
        if name not in recorded_aside
    ]


def _against_checkpoint(
    chain: _Chain, checkpoint: Checkpoint | None, key: bytes, *, has_files: bool
) -> Problem | None:
    """Compare the end of a good chain with the keyed checkpoint (a cut, a rewrite)."""
    last = chain.last
    if checkpoint is None:
        if last == 0 and not has_files:
            return None
        return Problem("checkpoint", None, "the checkpoint is missing: a cut cannot be ruled out")
    if not checkpoint.valid(key):
        return Problem("checkpoint", None, "the checkpoint is not authenticated by the key")
    if last < checkpoint.seq:
        gone = checkpoint.seq - last
        return Problem(
            "truncated",
            last + 1,
            f"the log ends at record {last} but the checkpoint records {checkpoint.seq} "
            f"({gone} record{'s' if gone != 1 else ''} cut off the end)",
        )
    if checkpoint.seq > 0 and checkpoint.seq in chain.remembered:
        found_hash, found_file = chain.remembered[checkpoint.seq]
        if found_hash != checkpoint.hash:
            return Problem("modified", checkpoint.seq, "the record differs from the checkpoint's")
        if found_file != checkpoint.file:
            message = f"the record is in {found_file}, the checkpoint says {checkpoint.file}"
            return Problem("reordered", checkpoint.seq, message)
    if last > checkpoint.seq:
        chain.notices.append(
            f"{last - checkpoint.seq} record(s) after the last checkpoint "
            "(written just before a crash); each is authenticated by its MAC"
        )
    return None


def _against_anchor(
    chain: _Chain, anchor: Anchor | None, key: bytes, path: Path | None
) -> Problem | None:
    """The anchor in the vault must name a record the chain still holds."""
    if anchor is None:
        if chain.last > 0 and path is not None:
            chain.notices.append(
                "the vault holds no audit anchor yet (the next write makes one): a reset of "
                "the whole folder before now cannot be ruled out"
            )
        return None
    if not anchor.valid(key):
        return Problem("anchor", None, "the audit anchor in the vault is not authenticated")
    # The record the chain links to: genesis, or the sealed segment's last one.
    first = chain.segment_start.seq - 1 if chain.segment_start else 0
    if anchor.seq == first:
        found = chain.segment_start.prev if chain.segment_start else GENESIS_HASH
    else:
        found = chain.remembered.get(anchor.seq, ("", ""))[0]
    if first <= anchor.seq <= chain.last and found == anchor.hash:
        return None
    where = "does not hold" if anchor.seq <= chain.last else f"ends before (at {chain.last})"
    return Problem(
        "anchor",
        anchor.seq,
        f"the vault's anchor names record {anchor.seq}, which this log {where}: the audit "
        "folder was deleted, cut, or replaced by another or an older copy",
    )


def _sealed_segment(directory: Path, chain: _Chain, key: Secret[bytes] | None) -> Problem | None:
    """The segment a recovery sealed must still end where the new one links to it."""
    start = chain.segment_start
    if start is None:
        return None
    name = str(start.data.get("segment", ""))
    recorded_kind = str(start.data.get("problem_kind", ""))
    if not SEGMENT_RE.fullmatch(name):
        return Problem("segment", start.seq, f"the recovery record names no segment ({name!r})")
    # Every sealed segment sits in the top audit folder, also one sealed from a segment.
    top = directory.parent if SEGMENT_RE.fullmatch(directory.name) else directory
    sealed = verify_log(top / name, key)
    ends_as_linked = sealed.records == start.seq - 1 and sealed.last_hash == start.prev
    same_problem = sealed.problem is None or sealed.problem.kind == recorded_kind
    if not (ends_as_linked and same_problem):
        found = sealed.problem.describe() if sealed.problem else f"ends at {sealed.records}"
        return Problem(
            "segment",
            start.seq,
            f"the segment {name} sealed by the recovery changed since: {found}",
        )
    chain.notices.append(
        f"record {start.seq}: a new segment started after a recovery by "
        f"{start.actor.get('os_user') or '?'} at {start.time} "
        f"(reason: {start.data.get('reason', '?')}); the old log, kept in {name}, ends at "
        f"record {start.seq - 1}"
        + (f" and was found: {start.data.get('problem')}" if recorded_kind else "")
    )
    chain.notices.extend(f"{name}: {notice}" for notice in sealed.notices)
    return None


def _unacknowledged(chain: _Chain) -> Problem | None:
    """A reset the writer found and recorded stays a problem until a recovery seals it."""
    if not chain.resets:
        return None
    record = chain.resets[0]
    return Problem(
        "reset",
        record.seq,
        f"the writer found the log reset, cut or replaced ({record.data.get('problem', '?')}); "
        "investigate (restore the audit folder from a backup if you have one), then "
        "acknowledge with `exoimap audit recover --reason TEXT`",
    )
