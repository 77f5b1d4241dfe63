from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.audit.log import Entry
from exoimap.cli import main
from exoimap.secrets import Secret

KEY = Secret(b"K" * 32)

#: A CLI run: exit code, stdout, stderr.
Run = tuple[int, str, str]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An exoimap home of its own ($EXOIMAP_HOME)."""
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    return tmp_path


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> Run:
    """Run the CLI in this process; its exit code and what it printed."""
    code = main(list(argv))
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def write_events(directory: Path, count: int, *, max_file_bytes: int = 1 << 20) -> None:
    log = audit.AuditLog(directory, KEY, max_file_bytes=max_file_bytes, run="run-1", os_user="ann")
    with audit.Auditor(log, batch_size=7) as auditor:
        for n in range(count):
            auditor.emit(audit.FolderSynced(account="work", folder=f"F{n}", copied=n, bytes=10 * n))


@pytest.fixture
def make_log(tmp_path: Path) -> Callable[..., Path]:
    def make(count: int = 20, **kwargs: int) -> Path:
        directory = tmp_path / "audit"
        write_events(directory, count, **kwargs)
        return directory

    return make


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def append_at(directory: Path, *timed: tuple[str, audit.AuditEvent]) -> None:
    """Write events with chosen times (the report looks at when things happened)."""
    log = audit.AuditLog(directory, KEY)
    try:
        log.append([Entry(t, event, "ann", None, "run-t") for t, event in timed])
    finally:
        log.close()
