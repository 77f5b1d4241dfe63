"""Every main command, with its usual failures, ends with one line saying what happened and
the documented exit code, never a traceback; and nothing is lost (issue 23).

The commands run as the user runs them, in a child process (``python -m exoimap``), against
the sandbox tenant: a full disk is a real small tmpfs, a read-only archive a tmpfs mounted
read-only, a broken pipe a stdout whose reader has gone. (The tests run as root, which can
mount a tmpfs; ``make test`` and CI do.)"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exoimap.app import accounts
from exoimap.cli import EXIT_FAILURE, EXIT_SIGN_IN, EXIT_USAGE, main
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import isolated_home, signed_in_account

EXIT_OK = 0


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def message(self) -> str:
        """The one line the command printed on stderr (log warnings aside)."""
        assert "Traceback" not in self.err, self.err
        lines = [line for line in self.err.splitlines() if line and not line.startswith("WARNING ")]
        assert len(lines) == 1, self.err
        return lines[0]


def exoimap(*args: str, stdout_closed: bool = False) -> Ran:
    """Run ``exoimap ARGS`` as a user would, with the test's environment (its home)."""
    command = [sys.executable, "-m", "exoimap", *args]
    if not stdout_closed:
        done = subprocess.run(
            command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
        )
        return Ran(done.returncode, done.stdout, done.stderr)
    reader, writer = os.pipe()
    os.close(reader)  # `exoimap ... | head -c1` once head has gone
    try:
        done = subprocess.run(
            command, stdout=writer, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
    finally:
        os.close(writer)
    return Ran(done.returncode, "", done.stderr)


@contextlib.contextmanager
def _tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (tmpfs) at ``mount``, unmounted afterwards."""
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "disk", "6m") as mount:
        yield mount


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but ``leave`` bytes with a file another program might have written."""
    ballast = disk / f"ballast{len(list(disk.glob('ballast*')))}"
    with ballast.open("wb") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return ballast


def _config(home: Path) -> Path:
    return home / "config.toml"


def _synced_home(tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with the account ``work`` signed in and backed up (three messages)."""
    home = isolated_home(tmp_path, monkeypatch)
    signed_in_account(tenant, "work", {"INBOX": 3})
    assert exoimap("sync", "work").code == EXIT_OK
    return home


def _each_ends_in_one_line(commands: list[tuple[str, ...]], code: int, says: str) -> None:
    """Run each of ``commands``: exit ``code`` and one line on stderr that ``says`` it."""
    for args in commands:
        ran = exoimap(*args)
        assert ran.code == code, (args, ran.out, ran.err)
        assert says in ran.message, args


def test_a_full_disk_says_which_disk_and_loses_nothing(
    sandbox_tenant: SandboxTenant,
    small_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_home(small_disk, monkeypatch)  # config, vault, audit and archive: all there
    signed_in_account(sandbox_tenant, "work", {"INBOX": 150, "Sent Items": 100})
    assert exoimap("sync", "work", "--folder", "INBOX").code == EXIT_OK
    _fill(small_disk, leave=300_000)

    sync = exoimap("sync", "work")
    assert sync.code == EXIT_FAILURE
    line = sync.message
    assert line.startswith("work: failed: no space left on the disk of "), line
    assert f"(mounted at {small_disk}: " in line
    assert "free of 6.0 MB" in line
    assert "everything stored before is intact" in line
    # how much is needed: what is still to fetch after what this run did commit
    needed = re.search(
        r"The rest of this backup needs at least ([\d.]+) KB more for (\d+) messages", line
    )
    assert needed is not None, line
    assert 0 < int(needed[2]) <= 100  # Sent Items: some may have fitted before the disk filled
    planned = exoimap("sync", "work", "--dry-run")
    assert f"would fetch {needed[2]} messages" in planned.out, planned.out

    export = exoimap("export", "work", "--format", "mbox", str(small_disk / "export"))
    assert export.code == EXIT_FAILURE
    assert f"no space left on the disk of {small_disk / 'export'}" in export.message
    assert "the archive is untouched" in export.message
    export_size = re.search(r"the export needs about ([\d.]+ [KM]B);", export.message)
    assert export_size is not None, export.message

    stats = exoimap("archive", "stats", "work")  # reading works on a full disk
    assert stats.code == EXIT_OK, stats.err
    assert f"({export_size[1]})" in stats.out  # the export needs what the archive holds

    # not a byte left: the vault could not store a sign-in, so none starts (no device code
    # for the user to approve in vain)
    _fill(small_disk, leave=0)
    login = exoimap("login", "work")
    assert login.code == EXIT_FAILURE, login.err
    assert f"no space left on the disk of {small_disk / 'home' / 'vault'}" in login.message
    assert "nothing stored before was lost" in login.message
    assert "devicelogin" not in login.err

    # nothing was lost: once space is freed, the next sync completes and checks out
    for ballast in small_disk.glob("ballast*"):
        ballast.unlink()
    assert exoimap("sync", "work").code == EXIT_OK
    verify = exoimap("verify", "work", "--deep")
    assert verify.code == EXIT_OK, verify.out + verify.err
    assert "250 messages on the server, 250 files checked" in verify.out
    assert exoimap("audit", "verify").code == EXIT_OK


def test_a_read_only_archive_is_one_line_for_every_command(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _synced_home(sandbox_tenant, tmp_path, monkeypatch)
    with _tmpfs(tmp_path / "ro", "4m") as disk:
        shutil.copytree(home / "archive" / "work", disk / "work")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        config = _config(home)
        config.write_text(config.read_text() + f'archive = "{disk / "work"}"\n')
        commands = [
            ("sync", "work"),
            ("verify", "work"),
            ("archive", "stats", "work"),
            ("export", "work", "--format", "mbox", str(tmp_path / "out")),
            ("restore", "work", "--merge"),
        ]
        _each_ends_in_one_line(commands, EXIT_FAILURE, "Read-only file system")


def test_a_missing_ca_file_is_one_line(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
    config = _config(home)
    missing = tmp_path / "gone" / "ca.pem"
    config.write_text(config.read_text().replace(str(sandbox_tenant.ca_file), str(missing)))
    commands = [("sync", "work"), ("verify", "work"), ("restore", "work"), ("login", "work")]
    _each_ends_in_one_line(commands, EXIT_USAGE, str(missing))


def test_a_dead_server_is_one_line_within_the_deadline(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _synced_home(sandbox_tenant, tmp_path, monkeypatch)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = _config(home)
    text = config.read_text().replace(
        f"imap_port = {sandbox_tenant.imap_port}", f"imap_port = {closed}"
    )
    config.write_text(text + "unreachable_timeout = 1\n")
    commands = [("sync", "work"), ("verify", "work"), ("restore", "work", "--merge")]
    _each_ends_in_one_line(commands, EXIT_FAILURE, "cannot reach 127.0.0.1 since")


def test_a_revoked_sign_in_is_one_line_with_exit_3(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    admin = sandbox_tenant.admin
    lifetime = admin.configure().access_token_lifetime
    # access tokens shorter than exoimap keeps them (10 min): every command refreshes
    admin.configure(access_token_lifetime=300)
    try:
        upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
        admin.revoke_sessions(upn)  # an administrator revokes the user's sign-ins
        commands = [("sync", "work"), ("verify", "work"), ("token", "show", "work")]
        _each_ends_in_one_line(commands, EXIT_SIGN_IN, "exoimap login work")
    finally:
        admin.configure(access_token_lifetime=lifetime)


def test_a_closed_stdout_is_one_line_for_every_command(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "work", {"INBOX": 3})
    for args in (
        ("sync", "work"),
        ("verify", "work"),
        ("archive", "stats", "work"),
        ("account", "list"),
        ("vault", "status"),
        ("audit", "verify"),
        ("--help",),
    ):
        ran = exoimap(*args, stdout_closed=True)
        assert ran.code == EXIT_FAILURE, (args, ran.err)
        assert ran.message == "exoimap: stopped: the output was closed (broken pipe).", args
    # the sync stopped when it could not print: what it stored stays, the next run goes on
    assert exoimap("sync", "work").code == EXIT_OK
    assert exoimap("verify", "work", "--deep").code == EXIT_OK


def test_an_unmapped_full_disk_inside_concurrent_work_is_still_one_line(
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shape of the report in issue 23: SQLite's "database or disk is full" raised raw
    inside the accounts' task group. Should a layer ever miss its mapping, the command still
    ends in one line and exit 1, not a 65-line ExceptionGroup traceback."""
    isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "work", {"INBOX": 2})

    async def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(accounts, "backup", full)
    capsys.readouterr()
    assert main(["sync", "work"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "exoimap: error: no space left on the device; everything stored before is intact. "
        "Free some space and run again."
    ]
