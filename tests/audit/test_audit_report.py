"""The review report: its summary, and each suspicious pattern it must flag (and not flag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from exoimap import audit
from exoimap.audit.query import query
from exoimap.audit.report import Report, ReportPolicy, build_report, format_report

from .conftest import append_at

MB = 1024 * 1024
DAY0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def at(offset: timedelta) -> str:
    return (DAY0 + offset).isoformat().replace("+00:00", "Z")


def report_of(
    directory: Path, *timed: tuple[timedelta, audit.AuditEvent], **kwargs: object
) -> Report:
    append_at(directory, *[(at(offset), event) for offset, event in timed])
    return build_report(query(directory), local=UTC, **kwargs)  # type: ignore[arg-type]


def kinds(report: Report) -> list[str]:
    return [f.kind for f in report.flags]


def test_summary(tmp_path: Path) -> None:
    minute = timedelta(minutes=1)
    report = report_of(
        tmp_path,
        (0 * minute, audit.TokenRequested(account="work", flow="device", client_id="app1")),
        (1 * minute, audit.TokenRefreshed(account="work", flow="device", client_id="app1")),
        (2 * minute, audit.TokenRequested(account="svc", flow="client-secret", client_id="a2")),
        (3 * minute, audit.TokenFailed(account="svc", flow="client-secret", aadsts=7000215)),
        (4 * minute, audit.ImapAuthFailed(account="work", host="h", mechanism="XOAUTH2",
                                          error="AUTHENTICATE failed.")),
        (5 * minute, audit.FolderSynced(account="work", folder="INBOX", copied=10, bytes=5000)),
        (6 * minute, audit.ImapClosed(account="work", host="h", bytes_sent=10, bytes_received=90)),
        (7 * minute, audit.ArchiveExported(account="work", destination="x", bytes=700)),
        (8 * minute, audit.ArchiveRead(account="work", messages=2)),
        (9 * minute, audit.AccessDenied(account="work", action="restore", reason="role")),
    )  # fmt: skip
    assert report.records == 10
    assert report.sign_ins == {"svc": {"client-secret": 1}, "work": {"device": 2}}
    causes = {(f["event"], f["cause"]) for f in report.failures}
    assert causes == {
        ("token.failed", "AADSTS7000215"),
        ("imap.auth_failed", "AUTHENTICATE failed."),
        ("access.denied", "role"),
    }
    assert report.data_moved["work"] == {
        "messages_copied": 10,
        "bytes_synced": 5000,
        "bytes_on_wire": 100,
        "bytes_exported": 700,
    }
    assert report.archive_access == {"work": {"archive.exported": 1, "archive.read": 1}}
    assert report.flags == []
    text = format_report(report)
    for heading in ("Sign-ins", "Failures", "Data moved", "Archive access", "Flags (0)"):
        assert heading in text
    assert "work / device: 2" in text
    assert "AADSTS7000215" in text


def test_repeated_failures(tmp_path: Path) -> None:
    fail = audit.TokenFailed(account="work", flow="device", aadsts=50126)
    burst = [(timedelta(minutes=5 * n), fail) for n in range(5)]
    report = report_of(tmp_path / "burst", *burst)
    assert kinds(report) == ["repeated_failures"]
    assert "5 failed sign-ins" in report.flags[0].message
    assert "AADSTS50126" in report.flags[0].message
    four = report_of(tmp_path / "four", *burst[:4])
    assert kinds(four) == []
    spread = [(timedelta(hours=n), fail) for n in range(6)]
    assert kinds(report_of(tmp_path / "spread", *spread)) == []


def test_new_flow_and_new_client(tmp_path: Path) -> None:
    usual = audit.TokenRequested(account="work", flow="device", client_id="app1")
    report = report_of(
        tmp_path / "a",
        (timedelta(days=0), usual),
        (timedelta(days=1), usual),
        (timedelta(days=2), audit.TokenRequested(account="work", flow="browser", client_id="app1")),
        (timedelta(days=3), audit.TokenRefreshed(account="work", flow="device", client_id="evil")),
        (timedelta(days=4), audit.TokenRequested(account="other", flow="browser", client_id="x")),
    )
    assert kinds(report) == ["new_flow", "new_client"]
    assert "'browser'" in report.flags[0].message
    assert "known: device" in report.flags[0].message
    assert "'evil'" in report.flags[1].message


def test_history_before_the_period_counts(tmp_path: Path) -> None:
    report = report_of(
        tmp_path,
        (timedelta(days=0), audit.TokenRequested(account="work", flow="device")),
        (timedelta(days=1), audit.TokenRequested(account="work", flow="browser")),
        (timedelta(days=5), audit.TokenRequested(account="work", flow="client-secret")),
        since=DAY0 + timedelta(days=3),
    )
    assert report.records == 1
    assert kinds(report) == ["new_flow"]
    assert "client-secret" in report.flags[0].message


def test_unusual_volume(tmp_path: Path) -> None:
    def day(n: int, size: int) -> tuple[timedelta, audit.AuditEvent]:
        return (timedelta(days=n), audit.FolderSynced(account="work", folder="I", bytes=size))

    normal = [day(n, 20 * MB) for n in range(4)]
    spike = report_of(tmp_path / "spike", *normal, day(4, 200 * MB))
    assert kinds(spike) == ["unusual_volume"]
    assert "200.0 MB" in spike.flags[0].message
    assert "20.0 MB" in spike.flags[0].message
    assert kinds(report_of(tmp_path / "calm", *normal, day(4, 50 * MB))) == []
    # Too little history to judge, or too small to matter: no flag.
    assert kinds(report_of(tmp_path / "young", *normal[:2], day(2, 200 * MB))) == []
    tiny = [day(n, 1000) for n in range(4)]
    assert kinds(report_of(tmp_path / "tiny", *tiny, day(4, 9 * MB))) == []


def test_outside_office_hours(tmp_path: Path) -> None:
    policy = ReportPolicy(office_hours=(7, 19))
    report = report_of(
        tmp_path,
        (timedelta(hours=0), audit.ArchiveExported(account="work", destination="x")),  # 10:00
        (timedelta(hours=12), audit.ArchiveExported(account="work", destination="y")),  # 22:00
        (timedelta(hours=12, minutes=5), audit.ArchiveExported(account="work", destination="z")),
        (timedelta(hours=13), audit.FolderSynced(account="work", folder="INBOX")),  # nightly
        (timedelta(hours=18), audit.VaultChanged(account="work", item="secret")),  # 04:00
        policy=policy,
    )
    assert kinds(report) == ["outside_hours", "outside_hours"]
    assert report.flags[0].message.startswith("2 x archive.exported outside office hours 07-19")
    assert "vault.changed" in report.flags[1].message
    no_hours = build_report(query(tmp_path), local=UTC)
    assert kinds(no_hours) == []
