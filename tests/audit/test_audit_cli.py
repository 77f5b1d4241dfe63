"""``exoimap audit ...``: exit codes and outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.auth.audit_key import audit_key_for
from exoimap.config import Paths

from .conftest import run


def fill(count: int = 6) -> None:
    with audit.open_auditor(Paths.from_env(), key=audit_key_for(Paths.from_env())) as auditor:
        for n in range(count):
            account = "work" if n % 2 else "home"
            auditor.emit(audit.ArchiveRead(account=account, messages=n))
        auditor.emit(audit.TokenFailed(account="work", flow="device", aadsts=50126))


def test_verify_exit_codes(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capfd, "audit", "verify")
    assert code == 0
    assert "no audit log yet" in out
    fill()
    code, out, _ = run(capfd, "audit", "verify")
    assert code == 0
    assert "intact: 7 records in 1 file (" in out
    path = home / "audit" / "audit-000001.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "reordered: record 2" in err
    code, out, _ = run(capfd, "audit", "verify", "--no-key")
    assert code == 1


def test_verify_without_key_file(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    fill(1)
    (home / "vault" / "audit.key").unlink()
    (home / "vault" / "audit.key.copy").unlink()
    code, _, err = run(capfd, "audit", "verify")
    assert code == 2
    assert "no audit key" in err
    code, out, _ = run(capfd, "audit", "verify", "--no-key")
    assert code == 0
    assert "hash chain only" in out


def test_query_and_tail(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    fill()
    code, out, _ = run(capfd, "audit", "query", "--account", "work", "--format", "json")
    assert code == 0
    assert [r["seq"] for r in json.loads(out)] == [2, 4, 6, 7]
    code, out, _ = run(capfd, "audit", "query", "--outcome", "failure")
    assert out.splitlines()[1].split()[3:5] == ["token.failed", "failure"]
    code, out, _ = run(capfd, "audit", "query", "--event", "archive.*", "--since", "1h")
    assert len(out.splitlines()) == 7
    code, out, _ = run(capfd, "audit", "tail", "-n", "2")
    assert [line.split()[0] for line in out.splitlines()] == ["SEQ", "6", "7"]
    code, _, err = run(capfd, "audit", "query", "--outcome", "bad")
    assert code == 2
    assert "outcome must be one of" in err


def test_export(home: Path, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fill()
    target = tmp_path / "out" / "audit.jsonl"
    target.parent.mkdir()
    code, _, _ = run(capfd, "audit", "export", "-o", str(target))
    assert code == 0
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_bytes() == (home / "audit" / "audit-000001.jsonl").read_bytes()
    # An unfiltered JSON-lines export is the chain itself: it verifies elsewhere.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "audit-000001.jsonl").write_bytes(target.read_bytes())
    assert audit.verify_log(elsewhere, None).ok
    code, out, _ = run(capfd, "audit", "export", "--format", "csv", "--account", "home")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["seq"] for r in rows] == ["1", "3", "5"]
    assert {r["event"] for r in rows} == {"archive.read"}


def test_report(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (home / "config.toml").write_text('[audit]\noffice_hours = "00-01"\n')
    fill()
    code, out, _ = run(capfd, "audit", "report")
    assert code == 0
    assert "AADSTS50126" in out
    code, out, _ = run(capfd, "audit", "report", "--format", "json")
    report = json.loads(out)
    assert report["archive_access"] == {"home": {"archive.read": 3}, "work": {"archive.read": 3}}
    assert report["failures"][0]["cause"] == "AADSTS50126"
