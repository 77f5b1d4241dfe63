"""A review summary of the audit log, with the patterns a reviewer should look at flagged.

Flags (each names the account, the time and why):

``repeated_failures``
    at least ``failure_threshold`` failed sign-ins (``token.failed``, ``imap.auth_failed``)
    for one account within ``failure_window``;
``new_flow`` / ``new_client``
    a sign-in with a flow or client id the account never used before, when it had signed
    in before (records before ``--since`` count as history);
``unusual_volume``
    a local day whose data moved (synced, exported, restored bytes) is more than
    ``volume_factor`` times the median of the account's earlier days (at least
    ``volume_history_days`` of them) and above ``volume_floor_bytes``;
``outside_hours``
    sign-ins, archive access and configuration or vault changes outside
    ``[audit] office_hours`` (local time), one flag per account, event and day.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from exoimap.audit.log import AuditRecord
from exoimap.words import byte_size

__all__ = ["Flag", "Report", "ReportPolicy", "build_report", "format_report"]

SIGN_IN_EVENTS = frozenset({"token.requested", "token.refreshed"})
AUTH_FAILURE_EVENTS = frozenset({"token.failed", "imap.auth_failed"})
ATTENDED_EVENTS = frozenset(
    {
        "token.requested",
        "imap.authenticated",
        "archive.read",
        "archive.exported",
        "archive.restored",
        "config.changed",
        "vault.changed",
        "access.denied",
    }
)
VOLUME_EVENTS = frozenset({"sync.folder", "archive.exported", "archive.restored"})


@dataclass(frozen=True)
class ReportPolicy:
    """Thresholds for the flags; the defaults suit one person's mailboxes."""

    office_hours: tuple[int, int] | None = None
    failure_threshold: int = 5
    failure_window: timedelta = timedelta(hours=1)
    volume_factor: float = 3.0
    volume_history_days: int = 3
    volume_floor_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class Flag:
    kind: str
    account: str
    time: str
    message: str


@dataclass
class Report:
    since: str | None
    until: str | None
    records: int = 0
    sign_ins: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    data_moved: dict[str, dict[str, int]] = field(default_factory=dict)
    archive_access: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cause(record: AuditRecord) -> str:
    code = record.data.get("aadsts")
    text = str(record.data.get("error") or record.data.get("reason") or "")
    if code:
        text = f"AADSTS{code}" + (f": {text}" if text and f"{code}" not in text else "")
    return (text or "(no cause recorded)")[:120]


def _bytes_moved(record: AuditRecord) -> int:
    value = record.data.get("bytes", 0)
    return value if isinstance(value, int) else 0


def build_report(
    records: Iterable[AuditRecord],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    policy: ReportPolicy | None = None,
    local: tzinfo | None = None,
) -> Report:
    """Summarise the records between ``since`` and ``until`` (earlier ones are history)."""
    policy = policy or ReportPolicy()
    tally = _Tally(
        Report(
            since=since.isoformat() if since else None, until=until.isoformat() if until else None
        ),
        policy,
        local,
    )
    for record in records:
        if until is not None and record.when >= until:
            continue
        in_period = since is None or record.when >= since
        tally.remember(record, in_period=in_period)
        if in_period:
            tally.count(record)
    _volume_flags(tally.daily, since, until, local=local, policy=policy, report=tally.report)
    return tally.finish()


@dataclass
class _Tally:
    """The counts and the history that :func:`build_report` gathers, record by record."""

    report: Report
    policy: ReportPolicy
    local: tzinfo | None
    sign_ins: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    moved: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    archive: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    known_flows: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    known_clients: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    recent_failures: dict[str, deque[datetime]] = field(default_factory=lambda: defaultdict(deque))
    daily: dict[str, dict[date, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    after_hours: dict[tuple[str, str, date], list[datetime]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def remember(self, record: AuditRecord, *, in_period: bool) -> None:
        """What every record before ``until`` adds to the history (volume, known sign-ins)."""
        account = record.account or "-"
        if record.event in VOLUME_EVENTS:
            self.daily[account][record.when.astimezone(self.local).date()] += _bytes_moved(record)
        if record.event in SIGN_IN_EVENTS and record.outcome == "success":
            _check_new_sign_in(
                record,
                account,
                in_period,
                known_flows=self.known_flows,
                known_clients=self.known_clients,
                report=self.report,
            )

    def count(self, record: AuditRecord) -> None:
        """What a record in the period adds to the summary and the flags."""
        account = record.account or "-"
        self.report.records += 1
        if record.event in SIGN_IN_EVENTS and record.outcome == "success":
            self.sign_ins[account][str(record.data.get("flow") or "-")] += 1
        if record.outcome != "success":
            self.failures[(record.event, account, _cause(record))] += 1
        if record.event in AUTH_FAILURE_EVENTS:
            _check_failures(
                record,
                account,
                record.when,
                window=self.recent_failures[account],
                policy=self.policy,
                report=self.report,
            )
        self._count_moved(record, account)
        hours = self.policy.office_hours
        local_when = record.when.astimezone(self.local)
        if hours and record.event in ATTENDED_EVENTS and not hours[0] <= local_when.hour < hours[1]:
            self.after_hours[(account, record.event, local_when.date())].append(local_when)

    def _count_moved(self, record: AuditRecord, account: str) -> None:
        if record.event == "sync.folder":
            self.moved[account]["messages_copied"] += int(record.data.get("copied") or 0)
            self.moved[account]["bytes_synced"] += _bytes_moved(record)
        elif record.event == "imap.closed":
            wire = int(record.data.get("bytes_received") or 0)
            wire += int(record.data.get("bytes_sent") or 0)
            self.moved[account]["bytes_on_wire"] += wire
        elif record.event.startswith("archive."):
            self.archive[account][record.event] += 1
            if record.event in ("archive.exported", "archive.restored"):
                bytes_key = record.event.replace("archive.", "bytes_")
                self.moved[account][bytes_key] += _bytes_moved(record)

    def finish(self) -> Report:
        report = self.report
        start, end = self.policy.office_hours or (0, 24)
        for (account, event, _day), times in sorted(self.after_hours.items()):
            first = times[0]
            report.flags.append(
                Flag(
                    "outside_hours",
                    account,
                    first.isoformat(),
                    f"{len(times)} x {event} outside office hours {start:02d}-{end:02d} "
                    f"(first at {first:%H:%M} local time)",
                )
            )
        report.sign_ins = {a: dict(c) for a, c in sorted(self.sign_ins.items())}
        report.failures = [
            {"event": e, "account": a, "cause": c, "count": n}
            for (e, a, c), n in sorted(self.failures.items(), key=lambda item: -item[1])
        ]
        report.data_moved = {a: dict(c) for a, c in sorted(self.moved.items())}
        report.archive_access = {a: dict(c) for a, c in sorted(self.archive.items())}
        report.flags.sort(key=lambda f: f.time)
        return report


def _check_new_sign_in(
    record: AuditRecord,
    account: str,
    in_period: bool,
    *,
    known_flows: dict[str, set[str]],
    known_clients: dict[str, set[str]],
    report: Report,
) -> None:
    for kind, value, known in (
        ("new_flow", record.data.get("flow"), known_flows[account]),
        ("new_client", record.data.get("client_id"), known_clients[account]),
    ):
        if not value:
            continue
        value = str(value)
        if known and value not in known and in_period:
            what = "flow" if kind == "new_flow" else "client id"
            report.flags.append(
                Flag(
                    kind,
                    account,
                    record.time,
                    f"first sign-in with {what} {value!r} (known: {', '.join(sorted(known))})",
                )
            )
        known.add(value)


def _check_failures(
    record: AuditRecord,
    account: str,
    when: datetime,
    *,
    window: deque[datetime],
    policy: ReportPolicy,
    report: Report,
) -> None:
    window.append(when)
    while window and when - window[0] > policy.failure_window:
        window.popleft()
    if len(window) >= policy.failure_threshold:
        minutes = policy.failure_window.total_seconds() / 60
        report.flags.append(
            Flag(
                "repeated_failures",
                account,
                record.time,
                f"{len(window)} failed sign-ins within {minutes:g} minutes "
                f"(last: {_cause(record)})",
            )
        )
        window.clear()  # one flag per burst


def _volume_flags(
    daily: dict[str, dict[date, int]],
    since: datetime | None,
    until: datetime | None,
    *,
    local: tzinfo | None,
    policy: ReportPolicy,
    report: Report,
) -> None:
    first_day = since.astimezone(local).date() if since else None
    last_day = until.astimezone(local).date() if until else None
    for account, days in sorted(daily.items()):
        history: list[int] = []
        for day in sorted(days):
            moved = days[day]
            in_period = (first_day is None or day >= first_day) and (
                last_day is None or day <= last_day
            )
            if in_period and len(history) >= policy.volume_history_days:
                typical = statistics.median(history)
                if moved > policy.volume_floor_bytes and moved > policy.volume_factor * typical:
                    report.flags.append(
                        Flag(
                            "unusual_volume",
                            account,
                            day.isoformat(),
                            f"{byte_size(moved)} moved on {day}, "
                            f"typical day {byte_size(int(typical))}",
                        )
                    )
            history.append(moved)


def format_report(report: Report) -> str:
    """The report as text for a reviewer."""
    out: list[str] = []
    period = f"{report.since or 'the beginning'} to {report.until or 'now'}"
    out.append(f"Audit report: {period} ({report.records} records)")
    out.append("")
    out.append("Sign-ins (account / flow: count)")
    for account, flows in report.sign_ins.items():
        for flow, n in flows.items():
            out.append(f"  {account} / {flow}: {n}")
    if not report.sign_ins:
        out.append("  none")
    out.append("")
    out.append("Failures and denials (count, event, account, cause)")
    out.extend(
        f"  {f['count']:>5}  {f['event']}  {f['account']}  {f['cause']}" for f in report.failures
    )
    if not report.failures:
        out.append("  none")
    out.append("")
    out.append("Data moved")
    for account, counts in report.data_moved.items():
        parts = [
            f"{k.replace('_', ' ')} {byte_size(v) if k.startswith('bytes') else v}"
            for k, v in counts.items()
        ]
        out.append(f"  {account}: " + ", ".join(parts))
    if not report.data_moved:
        out.append("  none")
    out.append("")
    out.append("Archive access")
    for account, counts in report.archive_access.items():
        out.append(f"  {account}: " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
    if not report.archive_access:
        out.append("  none")
    out.append("")
    out.append(f"Flags ({len(report.flags)})")
    out.extend(f"  ! {f.kind}: {f.account}: {f.message} [{f.time}]" for f in report.flags)
    if not report.flags:
        out.append("  none")
    return "\n".join(out) + "\n"
