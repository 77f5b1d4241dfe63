"""The administrator's dashboard: every configured account with its archive's message
count, its last successful sync and its last failure, and a chart of the sync history of
the last days (from the audit log's ``sync.account`` records; drawn on the server as inline
SVG: no script, nothing loaded from elsewhere). No mail: counts and times only."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exoimap.audit import AuditRecord
from exoimap.audit.query import AuditFilter, query
from exoimap.config import Paths, load_config
from exoimap.console.archives import Mailboxes

__all__ = ["AccountRow", "DayBar", "HistoryChart", "account_rows", "sync_history"]

#: Days the chart shows, today included.
CHART_DAYS = 14
_CHART_HEIGHT = 120.0
_BAR_STEP = 40.0


@dataclass
class AccountRow:
    account: str
    email: str
    messages: int | None = None  # None: no archive yet
    last_success: str = ""
    last_failure: str = ""
    failure: str = ""
    copied_last: int = 0


@dataclass
class DayBar:
    """One day of the chart: runs, failures and messages copied, and where to draw it."""

    day: str
    runs: int = 0
    failures: int = 0
    copied: int = 0
    x: float = 0.0
    height: float = 0.0  # of the bar of copied messages, in chart units

    @property
    def top(self) -> float:
        return _CHART_HEIGHT - self.height


@dataclass
class HistoryChart:
    days: list[DayBar] = field(default_factory=list)
    most_copied: int = 0
    width: float = CHART_DAYS * _BAR_STEP
    height: float = _CHART_HEIGHT


def sync_history(
    records: Sequence[AuditRecord], today: _dt.date | None = None, days: int = CHART_DAYS
) -> HistoryChart:
    """Runs, failures and copied messages per day (UTC) of the last ``days`` days."""
    today = today or _dt.datetime.now(_dt.UTC).date()
    first = today - _dt.timedelta(days=days - 1)
    bars = {
        (first + _dt.timedelta(days=n)).isoformat(): DayBar(
            (first + _dt.timedelta(days=n)).isoformat()
        )
        for n in range(days)
    }
    for record in records:
        bar = bars.get(record.time[:10])
        if bar is None or record.data.get("dry_run"):
            continue
        bar.runs += 1
        bar.copied += int(record.data.get("copied") or 0)
        bar.failures += record.outcome != "success"
    chart = HistoryChart(list(bars.values()), width=days * _BAR_STEP)
    chart.most_copied = max((b.copied for b in chart.days), default=0)
    for n, bar in enumerate(chart.days):
        bar.x = n * _BAR_STEP
        share = bar.copied / chart.most_copied if chart.most_copied else 0.0
        bar.height = round(share * (_CHART_HEIGHT - 20), 1) if bar.copied else 0.0
    return chart


def _sync_history(records: Sequence[AuditRecord], rows: dict[str, AccountRow]) -> None:
    for record in records:
        row = rows.get(record.account or "")
        if row is None or record.data.get("dry_run"):
            continue
        if record.outcome == "success":
            row.last_success = record.time
            row.copied_last = int(record.data.get("copied") or 0)
        else:
            row.last_failure = record.time
            row.failure = str(record.data.get("error") or record.data.get("error_kind") or "")


async def account_rows(
    paths: Paths, mailboxes: Mailboxes, audit_dir: Path
) -> tuple[list[AccountRow], HistoryChart]:
    """The accounts' rows, and the chart of the sync history."""
    config = load_config(paths)
    rows = {name: AccountRow(name, account.email) for name, account in config.accounts.items()}
    for mailbox in mailboxes.all():
        folders = await mailboxes.folders(mailbox)
        rows[mailbox.account].messages = sum(f.messages for f in folders)
    records = list(query(audit_dir, AuditFilter(event="sync.account")))
    _sync_history(records, rows)
    return [rows[name] for name in sorted(rows)], sync_history(records)
