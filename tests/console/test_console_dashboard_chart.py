"""The dashboard's sync-history chart: runs, failures and copied messages per UTC day."""

from __future__ import annotations

import datetime as dt

from exoimap.audit import AuditRecord
from exoimap.console.dashboard import CHART_DAYS, sync_history


def _record(
    time: str, outcome: str = "success", copied: int = 0, *, dry: bool = False
) -> AuditRecord:
    data = {"copied": copied, "dry_run": dry}
    return AuditRecord(
        0, time, "sync.account", outcome, "a", {}, "r", data, "", "", "", hash_ok=True
    )


def test_days_runs_failures_and_scale() -> None:
    today = dt.date(2026, 12, 5)
    chart = sync_history(
        [
            _record("2026-12-05T01:00:00Z", copied=30),
            _record("2026-12-05T02:00:00Z", "failure"),
            _record("2026-12-04T23:59:59Z", copied=120),
            _record("2026-12-04T10:00:00Z", copied=900, dry=True),  # a dry run copies nothing
            _record("2026-11-01T10:00:00Z", copied=5000),  # before the chart
        ],
        today=today,
    )
    assert len(chart.days) == CHART_DAYS
    assert chart.days[0].day == "2026-11-22"
    last, before = chart.days[-1], chart.days[-2]
    assert (last.day, last.runs, last.failures, last.copied) == ("2026-12-05", 2, 1, 30)
    assert (before.runs, before.failures, before.copied) == (1, 0, 120)
    assert chart.most_copied == 120
    assert before.height == chart.height - 20  # the busiest day is the tallest bar
    assert last.height == round(30 / 120 * (chart.height - 20), 1)
    assert all(d.runs == 0 and d.height == 0 for d in chart.days[:-2])
    assert [d.x for d in chart.days[:3]] == [0.0, 40.0, 80.0]
