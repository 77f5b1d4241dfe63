"""Recovering a broken audit log without losing it: seal the old chain, start a new one.

When the writer refuses to append (the checkpoint deleted, the log cut or modified), or it
found and recorded a reset, ``exoimap audit recover --reason TEXT`` is the way on that
cannot be mistaken for an attack: nothing is deleted or rewritten. Under the log's lock:

1. the log is verified (anchor included): an intact log is left alone;
2. every file of the live chain (records, torn lines set aside, checkpoint) moves, as it
   is, into a new folder ``segment-NNNN`` inside the audit folder;
3. the first record of the new chain, ``audit.segment_started``, links to the last good
   record of the sealed one (its number and hash become this record's predecessor) and
   names the segment, the problem found and the reason given; checkpoint and anchor follow.

:func:`exoimap.audit.verify.verify_log` then checks both: the new chain, and that the
sealed segment still ends at that record with no problem but the one recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from exoimap.audit.events import AuditSegmentStarted
from exoimap.audit.log import (
    CHECKPOINT_NAME,
    AuditLog,
    audit_files,
    sealed_segments,
)
from exoimap.audit.verify import Problem, verify_log
from exoimap.errors import ConfigError, StoreUnavailable
from exoimap.secrets import Secret

__all__ = ["Recovery", "recover_log"]

_MAX_REASON: Final = 500


@dataclass(frozen=True)
class Recovery:
    """What a recovery did: where the old chain is kept, what was wrong with it, and the
    number of the first record of the new one."""

    segment: str
    problem: Problem
    linked_to: int
    first_record: int


def recover_log(
    directory: Path,
    key: Secret[bytes],
    reason: str,
    *,
    anchor: Path | None = None,
    run: str = "",
    os_user: str = "",
) -> Recovery | None:
    """Seal a broken log and start a new segment linked to it; ``None`` (and nothing
    changed) when the log is intact."""
    reason = " ".join(reason.split())
    if not reason:
        raise ConfigError("say why the log is recovered (--reason TEXT): it goes into the log")
    if len(reason) > _MAX_REASON:
        raise ConfigError(f"the reason is longer than {_MAX_REASON} characters")
    log = AuditLog(directory, key, anchor=anchor, check_tail=False, run=run, os_user=os_user)
    try:
        with log.locked():
            result = verify_log(directory, key, anchor=anchor)
            if result.problem is None:
                return None
            segment = _seal(directory)
            event = AuditSegmentStarted(
                segment=segment,
                last_seq=result.records,
                last_hash=result.last_hash,
                problem_kind=result.problem.kind,
                problem=result.problem.describe(),
                reason=reason,
            )
            first = log.start_segment(event, result.records, result.last_hash)
    finally:
        log.close()
    return Recovery(segment, result.problem, result.records, first)


def _seal(directory: Path) -> str:
    """Move the live chain's files, unchanged, into the next ``segment-NNNN`` folder."""
    sealed = sealed_segments(directory)
    number = int(sealed[-1].name.split("-")[1]) + 1 if sealed else 1  # "segment-NNNN"
    name = f"segment-{number:04d}"
    target = directory / name
    moving = [path for _, path in audit_files(directory)]
    moving += sorted(directory.glob("audit-*.jsonl.torn-*"))
    moving += [p for p in (directory / CHECKPOINT_NAME,) if p.exists()]
    try:
        target.mkdir(mode=0o700)
        for path in moving:
            os.rename(path, target / path.name)
        for folder in (target, directory):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot set the old audit log aside in {target}: {exc.strerror}; nothing was "
            "deleted (files already moved are in that folder)",
            retryable=False,
        ) from None
    return name
