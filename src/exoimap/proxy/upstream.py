"""The proxy's side towards Exchange: a signed-in session with XOAUTH2 from the vault.

:class:`Upstreams` keeps one token provider per account (refreshes happen in-process and
are shared by every client of that account) and opens verified-TLS sessions through the
network layer (:mod:`exoimap.net.session`), so the audit log records each upstream
connection and sign-in as it does for a sync. After Exchange said the token expired,
:meth:`Upstreams.open` is asked with ``fresh_token=True``: the cached access token is
dropped and a new one obtained before signing in again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exoimap.config import AccountConfig
from exoimap.errors import ConfigError
from exoimap.net.account import AccountProvider, ProviderTokens, connection_for
from exoimap.net.credentials import OAuth2Credentials
from exoimap.net.session import ImapSession, NetEvent
from exoimap.proxy.meter import ProxyMeter

__all__ = ["ProviderFactory", "Upstreams"]

log = logging.getLogger(__name__)

ProviderFactory = Callable[[AccountConfig], AccountProvider]


def _log_event(event: NetEvent) -> None:
    log.info("upstream %s %s:%s %s", event.kind, event.host, event.port, event.detail)


@dataclass
class Upstreams:
    """Opens upstream sessions for configured accounts."""

    accounts: dict[str, AccountConfig]
    make_provider: ProviderFactory
    #: Ask for tokens valid at least this long (a session outliving it is healed).
    min_validity: float = 600.0
    #: Move to a new session this long before the token expires (between commands).
    refresh_margin: float = 300.0
    #: Upstream sessions per mailbox at most (Exchange allows 20 [R]; a sync needs some).
    max_sessions: int = 16
    #: Hold a throttled command for the suggested backoff up to this long (a client's
    #: command timeout is typically a minute or more); a longer one is answered NO.
    max_throttle_wait: float = 30.0
    clock: Callable[[], float] = time.time
    #: What the proxy counts (nothing unless metrics are served); every part of it uses this.
    meter: ProxyMeter = field(default_factory=ProxyMeter)
    _providers: dict[str, AccountProvider] = field(default_factory=dict)
    _sessions: dict[str, int] = field(default_factory=dict)
    #: The sessions :meth:`open` made and :meth:`close` has not closed yet.
    _live: set[ImapSession] = field(default_factory=set)

    def claim(self, account: AccountConfig) -> bool:
        """Take one of the account's upstream sessions; False when all are in use."""
        used = self._sessions.get(account.name, 0)
        if used >= self.max_sessions:
            return False
        self._sessions[account.name] = used + 1
        return True

    def release(self, account: AccountConfig) -> None:
        self._sessions[account.name] = max(0, self._sessions.get(account.name, 0) - 1)

    def account_for(self, username: str) -> AccountConfig | None:
        """The account a client names by its configured name or its mailbox address."""
        if username in self.accounts:
            return self.accounts[username]
        wanted = username.casefold()
        return next((a for a in self.accounts.values() if a.email.casefold() == wanted), None)

    def provider(self, account: AccountConfig) -> AccountProvider:
        provider = self._providers.get(account.name)
        if provider is None:
            provider = self._providers[account.name] = self.make_provider(account)
        return provider

    async def open(self, account: AccountConfig, *, fresh_token: bool = False) -> ImapSession:
        """A new signed-in session to the account's mailbox."""
        provider = self.provider(account)
        if provider.uses_password:
            raise ConfigError(
                f"account {account.name!r} signs in with a password; the proxy serves "
                "accounts that sign in with OAuth2"
            )
        endpoint, credentials = connection_for(provider, ca_file=account.ca_file)
        assert isinstance(credentials, OAuth2Credentials)
        # A fresh token: any cached one counts as too short-lived, so a new one is issued.
        tokens = ProviderTokens(provider, math.inf if fresh_token else self.min_validity)
        session = await ImapSession.open(endpoint, _log_event, account=account.name)
        try:
            await session.authenticate(
                OAuth2Credentials(credentials.user, tokens, credentials.mechanism)
            )
        except BaseException:
            await session.close()
            raise
        self._live.add(session)
        self.meter.upstream_opened("imap")
        return session

    async def close(self, session: ImapSession, *, logout: bool = False) -> None:
        """Close (after a polite LOGOUT when asked) a session :meth:`open` made; closing
        one twice is harmless."""
        if session in self._live:
            self._live.discard(session)
            self.meter.upstream_closed("imap")
        if logout:
            await session.logout()
        else:
            await session.close()
