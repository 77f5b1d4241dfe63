"""Helpers for the sync CLI tests: an isolated home, a fresh sandbox user with mail, an
account signed in through the real device-code flow (approved through the sandbox)."""

from __future__ import annotations

import io
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from exoimap.auth import vault as vault_module
from exoimap.auth.vault import ScryptParams
from exoimap.cli import main
from exoimap.errors import StoreError
from exoimap.protocol import commands as c
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.sandbox.exchange import handlers
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.exchange.session import Session
from exoimap.sandbox.identity import PUBLIC_APP
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message

PASSPHRASE = "sync cli test passphrase"


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("EXOIMAP_HOME", str(home))
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("EXOIMAP_NO_KEYRING", "1")
    monkeypatch.delenv("EXOIMAP_VAULT_KEY_FILE", raising=False)
    monkeypatch.setattr(vault_module, "DEFAULT_SCRYPT", ScryptParams(n=2**10, r=8, p=1))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: never prompt
    return home


def new_mailbox(
    tenant: SandboxTenant, folders: dict[str, int], exchange: ExchangeControl | None = None
) -> str:
    """A new sandbox user whose mailbox holds ``count`` generated messages per folder
    (on ``exchange``, default the tenant's IMAP server)."""
    upn = f"s{uuid.uuid4().hex[:10]}@{tenant.tenant_domain}"
    tenant.admin.create_user(upn, password="Sandbox-Pass-1!")
    n = 0
    for folder, count in folders.items():
        for _ in range(count):
            n += 1
            (exchange or tenant.exchange).deliver(
                upn, sample_message(n, 500 + 37 * n), folder=folder
            )
    return upn


def public_client_id(tenant: SandboxTenant) -> str:
    app = next(a for a in tenant.apps if a["name"] == PUBLIC_APP)
    return str(app["client_id"])


def add_account(
    tenant: SandboxTenant, name: str, upn: str, *, imap_port: int | None = None
) -> None:
    args = [
        "account", "add", name,
        "--cloud", "custom",
        "--authority", tenant.authority,
        "--ca-file", str(tenant.ca_file),
        "--imap-host", tenant.imap_host,
        "--imap-port", str(imap_port or tenant.imap_port),
        "--smtp-port", str(tenant.smtp_port),
        "--client-id", public_client_id(tenant),
        "--email", upn,
        "--flow", "device",
    ]  # fmt: skip
    assert main(args) == 0


def add_dovecot_account(home: Path, dovecot: DovecotServer, user: str, name: str) -> None:
    """``exoimap account add NAME`` for ``user`` of a Dovecot: a token command prints a JWT
    the server accepts (the file it reads is the test's, 0600)."""
    token = home / f"dovecot-token-{name}"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.touch(mode=0o600)
    token.write_text(dovecot.mint_token(user, 3600).reveal())
    args = [
        "account", "add", name,
        "--email", user,
        "--flow", "token-command",
        "--token-command", f"cat {token}",
        "--imap-host", dovecot.host,
        "--imap-port", str(dovecot.imaps_port),
        "--ca-file", str(dovecot.ca_file),
    ]  # fmt: skip
    assert main(args) == 0


def approve_next_code(tenant: SandboxTenant, upn: str, timeout: float = 30.0) -> None:
    """Play the user: approve the first pending device code (as ``upn``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = tenant.admin.pending_device_codes()
        if pending:
            tenant.admin.approve_device_code(pending[0].user_code, upn=upn)
            return
        time.sleep(0.05)
    raise AssertionError("no device code appeared")


def login(tenant: SandboxTenant, name: str, upn: str, *options: str) -> None:
    """``exoimap login NAME [OPTIONS]`` (device code), approved through the sandbox."""
    approver = threading.Thread(target=approve_next_code, args=(tenant, upn))
    approver.start()
    try:
        assert main(["login", name, *options]) == 0
    finally:
        approver.join()


def signed_in_account(
    tenant: SandboxTenant,
    name: str,
    folders: dict[str, int],
    *,
    exchange: ExchangeControl | None = None,
    smtp: bool = False,
) -> str:
    """A new mailbox holding ``folders``, added as account ``name`` and signed in (with
    SMTP.Send too when ``smtp``, as the proxy's SMTP relay needs); returns its address."""
    upn = new_mailbox(tenant, folders, exchange)
    add_account(tenant, name, upn, imap_port=exchange.port if exchange else None)
    login(tenant, name, upn, *(["--smtp"] if smtp else []))
    return upn


def fetch_fails_in(monkeypatch: pytest.MonkeyPatch, folder: str) -> Callable[[], None]:
    """Make the sandbox fail every FETCH in ``folder`` (the mailbox database of that folder
    is unavailable); returns what puts the real FETCH back."""
    real = handlers._fetch

    async def unavailable(
        session: Session, box: handlers.Mailbox, tag: str, command: c.Fetch
    ) -> None:
        if session.selected == folder:
            raise StoreError("the mailbox database of this folder is unavailable")
        await real(session, box, tag, command)

    monkeypatch.setattr(handlers, "_fetch", unavailable)
    return lambda: monkeypatch.setattr(handlers, "_fetch", real)
