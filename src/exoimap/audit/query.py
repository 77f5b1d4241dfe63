"""Finding and printing audit records: filters, and table / JSON / JSON lines / CSV output."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from exoimap.audit.events import OUTCOMES
from exoimap.audit.log import AuditRecord, read_lines
from exoimap.errors import ConfigError
from exoimap.untrusted import shown

__all__ = [
    "AuditFilter",
    "format_csv",
    "format_json",
    "format_table",
    "parse_when",
    "query",
    "raw_lines",
    "summarize",
    "tail",
]

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None, local: tzinfo | None = None) -> datetime:
    """A point in time from ``2026-11-28``, ``2026-11-28T07:00`` (local time unless it says
    ``Z`` or an offset) or a span back from now: ``30m``, ``24h``, ``7d``, ``2w``."""
    now = now or datetime.now(UTC)
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a time: use 2026-11-28, 2026-11-28T07:00, 2026-11-28T07:00Z, "
            "or a span back from now like 30m, 24h, 7d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=local) if local else when.astimezone()
    return when.astimezone(UTC)


@dataclass(frozen=True)
class AuditFilter:
    """Which records to keep. ``event`` may be a glob (``token.*``); ``None`` keeps all."""

    since: datetime | None = None
    until: datetime | None = None
    account: str | None = None
    event: str | None = None
    outcome: str | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ConfigError(f"outcome must be one of: {', '.join(OUTCOMES)}")

    def matches(self, record: AuditRecord) -> bool:
        if self.account is not None and record.account != self.account:
            return False
        if self.outcome is not None and record.outcome != self.outcome:
            return False
        if self.event is not None and not fnmatch.fnmatchcase(record.event, self.event):
            return False
        if self.since is not None or self.until is not None:
            when = record.when
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when >= self.until:
                return False
        return True


def raw_lines(directory: Path) -> Iterator[tuple[bytes, AuditRecord]]:
    """Each well-formed record with its exact line (a torn or garbled line is skipped)."""
    return read_lines(directory)


def query(directory: Path, where: AuditFilter | None = None) -> Iterator[AuditRecord]:
    """Records in chain order that pass ``where``. Reading does not verify: see verify_log."""
    where = where or AuditFilter()
    for _, record in raw_lines(directory):
        if where.matches(record):
            yield record


def tail(directory: Path, count: int, where: AuditFilter | None = None) -> list[AuditRecord]:
    """The last ``count`` matching records."""
    return list(deque(query(directory, where), maxlen=max(0, count)))


# --- output ------------------------------------------------------------------------------


def summarize(record: AuditRecord) -> str:
    """The event's fields as ``key=value`` words, skipping empty ones."""
    words = []
    for key, value in record.data.items():
        if value in (None, "", [], 0, 0.0, False):
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        words.append(f"{key}={value}")
    return " ".join(words)


def _actor(record: AuditRecord) -> str:
    user = str(record.actor.get("os_user") or "-")
    console = record.actor.get("console_user")
    return f"{user} (console: {console})" if console else user


def format_table(records: Iterable[AuditRecord], *, local: tzinfo | None = None) -> str:
    """Fixed columns for a terminal; times in local time."""
    rows = [("SEQ", "TIME", "EVENT", "OUTCOME", "ACCOUNT", "ACTOR", "DETAILS")]
    for record in records:
        when = record.when.astimezone(local).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            (
                str(record.seq),
                when,
                record.event,
                record.outcome,
                record.account or "-",
                _actor(record),
                shown(summarize(record)),  # folder names and texts from a server
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def format_json(records: Iterable[AuditRecord]) -> str:
    """A JSON array of records (for tools)."""
    return json.dumps([r.as_dict() for r in records], indent=2, ensure_ascii=False) + "\n"


_CSV_COLUMNS = (
    "seq",
    "time",
    "event",
    "outcome",
    "account",
    "os_user",
    "console_user",
    "run",
    "data",
    "hash",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs cells starting with these as formulas: keep them text.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def format_csv(records: Iterable[AuditRecord]) -> str:
    """CSV with one column per envelope field and the event fields as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for r in records:
        data = json.dumps(r.data, separators=(",", ":"), ensure_ascii=False)
        row = (
            r.seq,
            r.time,
            r.event,
            r.outcome,
            r.account,
            r.actor.get("os_user"),
            r.actor.get("console_user"),
            r.run,
            data,
            r.hash,
        )
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()
