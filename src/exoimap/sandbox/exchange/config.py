"""Behaviour switches of the sandbox Exchange Online IMAP service.

Defaults follow the protocol facts: [C] behaviour is on and fixed, [R]/[U] behaviour is a
switch here (see ``docs/sandbox.md``). :meth:`ExchangeSettings.for_tests` gives short
timeouts for test suites.
"""

from __future__ import annotations

import base64
import enum
import random
from dataclasses import dataclass, field, replace
from typing import Any

from exoimap.errors import ConfigError
from exoimap.sandbox.exchange import texts

__all__ = [
    "AuthOutcome",
    "CapabilityProfile",
    "ExchangeSettings",
    "FailureMapping",
    "ThrottlePolicy",
    "front_end_fqdn",
    "greeting_blob",
]

#: 1.10 [C]: Exchange Online's maximum message size (150 MB) enforced on APPEND.
MAX_MESSAGE_SIZE = 150 * 1024 * 1024

#: 3.8 [C]/[R]: ``aud`` values an Exchange Online resource token carries.
EXCHANGE_AUDIENCES: tuple[str, ...] = (
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "00000002-0000-0ff1-ce00-000000000000",
)


class CapabilityProfile(enum.Enum):
    """1.3: which CAPABILITY lists the server sends."""

    #: [C] the current form: no MOVE before authentication (the default).
    STANDARD = "standard"
    #: [R] some front ends list MOVE before authentication.
    PREAUTH_MOVE = "preauth-move"
    #: [R] basic auth disabled: ``AUTH=XOAUTH2 LOGINDISABLED``, no ``AUTH=PLAIN``.
    BASIC_AUTH_DISABLED = "basic-auth-disabled"

    def lists(self) -> tuple[str, str]:
        """(pre-authentication, post-authentication) capability texts."""
        if self is CapabilityProfile.PREAUTH_MOVE:
            return texts.CAPABILITY_PREAUTH_MOVE, texts.CAPABILITY_POSTAUTH
        if self is CapabilityProfile.BASIC_AUTH_DISABLED:
            return texts.CAPABILITY_PREAUTH_NO_BASIC, texts.CAPABILITY_POSTAUTH_NO_BASIC
        return texts.CAPABILITY_PREAUTH, texts.CAPABILITY_POSTAUTH


class AuthOutcome(enum.Enum):
    """How a refused principal is answered (1.5)."""

    #: ``NO AUTHENTICATE failed.``; the connection stays open.
    AUTHENTICATE_FAILED = "authenticate-failed"
    #: ``OK AUTHENTICATE completed.``, then ``BAD User is authenticated but not connected.``
    #: for every command (BYE after the third).
    NOT_CONNECTED = "not-connected"


@dataclass(frozen=True, slots=True)
class FailureMapping:
    """Which answer each *token-valid-but-not-allowed* cause gets.

    Bad signature, expiry, wrong audience and a missing permission always give
    ``AUTHENTICATE failed.`` ([C] 1.5); the causes below are [R]/[U] (3.7), so switchable.
    """

    #: App-only token, but no Exchange service principal (``New-ServicePrincipal``) [U].
    app_without_service_principal: AuthOutcome = AuthOutcome.AUTHENTICATE_FAILED
    #: App-only token, service principal registered, no FullAccess on ``user=`` [U].
    app_without_mailbox_access: AuthOutcome = AuthOutcome.NOT_CONNECTED
    #: Delegated token whose user is not ``user=`` and has no FullAccess on it [R].
    delegated_without_mailbox_access: AuthOutcome = AuthOutcome.NOT_CONNECTED
    #: ``user=`` names no mailbox in the tenant [U].
    unknown_mailbox: AuthOutcome = AuthOutcome.AUTHENTICATE_FAILED
    #: More concurrent connections to the mailbox than allowed [R] (1.10).
    too_many_connections: AuthOutcome = AuthOutcome.NOT_CONNECTED


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """1.10: throttle by messages or bytes served/stored per mailbox per time window.

    ``None`` limits are off. A throttled command is answered
    ``<status> Request is throttled. Suggested Backoff Time: <backoff_ms> milliseconds``.
    """

    window_seconds: float = 60.0
    max_messages: int | None = None
    max_bytes: int | None = None
    backoff_ms: int = 300_000
    #: "NO" or "BAD" (both were seen, S7).
    status: str = "NO"
    #: Follow the throttled answer with ``* BYE Connection closed. 14`` and close [C].
    bye: bool = False

    def __post_init__(self) -> None:
        if self.status not in ("NO", "BAD"):
            raise ConfigError("throttle status must be NO or BAD", key="throttle.status")
        if self.window_seconds <= 0:
            raise ConfigError("throttle window must be positive", key="throttle.window_seconds")

    @property
    def enabled(self) -> bool:
        return self.max_messages is not None or self.max_bytes is not None


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """Everything configurable about the sandbox IMAP service."""

    host: str = "127.0.0.1"
    #: 0 lets the OS choose (tests, parallel runs); real Exchange listens on 993.
    port: int = 0
    #: The name clients connect to (in the TLS certificate).
    server_name: str = "outlook.office365.com"
    #: Front-end FQDN shown (base64 UTF-16LE) in the greeting; generated when None.
    front_end: str | None = None
    capability_profile: CapabilityProfile = CapabilityProfile.STANDARD
    #: PLAIN / LOGIN with the user's sandbox password; off as on basic-auth-disabled tenants.
    allow_basic_auth: bool = False
    failures: FailureMapping = field(default_factory=FailureMapping)
    #: Failed AUTHENTICATE/LOGIN attempts before ``* BYE Connection is closed. 14`` [U].
    max_auth_failures: int = 3
    #: Consecutive bad/invalid commands before ``* BYE Connection closed. 14`` [C]: 3.
    max_bad_commands: int = 3
    #: Concurrent connections per mailbox [R]: 20.
    max_connections_per_mailbox: int = 20
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    #: Idle timeouts in seconds (1.9: on-prem 30 min / 1 min; EXO's are [U]).
    authenticated_timeout: float = 1800.0
    preauth_timeout: float = 60.0
    #: 1.5 [C]: after the token's ``exp`` the next command gets
    #: ``* BYE Session invalidated - AccessTokenExpired`` and the connection closes.
    end_session_on_token_expiry: bool = True
    #: Audiences accepted in access tokens (3.8); ``https://ps.outlook.com`` is [U].
    accepted_audiences: tuple[str, ...] = EXCHANGE_AUDIENCES
    #: Quirks (1.7): a space at the end of ``* STATUS`` lines [R].
    status_trailing_space: bool = False
    #: Quirk (1.7): MOVE/COPY send ``[COPYUID ...]`` as a bare line, not ``* OK [COPYUID]``.
    bare_copyuid: bool = False
    #: Quirk (1.7): RFC822.SIZE is an estimate that can differ from ``BODY[]``'s length.
    estimated_rfc822_size: bool = False
    #: Largest APPEND in bytes (1.10 [C] 150 MB).
    max_message_size: int = MAX_MESSAGE_SIZE
    #: Longest command line in bytes (on-prem MaxCommandSize 10240 [C]; EXO's is [U]).
    max_command_size: int = 10240
    #: First UIDVALIDITY handed out (small integers, 1.7 [C]).
    uidvalidity_start: int = 14
    #: ``\\Marked`` on folders holding unseen mail (1.6 [C]).
    mark_unseen_folders: bool = True
    #: Seed for the generated front-end name.
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_auth_failures", "max_bad_commands", "max_connections_per_mailbox"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1", key=name)
        if self.authenticated_timeout <= 0 or self.preauth_timeout <= 0:
            raise ConfigError("timeouts must be positive", key="authenticated_timeout")
        if self.max_command_size < 1024:
            raise ConfigError("max_command_size must be at least 1024", key="max_command_size")

    @classmethod
    def for_tests(cls, **overrides: Any) -> ExchangeSettings:
        """Short timeouts so a test suite can see them fire."""
        base = cls(authenticated_timeout=5.0, preauth_timeout=5.0)
        return replace(base, **overrides)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ExchangeSettings:
        """Build from a TOML/JSON table (enum values as their strings)."""
        values = dict(data)
        try:
            if "capability_profile" in values:
                values["capability_profile"] = CapabilityProfile(values["capability_profile"])
            if "throttle" in values:
                values["throttle"] = ThrottlePolicy(**values["throttle"])
            if "failures" in values:
                values["failures"] = FailureMapping(
                    **{k: AuthOutcome(v) for k, v in values["failures"].items()}
                )
            if "accepted_audiences" in values:
                values["accepted_audiences"] = tuple(values["accepted_audiences"])
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid Exchange sandbox settings: {exc}") from exc

    def capabilities(self, *, authenticated: bool) -> str:
        pre, post = self.capability_profile.lists()
        return post if authenticated else pre

    @property
    def basic_auth_advertised(self) -> bool:
        return self.capability_profile is not CapabilityProfile.BASIC_AUTH_DISABLED

    def greeting(self) -> str:
        """1.2 [C]: the banner plus `` [<base64 of the UTF-16LE front-end FQDN>]``."""
        fqdn = self.front_end or front_end_fqdn(self.seed)
        return f"{texts.GREETING} [{greeting_blob(fqdn)}]"


# (site prefix, region) pairs seen in real front-end names.
_SITES = (
    ("MWH", "namprd"),
    ("MW2", "namprd"),
    ("BN9", "namprd"),
    ("CH2", "namprd"),
    ("SI2", "apcprd"),
    ("AM6", "eurprd"),
    ("DB8", "eurprd"),
    ("LO4", "gbrprd"),
)


def front_end_fqdn(seed: int = 0) -> str:
    """A front-end name following the real pattern (1.2), such as
    ``MWHPR21CA0060.namprd21.prod.outlook.com``."""
    rng = random.Random(seed)  # noqa: S311 (a made-up host name, not a secret)
    site, region = rng.choice(_SITES)
    number = rng.randint(1, 22)
    return f"{site}PR{number:02d}CA{rng.randint(1, 299):04d}.{region}{number:02d}.prod.outlook.com"


def greeting_blob(fqdn: str) -> str:
    """1.2 [C]: base64 of the UTF-16LE FQDN."""
    return base64.b64encode(fqdn.encode("utf-16-le")).decode("ascii")
