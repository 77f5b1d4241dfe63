"""``exoimap doctor`` against the sandbox tenant: a healthy setup passes; each injected fault
(revoked sign-in, a wrong clock, an edited audit record, a nearly full disk, a read-only
archive folder, a missing CA file, a broken config) is found and its fix printed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from exoimap.cli import EXIT_FAILURE, main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import isolated_home, signed_in_account
from .test_expected_failures import _tmpfs


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def synced(sandbox_tenant: SandboxTenant, home: Path) -> str:
    """A signed-in account 'work' with one sync done (so the archive and audit log exist);
    yields its mailbox address."""
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
    assert main(["sync", "work"]) == 0
    return upn


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict]]:
    capsys.readouterr()
    code = main(["doctor", "--json", *args])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_check = {f"{x['check']}" + (f"/{x['account']}" if x["account"] else ""): x for x in lines}
    return code, by_check


def test_a_healthy_setup_passes_every_check(
    synced: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["doctor", "work"]) == 0
    out = capsys.readouterr().out
    assert "doctor: all checks passed" in out
    assert "FAIL" not in out
    code, found = _doctor(capsys)
    assert code == 0
    assert list(found) == [
        "config", "vault", "sign-in/work", "clock/work", "imap/work", "archive/work",
        "archive-lock/work", "archive-index/work", "archive-files/work", "archive-growth/work",
        "audit", "versions",
    ]  # fmt: skip
    assert "token refreshed" in found["sign-in/work"]["detail"]
    assert "quick_check ok" in found["archive-index/work"]["detail"]
    assert "2 message files match the index" in found["archive-files/work"]["detail"]
    assert not any(f["warning"] for f in found.values())
    assert "TLS verified, signed in, IDLE" in found["imap/work"]["detail"]
    assert all(f["ok"] for f in found.values())


def test_a_revoked_sign_in_is_found_with_its_fix(
    sandbox_tenant: SandboxTenant, synced: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_tenant.admin.revoke_sessions(synced)
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    signin = found["sign-in/work"]
    assert not signin["ok"]
    assert "exoimap login work" in signin["fix"]
    assert "imap/work" not in found  # no sign-in, no IMAP check
    assert found["archive/work"]["ok"]
    assert found["audit"]["ok"]


def test_a_wrong_clock_is_found(
    sandbox_tenant: SandboxTenant, synced: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_tenant.admin.advance_clock(900)  # the identity platform is 15 minutes ahead
    try:
        code, found = _doctor(capsys)
    finally:
        sandbox_tenant.admin.advance_clock(-900)
    assert code == EXIT_FAILURE
    clock = found["clock/work"]
    assert not clock["ok"]
    assert "behind the issuer" in clock["detail"]
    assert "NTP" in clock["fix"]


def test_an_edited_audit_record_is_found(
    synced: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = sorted(Paths.from_env().audit_dir.glob("*.jsonl"))[-1]
    text = log.read_text()
    assert '"outcome":"success"' in text
    log.write_text(text.replace('"outcome":"success"', '"outcome":"failure"', 1))
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    assert not found["audit"]["ok"]
    assert found["audit"]["detail"].startswith("broken: ")
    assert "exoimap audit" in found["audit"]["fix"]


def test_too_little_free_disk_is_found(synced: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = _doctor(capsys, "--min-free", "1000000")  # a million GiB
    assert code == EXIT_FAILURE
    archive = found["archive/work"]
    assert not archive["ok"]
    assert "GiB free" in archive["detail"]
    assert "free disk space" in archive["fix"]


def test_a_read_only_archive_folder_is_found_with_its_fix(
    synced: str, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real read-only mount (the tests run as root, whom no file mode stops)."""
    with _tmpfs(tmp_path / "ro", "4m") as disk:
        shutil.copytree(home / "archive" / "work", disk / "work")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        config = Paths.from_env().config_file
        config.write_text(config.read_text() + f'archive = "{disk / "work"}"\n')
        code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    archive = found["archive/work"]
    assert not archive["ok"]
    assert archive["detail"] == f"{disk / 'work'} is on a read-only file system"
    assert f"mount -o remount,rw {disk}" in archive["fix"]
    assert "[accounts.work]" in archive["fix"]
    assert found["audit"]["ok"]  # the one fault, not more


def test_a_missing_ca_file_is_found(
    sandbox_tenant: SandboxTenant, synced: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Paths.from_env().config_file
    text = config.read_text()
    assert str(sandbox_tenant.ca_file) in text
    config.write_text(text.replace(str(sandbox_tenant.ca_file), str(home / "gone-ca.pem")))
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    failed = [f for f in found.values() if not f["ok"]]
    assert failed
    assert "gone-ca.pem" in failed[0]["detail"] + failed[0]["fix"]


def test_a_broken_config_is_found_first(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Paths.from_env().config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[accounts.work\n")
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    assert not found["config"]["ok"]
    assert str(config) in found["config"]["fix"]
    assert list(found) == ["config", "versions"]


def test_a_vault_open_to_others_is_found(synced: str, capsys: pytest.CaptureFixture[str]) -> None:
    vault = Paths.from_env().vault_dir
    vault.chmod(0o755)
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    assert not found["vault"]["ok"]
    assert "open to others" in found["vault"]["detail"]
    assert found["vault"]["fix"] == f"chmod 700 {vault}"
    vault.chmod(0o700)
    assert _doctor(capsys)[0] == 0


def test_a_vault_that_needs_a_passphrase_nobody_gives_is_found(
    synced: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")  # as under cron: nobody to type it
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    assert not found["vault"]["ok"]
    assert "EXOIMAP_VAULT_KEY_FILE" in found["vault"]["fix"]
    assert not found["sign-in/work"]["ok"]
    assert found["sign-in/work"]["fix"] == "make the vault unlock first (see the vault check)"
