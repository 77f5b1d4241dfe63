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

from exoimap.audit.log import (
    GENESIS_HASH,
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


def verify_log(directory: Path, key: Secret[bytes] | None) -> VerifyResult:
    """Check every record and the checkpoint; stop at the first problem."""
    try:
        return _verify(directory, key)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot read the audit log in {directory}: {exc.strerror or exc}", retryable=False
        ) from None


def _verify(directory: Path, key: Secret[bytes] | None) -> VerifyResult:
    raw_key = key.reveal() if key is not None else None
    files = audit_files(directory)
    checkpoint: Checkpoint | None = None
    checkpoint_problem: Problem | None = None
    if raw_key is not None:
        try:
            checkpoint = read_checkpoint(directory)
        except AuditChainBroken as exc:
            checkpoint_problem = Problem("checkpoint", None, str(exc))
    chain = _Chain(raw_key, remember=checkpoint.seq if checkpoint else None)
    problem = chain.walk(files)
    if problem is None:
        chain.notices.extend(_unrecorded_torn_files(directory, chain.recorded_aside))
        if raw_key is None:
            chain.notices.append(
                "verified without the key: hashes and links only; a rewrite of the whole log, "
                "a forged record or a cut at the end cannot be detected"
            )
        else:
            problem = checkpoint_problem or _against_checkpoint(
                chain, checkpoint, raw_key, has_files=bool(files)
            )
    return VerifyResult(chain.last, len(files), raw_key is not None, problem, tuple(chain.notices))


# What is wrong with one line, as (kind, record number, message).
_Found = tuple[str, int, str]


@dataclass
class _Chain:
    """The walk along the chain: the record it expects next and what it noticed on the way.

    ``remember`` is the checkpoint's record number, whose hash and file are kept for
    :func:`_against_checkpoint`."""

    key: bytes | None
    remember: int | None
    expected_seq: int = 1
    expected_prev: str = GENESIS_HASH
    remembered: tuple[str, str] | None = None
    notices: list[str] = field(default_factory=list)
    recorded_aside: set[str] = field(default_factory=set)

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
        if record.seq == self.remember:
            self.remembered = (record.hash, line.file)
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
    if checkpoint.seq > 0 and chain.remembered is not None:
        found_hash, found_file = chain.remembered
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
