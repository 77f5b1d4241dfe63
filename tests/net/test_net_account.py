"""connection_for turns an account's provider into a working client (Dovecot, XOAUTH2 and
PLAIN)."""

from __future__ import annotations

import math
import time

import pytest

from exoimap.net.account import connection_for
from exoimap.net.credentials import OAuth2Credentials, PasswordCredentials
from exoimap.net.imap import ImapClient
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.secrets import Secret

pytestmark = pytest.mark.anyio


class Provider:
    """Shaped like exoimap.auth.provider.TokenProvider (structural protocol)."""

    def __init__(self, dovecot: DovecotServer, user: str, mechanism: str) -> None:
        self.dovecot = dovecot
        self.imap_host = dovecot.host
        self.imap_port = dovecot.imaps_port
        self.username = user
        self.mechanism = mechanism
        self.starttls = False
        self.uses_password = mechanism in ("plain", "login")
        self.asked: list[float] = []
        self._expires = 0.0

    def password(self) -> Secret[str]:
        return self.dovecot.password(self.username)

    async def access_token_async(self, min_validity: float = 300.0) -> Secret[str]:
        self.asked.append(min_validity)
        self._expires = time.time() + 3600
        return self.dovecot.mint_token(self.username, 3600)

    def expires_at(self) -> float:
        return self._expires

    def checked_token(self) -> None:
        return None  # Dovecot's tokens are not Exchange's: nothing is checked


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer", "plain"])
async def test_connection_for_provider(
    dovecot: DovecotServer, mailbox: str, mechanism: str
) -> None:
    provider = Provider(dovecot, mailbox, mechanism)
    endpoint, credentials = connection_for(provider, ca_file=dovecot.ca_file, min_validity=900)
    assert endpoint.port == dovecot.imaps_port
    if mechanism == "plain":
        assert isinstance(credentials, PasswordCredentials)
    else:
        assert isinstance(credentials, OAuth2Credentials)
        assert credentials.tokens.expires_at is None  # nothing issued yet
    async with ImapClient(endpoint, credentials) as client:
        assert (await client.select("INBOX")).exists == 0
        session = await client.session()
        assert session.mechanism == mechanism.upper()
    if mechanism != "plain":
        assert provider.asked == [900]
        assert isinstance(credentials, OAuth2Credentials)
        expires = credentials.tokens.expires_at
        assert expires is not None
        assert math.isclose(expires, time.time() + 3600, abs_tol=60)
