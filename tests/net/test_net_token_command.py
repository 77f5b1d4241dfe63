"""XOAUTH2 to a real Dovecot with a locally signed JWT obtained through the sign-in layer's
token-command flow (TokenProvider -> connection_for -> ImapClient)."""

from __future__ import annotations

import time

import pytest

from exoimap.auth.provider import TokenProvider
from exoimap.config import AccountConfig
from exoimap.net.account import connection_for
from exoimap.net.credentials import OAuth2Credentials
from exoimap.net.imap import ImapClient
from exoimap.sandbox.dovecot import DovecotServer

pytestmark = pytest.mark.anyio


async def test_token_command_flow_signs_in_to_dovecot(dovecot: DovecotServer, mailbox: str) -> None:
    account = AccountConfig(
        name="lab",
        email=mailbox,
        flow="token-command",
        token_command=dovecot.token_command(mailbox, lifetime=1800),
        imap_host=dovecot.host,
        imap_port=dovecot.imaps_port,
        ca_file=dovecot.ca_file,
    )
    provider = TokenProvider(account)
    endpoint, credentials = connection_for(provider, min_validity=60)
    assert endpoint.tls.ca_file == dovecot.ca_file  # taken from the account
    assert isinstance(credentials, OAuth2Credentials)
    assert credentials.mechanism == "XOAUTH2"
    async with ImapClient(endpoint, credentials, account="lab") as client:
        status = await client.select("INBOX")
        assert status.uidvalidity > 0
        session = await client.session()
        assert session.token_expires_at is not None
        assert abs(session.token_expires_at - (time.time() + 1800)) < 60
        assert session.refresh_at is not None
        assert session.refresh_at < session.token_expires_at
