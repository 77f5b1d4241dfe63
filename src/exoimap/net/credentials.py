"""What the IMAP client signs in with: OAuth2 tokens (XOAUTH2, OAUTHBEARER) or passwords.

A :class:`TokenSource` is anything with an async ``access_token()`` returning
``Secret[str]`` and an ``expires_at`` (epoch seconds or an aware datetime, None when
unknown); the sign-in layer's token providers fit it. The SASL messages are built here and
are built by :mod:`exoimap.protocol.sasl` and stay inside :class:`~exoimap.secrets.Secret`
until the protocol layer writes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from exoimap.errors import ConfigError
from exoimap.secrets import Secret

__all__ = [
    "CheckedToken",
    "CheckedTokenSource",
    "Credentials",
    "OAuth2Credentials",
    "PasswordCredentials",
    "StaticToken",
    "TokenSource",
    "expiry_seconds",
]


@runtime_checkable
class TokenSource(Protocol):
    """Gives a fresh access token for one mailbox."""

    @property
    def expires_at(self) -> float | dt.datetime | None:
        """When the token last returned expires (None if unknown or none yet)."""
        ...

    async def access_token(self) -> Secret[str]:
        """A token valid for a while (refreshed by the provider when needed)."""
        ...


def expiry_seconds(source: TokenSource) -> float | None:
    """``source.expires_at`` as epoch seconds."""
    value = source.expires_at
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigError("a token expiry must be a timezone-aware datetime")
        return value.timestamp()
    return float(value)


class CheckedToken(Protocol):
    """What the sign-in layer verified about a token it handed out: it is for Exchange Online
    and carries the IMAP permission (``IMAP.AccessAsApp`` when ``app_only``). ``app_id`` and
    ``object_id`` name the app and the principal (an app-only token's service principal)."""

    @property
    def app_only(self) -> bool: ...
    @property
    def app_id(self) -> str | None: ...
    @property
    def object_id(self) -> str | None: ...


@runtime_checkable
class CheckedTokenSource(TokenSource, Protocol):
    """A token source that can say what was verified about its last token, so a refused
    sign-in is not blamed on what was ruled out (audience, permission)."""

    def checked_token(self) -> CheckedToken | None:
        """The last token's verified facts; None when nothing was checked."""
        ...


@dataclass
class StaticToken:
    """A fixed token (tests, or a token handed over by the caller)."""

    token: Secret[str]
    expires_at: float | dt.datetime | None = None

    async def access_token(self) -> Secret[str]:
        return self.token


@dataclass(frozen=True)
class OAuth2Credentials:
    """Sign in as ``user`` (the mailbox address, ``user=``) with tokens from ``tokens``.

    ``mechanism`` is ``XOAUTH2`` (what Exchange Online offers) or ``OAUTHBEARER``.
    """

    user: str
    tokens: TokenSource
    mechanism: str = "XOAUTH2"

    def __post_init__(self) -> None:
        if self.mechanism.upper() not in ("XOAUTH2", "OAUTHBEARER"):
            raise ConfigError(f"unknown OAuth2 SASL mechanism {self.mechanism!r}")
        object.__setattr__(self, "mechanism", self.mechanism.upper())


@dataclass(frozen=True)
class PasswordCredentials:
    """Sign in with a password (``PLAIN`` or ``LOGIN``): for non-Microsoft servers only."""

    user: str
    password: Secret[str]
    mechanism: str = "PLAIN"

    def __post_init__(self) -> None:
        if self.mechanism.upper() not in ("PLAIN", "LOGIN"):
            raise ConfigError(f"unknown password mechanism {self.mechanism!r}")
        object.__setattr__(self, "mechanism", self.mechanism.upper())


Credentials = OAuth2Credentials | PasswordCredentials
