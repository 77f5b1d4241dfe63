"""Filters and output formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.audit.query import (
    AuditFilter,
    format_csv,
    format_json,
    format_table,
    parse_when,
    query,
    raw_lines,
    tail,
)
from exoimap.errors import ConfigError

from .conftest import append_at


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "audit"
    append_at(
        directory,
        ("2026-11-01T08:00:00.000000Z", audit.TokenRequested(account="work", flow="device")),
        ("2026-11-01T08:00:01.000000Z", audit.ImapConnected(account="work", host="outlook")),
        ("2026-11-02T09:00:00.000000Z", audit.TokenFailed(account="home", flow="browser")),
        ("2026-11-03T10:00:00.000000Z", audit.AccessDenied(account="home", action="export")),
        ("2026-11-04T11:00:00.000000Z", audit.FolderSynced(account="work", folder="=cmd()")),
    )
    return directory


def events(directory: Path, **kwargs: object) -> list[int]:
    return [r.seq for r in query(directory, AuditFilter(**kwargs))]  # type: ignore[arg-type]


def test_filters(log_dir: Path) -> None:
    assert events(log_dir) == [1, 2, 3, 4, 5]
    assert events(log_dir, account="home") == [3, 4]
    assert events(log_dir, event="token.*") == [1, 3]
    assert events(log_dir, event="imap.connected") == [2]
    assert events(log_dir, outcome="denied") == [4]
    since = datetime(2026, 11, 2, tzinfo=UTC)
    until = datetime(2026, 11, 4, tzinfo=UTC)
    assert events(log_dir, since=since, until=until) == [3, 4]
    assert events(log_dir, since=since, account="work", event="sync.*") == [5]
    with pytest.raises(ConfigError, match="outcome"):
        AuditFilter(outcome="failed")


def test_parse_when() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_when("24h", now=now) == now - timedelta(hours=24)
    assert parse_when("7d", now=now) == now - timedelta(days=7)
    assert parse_when("30m", now=now) == now - timedelta(minutes=30)
    assert parse_when("2026-11-28T07:00Z") == datetime(2026, 11, 28, 7, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    assert parse_when("2026-11-28T07:00", local=plus2) == datetime(2026, 11, 28, 5, tzinfo=UTC)
    assert parse_when("2026-11-28", local=UTC) == datetime(2026, 11, 28, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not a time"):
        parse_when("yesterday")


def test_tail(log_dir: Path) -> None:
    assert [r.seq for r in tail(log_dir, 2)] == [4, 5]
    assert [r.seq for r in tail(log_dir, 10, AuditFilter(account="work"))] == [1, 2, 5]
    assert tail(log_dir, 0) == []


def test_table(log_dir: Path) -> None:
    text = format_table(query(log_dir), local=UTC)
    lines = text.splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "EVENT", "OUTCOME", "ACCOUNT", "ACTOR", "DETAILS"]
    assert "2026-11-03 10:00:00" in lines[4]
    assert "access.denied" in lines[4]
    assert "action=export" in lines[4]
    assert len(lines) == 6


def test_json(log_dir: Path) -> None:
    records = json.loads(format_json(query(log_dir, AuditFilter(account="home"))))
    assert [r["event"] for r in records] == ["token.failed", "access.denied"]
    assert records[0]["data"]["flow"] == "browser"
    assert "mac" not in records[0]


def test_csv_keeps_formulas_inert(log_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(format_csv(query(log_dir)))))
    assert [r["event"] for r in rows][-1] == "sync.folder"
    assert json.loads(rows[-1]["data"])["folder"] == "=cmd()"  # JSON cell starts with "{"
    assert rows[0]["os_user"] == "ann"
    assert rows[0]["seq"] == "1"
    hostile = append_at  # an account name cannot start with "=" in config, but records may
    directory = log_dir.parent / "other"
    hostile(directory, ("2026-11-05T00:00:00Z", audit.ArchiveRead(account="=HYPERLINK()")))
    row = next(csv.DictReader(io.StringIO(format_csv(query(directory)))))
    assert row["account"] == "'=HYPERLINK()"


def test_raw_lines_skip_a_torn_line(log_dir: Path) -> None:
    path = log_dir / "audit-000001.jsonl"
    path.write_bytes(path.read_bytes() + b'{"seq":6,"ti')
    assert [r.seq for _, r in raw_lines(log_dir)] == [1, 2, 3, 4, 5]
    first_line = path.read_bytes().split(b"\n")[0]
    assert next(raw_lines(log_dir))[0] == first_line


def test_table_shows_server_text_escaped(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    folder = "evil\x1b[2J\x1b]0;owned\x07"
    append_at(
        directory, ("2026-11-04T11:00:00.000000Z", audit.FolderSynced(account="w", folder=folder))
    )
    text = format_table(query(directory), local=UTC)
    assert "\x1b" not in text
    assert "folder=evil\\x1b[2J\\x1b]0;owned\\x07" in text
