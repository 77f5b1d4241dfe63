"""From a configured account's token provider to what the IMAP client needs.

The sign-in layer's ``TokenProvider`` (one per ``[accounts.NAME]``) knows the server, the
user name, the mechanism, and hands out tokens (or the stored password). This module reads
it through a small structural protocol, so ``net`` does not import ``auth``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

from exoimap.net.credentials import (
    CheckedToken,
    Credentials,
    OAuth2Credentials,
    PasswordCredentials,
)
from exoimap.net.session import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.secrets import Secret

__all__ = ["AccountProvider", "ProviderTokens", "connection_for"]


class AccountProvider(Protocol):
    """What :func:`connection_for` reads from ``exoimap.auth.provider.TokenProvider``."""

    @property
    def imap_host(self) -> str: ...
    @property
    def imap_port(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def mechanism(self) -> str: ...
    @property
    def starttls(self) -> bool: ...
    @property
    def uses_password(self) -> bool: ...

    def password(self) -> Secret[str]: ...

    async def access_token_async(self, min_validity: float = 300.0) -> Secret[str]: ...

    def expires_at(self) -> float: ...

    def checked_token(self) -> CheckedToken | None: ...


class ProviderTokens:
    """Adapts a provider to :class:`~exoimap.net.credentials.TokenSource`: asks for tokens
    valid at least ``min_validity`` seconds, and reports an unknown expiry as None."""

    def __init__(self, provider: AccountProvider, min_validity: float = 600.0) -> None:
        self._provider = provider
        self._min_validity = min_validity

    @property
    def expires_at(self) -> float | None:
        value = self._provider.expires_at()
        return value if value > 0 and math.isfinite(value) else None

    async def access_token(self) -> Secret[str]:
        return await self._provider.access_token_async(self._min_validity)

    def checked_token(self) -> CheckedToken | None:
        return self._provider.checked_token()


def connection_for(
    provider: AccountProvider, *, ca_file: Path | None = None, min_validity: float = 600.0
) -> tuple[Endpoint, Credentials]:
    """The endpoint and credentials for the provider's account. ``ca_file`` defaults to
    the account's configured one (``provider.account.ca_file``) when there is one."""
    if ca_file is None:
        configured = getattr(getattr(provider, "account", None), "ca_file", None)
        ca_file = configured if isinstance(configured, Path) else None
    endpoint = Endpoint(
        provider.imap_host,
        provider.imap_port,
        TLSPolicy(ca_file=ca_file, starttls=provider.starttls),
    )
    mechanism = provider.mechanism.upper()
    credentials: Credentials
    if provider.uses_password:
        credentials = PasswordCredentials(provider.username, provider.password(), mechanism)
    else:
        tokens = ProviderTokens(provider, min_validity)
        credentials = OAuth2Credentials(provider.username, tokens, mechanism)
    return endpoint, credentials
