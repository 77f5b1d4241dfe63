"""Connections, sign-ins (with their failures) and disconnections are audit records."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap import audit
from exoimap.errors import ImapAuthenticationFailed
from exoimap.net.credentials import OAuth2Credentials, PasswordCredentials, StaticToken
from exoimap.net.imap import Endpoint, ImapClient
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.secrets import Secret

pytestmark = pytest.mark.anyio


async def test_connection_auth_and_close_are_audited_without_secrets(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    token = dovecot.mint_token(mailbox)
    directory = tmp_path / "audit"
    log = audit.AuditLog(directory, Secret(b"K" * 32), run="run-1", os_user="tester")
    with audit.Auditor(log, batch_size=1) as auditor, audit.use_auditor(auditor):
        creds = OAuth2Credentials(mailbox, StaticToken(token))
        async with ImapClient(endpoint, creds, account="work") as client:
            await client.select("INBOX")
        bad = ImapClient(
            endpoint, PasswordCredentials(mailbox, Secret("wrong-password-123")), account="work"
        )
        with pytest.raises(ImapAuthenticationFailed):
            await bad.session()
    records = list(audit.read_records(directory))
    assert [r.event for r in records] == [
        "imap.connected",
        "imap.authenticated",
        "imap.closed",
        "imap.connected",
        "imap.auth_failed",
        "imap.closed",
    ]
    connected, authed, closed, _, failed, _ = records
    assert connected.account == "work"
    assert connected.data["host"] == "127.0.0.1"
    assert connected.data["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert authed.data["mechanism"] == "XOAUTH2"
    assert authed.data["username"] == mailbox
    assert closed.data["bytes_sent"] > len(token.reveal())
    assert closed.data["bytes_received"] > 0
    assert closed.data["connection"] == connected.data["connection"] == authed.data["connection"]
    assert failed.outcome == "failure"
    assert failed.data["mechanism"] == "PLAIN"
    assert "Authentication failed" in failed.data["error"]
    raw = b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())
    assert token.reveal().encode() not in raw
    assert token.reveal()[-24:].encode() not in raw
    assert b"wrong-password-123" not in raw
