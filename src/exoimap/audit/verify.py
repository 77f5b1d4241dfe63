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
    expected_seq, expected_prev = 1, GENESIS_HASH
    hash_at: dict[int, tuple[str, str]] = {}
    checkpoint_problem: Problem | None = None
    try:
        checkpoint = read_checkpoint(directory) if raw_key is not None else None
    except AuditChainBroken as exc:
        checkpoint, checkpoint_problem = None, Problem("checkpoint", None, str(exc))
    notices: list[str] = []
    recorded_aside: set[str] = set()

    def result(problem: Problem | None) -> VerifyResult:
        return VerifyResult(
            expected_seq - 1, len(files), raw_key is not None, problem, tuple(notices)
        )

    lines = _walk(files)
    current = next(lines, None)
    while current is not None:
        following = next(lines, None)

        def bad(kind: str, number: int, message: str, at: _Line = current) -> VerifyResult:
            return result(Problem(kind, number, message, at.file, at.number))

        record = parse_line(current.raw)
        if not current.complete and following is None:
            return bad("torn", expected_seq, "the last line is incomplete (a crash mid-write)")
        if record is None or not current.complete:
            return bad("modified", expected_seq, "not a well-formed audit record")
        if not record.hash_ok:
            return bad("modified", expected_seq, "the record does not match its hash")
        if not _authentic(record, raw_key):
            nxt = parse_line(following.raw) if following else None
            fits = nxt is not None and nxt.seq == expected_seq and nxt.prev == expected_prev
            if fits and _authentic(nxt, raw_key):
                return bad("inserted", expected_seq, "a forged record was inserted")
            return bad("modified", expected_seq, "the record's MAC fails (it was rewritten)")
        if record.seq < expected_seq:
            return bad("inserted", expected_seq, f"a copy of record {record.seq} was inserted")
        if record.seq > expected_seq:
            rest = _walk(files)
            if _seq_appears(rest, expected_seq, raw_key):
                message = f"found record {record.seq} where record {expected_seq} belongs"
                return bad("reordered", expected_seq, message)
            missing = (
                f"record {expected_seq} is missing"
                if record.seq == expected_seq + 1
                else f"records {expected_seq}-{record.seq - 1} are missing"
            )
            return bad("deleted", expected_seq, missing)
        if record.prev != expected_prev:
            # Only possible without the key: the record before was rewritten, hash and all.
            return bad(
                "modified",
                max(1, expected_seq - 1),
                "the record before this one was rewritten (its hash no longer links)",
            )
        if record.event == "audit.recovered":
            aside = record.data.get("set_aside", "?")
            recorded_aside.add(str(aside))
            notices.append(
                f"record {record.seq}: recovered after a torn write; "
                f"{record.data.get('torn_bytes', '?')} bytes set aside in {aside}"
            )
        if checkpoint is not None and record.seq == checkpoint.seq:
            hash_at[record.seq] = (record.hash, current.file)
        expected_seq, expected_prev = expected_seq + 1, record.hash
        current = following

    stray = sorted(p.name for p in directory.glob("audit-*.jsonl.torn-*"))
    notices.extend(
        f"{name} holds a torn line that no audit.recovered record mentions "
        "(the writer stopped before recording it)"
        for name in stray
        if name not in recorded_aside
    )
    if raw_key is None:
        notices.append(
            "verified without the key: hashes and links only; a rewrite of the whole log, "
            "a forged record or a cut at the end cannot be detected"
        )
        return result(None)
    last = expected_seq - 1
    if checkpoint_problem is not None:
        return result(checkpoint_problem)
    if checkpoint is None:
        if last == 0 and not files:
            return result(None)
        return result(
            Problem("checkpoint", None, "the checkpoint is missing: a cut cannot be ruled out")
        )
    if not checkpoint.valid(raw_key):
        return result(Problem("checkpoint", None, "the checkpoint is not authenticated by the key"))
    if last < checkpoint.seq:
        gone = checkpoint.seq - last
        return result(
            Problem(
                "truncated",
                last + 1,
                f"the log ends at record {last} but the checkpoint records {checkpoint.seq} "
                f"({gone} record{'s' if gone != 1 else ''} cut off the end)",
            )
        )
    if checkpoint.seq > 0:
        found_hash, found_file = hash_at[checkpoint.seq]
        if found_hash != checkpoint.hash:
            return result(
                Problem("modified", checkpoint.seq, "the record differs from the checkpoint's")
            )
        if found_file != checkpoint.file:
            message = f"the record is in {found_file}, the checkpoint says {checkpoint.file}"
            return result(Problem("reordered", checkpoint.seq, message))
    if last > checkpoint.seq:
        notices.append(
            f"{last - checkpoint.seq} record(s) after the last checkpoint "
            "(written just before a crash); each is authenticated by its MAC"
        )
    return result(None)
