"""Sign-in, sync and failures at -vv against the sandbox tenant: no token, client secret,
password or vault passphrase in any log, audit file, archive, config, or captured output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from exoimap.auth.vault import Vault
from exoimap.cli import EXIT_FAILURE, EXIT_PARTIAL, main
from exoimap.errors import StoreError
from exoimap.protocol import commands as c
from exoimap.sandbox.exchange import handlers
from exoimap.sandbox.exchange.session import Session
from exoimap.sandbox.identity import DAEMON_APP
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.archive import ArchiveStore
from tests.cli.sync_helpers import PASSPHRASE, isolated_home, signed_in_account

from .secret_scan import assert_no_secrets, find_secrets


def _token_secrets(name: str) -> dict[str, str]:
    """The real tokens MSAL stored for the account (decrypted from the vault)."""
    stored = Vault.from_paths().load_token_cache(name)
    assert stored is not None
    cache = json.loads(stored.reveal())
    found: dict[str, str] = {}
    for kind in ("AccessToken", "RefreshToken", "IdToken"):
        for n, entry in enumerate(cache.get(kind, {}).values()):
            found[f"{kind} {n}"] = entry["secret"]
    assert any(k.startswith("AccessToken") for k in found)
    assert any(k.startswith("RefreshToken") for k in found)
    return found


def test_no_secret_anywhere_after_signin_sync_and_failures_at_debug_level(
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = isolated_home(tmp_path, monkeypatch)
    outputs: dict[str, str] = {}

    def run(label: str, args: list[str], expect: int = 0) -> None:
        assert main(["-vv", *args]) == expect
        captured = capsys.readouterr()
        outputs[f"{label} stdout"] = captured.out
        outputs[f"{label} stderr"] = captured.err

    monkeypatch.setattr("tests.cli.sync_helpers.main", lambda argv: main(["-vv", *argv]))
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3, "Archive": 2})
    captured = capsys.readouterr()
    outputs["sign-in stdout"], outputs["sign-in stderr"] = captured.out, captured.err
    run("sync", ["sync", "work", "--metrics-port", "0"])
    run("token show", ["token", "show", "work"])

    # a failing folder (the server answers NO for it) and a locked archive
    real = handlers._fetch

    async def unavailable(session: Session, box: handlers.Mailbox, tag: str, cmd: c.Fetch) -> None:
        if session.selected == "Archive":
            raise StoreError("unavailable")
        await real(session, box, tag, cmd)

    sandbox_tenant.exchange.deliver(upn, b"Subject: x\r\n\r\nnew\r\n", folder="Archive")
    monkeypatch.setattr(handlers, "_fetch", unavailable)
    run("partial sync", ["sync", "work"], EXIT_PARTIAL)
    monkeypatch.setattr(handlers, "_fetch", real)
    other = ArchiveStore.open(home / "archive" / "work")
    try:
        run("locked sync", ["sync", "work"], EXIT_FAILURE)
    finally:
        asyncio.run(other.close())
    run("sync again", ["sync", "work"])
    run("verify", ["verify", "work", "--deep"])
    run("stats", ["archive", "stats", "work"])
    run("audit", ["audit", "tail"])

    known = _token_secrets("work")
    password = dict(sandbox_tenant.users)[upn]
    daemon = next(a for a in sandbox_tenant.apps if a["name"] == DAEMON_APP)
    known |= {
        "user password": password,
        "client secret": str(daemon["client_secret"]),
        "vault passphrase": PASSPHRASE,
    }
    # the scan must see what it checks: logs at debug level, audit files, the archive
    assert (home / "logs").is_dir() or any(home.rglob("*.log"))
    assert any((home / "audit").rglob("*"))
    assert (home / "archive" / "work" / "index.sqlite").is_file()
    assert '"logger": "exoimap.net.imap"' in "".join(p.read_text() for p in home.rglob("*.log"))
    assert "INFO exoimap.net.imap: auth" in outputs["sync stderr"]  # -vv reached the terminal
    assert find_secrets({"probe": known["AccessToken 0"]}, texts={"probe": known["AccessToken 0"]})
    assert_no_secrets(known, paths=[home], texts=outputs)
