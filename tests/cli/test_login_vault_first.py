"""``exoimap login`` makes sure the vault can store the sign-in before any sign-in starts:
headless, with no keyring, no passphrase and no key file, nobody is shown a device code
that they would approve in vain."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from exoimap.cli import EXIT_USAGE, main
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import PASSPHRASE, add_account, isolated_home, login, new_mailbox


def test_login_without_a_vault_key_stops_before_the_device_code(
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = isolated_home(tmp_path, monkeypatch)
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")  # and stdin is no terminal: no prompt
    upn = new_mailbox(sandbox_tenant, {"INBOX": 1})
    add_account(sandbox_tenant, "work", upn)
    capsys.readouterr()
    shown_codes: list[str] = []
    done = threading.Event()

    def user() -> None:
        """Approves any device code shown (so a login that shows one does not hang)."""
        while not done.wait(0.05):
            for pending in sandbox_tenant.admin.pending_device_codes():
                shown_codes.append(pending.user_code)
                sandbox_tenant.admin.approve_device_code(pending.user_code, upn=upn)

    approver = threading.Thread(target=user)
    approver.start()
    try:
        code = main(["login", "work"])
    finally:
        done.set()
        approver.join()
    assert code == EXIT_USAGE

    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("exoimap: error: no way to protect secrets")
    # the three ways to fix it
    assert "set EXOIMAP_VAULT_PASSPHRASE" in line
    assert "run the command in a terminal" in line
    assert "exoimap vault create-key-file" in line
    # no sign-in was started: no device code shown, none pending at the identity platform
    assert "devicelogin" not in out + err
    assert shown_codes == []
    assert not (home / "vault" / "vault.json").exists()
    assert not (home / "vault" / "audit.key").exists()  # no key forked outside a vault

    # once one of the three is done, the same command signs in
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", PASSPHRASE)
    login(sandbox_tenant, "work", upn)
    assert "Signed in 'work'" in capsys.readouterr().out
