"""Behaviour switches of the sandbox Exchange Online IMAP service.

Defaults follow the protocol facts: [C] behaviour is on and fixed, [R]/[U] behaviour is a
switch here (see ``docs/sandbox.md``). :meth:`ExchangeSettings.for_tests` gives short
timeouts for test suites.
"""

from __future__ import annotations

import base64
import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from exoimap.errors import ConfigError
from exoimap.sandbox.exchange import texts
from exoimap.store.base import normalize_flags

__all__ = [
    "AuthOutcome",
    "CapabilityProfile",
    "ExchangeSettings",
    "FailureMapping",
    "NON_MAIL_FOLDERS",
    "ThrottlePolicy",
    "check_receive_size",
    "front_end_fqdn",
    "greeting_blob",
]

#: 1.10 [C]: Exchange Online's maximum message size (150 MB): no mailbox's receive limit
#: can be raised above it.
MAX_MESSAGE_SIZE = 150 * 1024 * 1024
#: 1.10 [U]: a mailbox's default maximum receive size, enforced on APPEND (the spec gives
#: "about 35 MB send / 36 MB receive", not re-verified; issue 16 quotes 35 MB).
DEFAULT_MAX_RECEIVE_SIZE = 35 * 1024 * 1024
#: 1.6: the folders of a business mailbox that hold no mail (calendar items, contacts...).
NON_MAIL_FOLDERS: tuple[str, ...] = ("Calendar", "Contacts", "Tasks", "Notes", "Journal")

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
    #: Commands one application (app-only sign-in) may send in ``window_seconds`` across
    #: every connection and mailbox [U]: Exchange throttles an app tenant-wide.
    max_app_requests: int | None = None

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
    #: SMTP submission with STARTTLS (real Exchange: smtp.office365.com:587); 0: any free port.
    smtp_port: int = 0
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
    #: Every mailbox's maximum receive size in bytes: a larger APPEND is refused with
    #: ``NO Maximum size of appendable message has been exceeded`` (1.10: 35 MB [U],
    #: at most 150 MB [C]).
    max_receive_size: int = DEFAULT_MAX_RECEIVE_SIZE
    #: Per-mailbox limits (UPN -> bytes), as ``Set-Mailbox -MaxReceiveSize`` sets them.
    max_receive_size_by_mailbox: Mapping[str, int] = field(default_factory=dict)
    #: [U] the spec does not say when Exchange refuses an oversize APPEND: True answers NO
    #: instead of the ``+`` of a synchronising literal (the client never sends it); False
    #: sends ``+``, reads the message and then answers NO. A non-synchronising literal
    #: (LITERAL+) is read and discarded either way.
    refuse_oversize_before_literal: bool = True
    #: Flags an APPEND ignores ([R] imapsync FAQ.Office365, issue 16: Office 365 drops
    #: ``\\Flagged`` given in APPEND; a later STORE sets it). Empty: plain IMAP.
    append_drops_flags: frozenset[str] = frozenset({"\\Flagged"})
    #: Folders that refuse APPEND with ``NO APPEND failed.`` [U]: the spec does not say
    #: what Exchange answers for its non-mail folders (:data:`NON_MAIL_FOLDERS`), so by
    #: default they take mail like any folder.
    refuse_append_to: tuple[str, ...] = ()
    #: Longest command line in bytes (on-prem MaxCommandSize 10240 [C]; EXO's is [U]).
    max_command_size: int = 10240
    #: First UIDVALIDITY handed out (small integers, 1.7 [C]).
    uidvalidity_start: int = 14
    #: ``\\Marked`` on folders holding unseen mail (1.6 [C]).
    mark_unseen_folders: bool = True
    #: Seed for the generated front-end name.
    seed: int = 0
    #: IDLE in CAPABILITY (Exchange Online offers it [C]); False: not listed, and an IDLE
    #: is answered like any unknown command (a server without IDLE).
    idle_advertised: bool = True
    #: Answer IDLE with ``NO IDLE failed.``, as a front end with IDLE switched off might
    #: [U]: the spec records no such answer from Exchange Online.
    refuse_idle: bool = False

    def __post_init__(self) -> None:
        for name in ("max_auth_failures", "max_bad_commands", "max_connections_per_mailbox"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1", key=name)
        if self.authenticated_timeout <= 0 or self.preauth_timeout <= 0:
            raise ConfigError("timeouts must be positive", key="authenticated_timeout")
        if self.max_command_size < 1024:
            raise ConfigError("max_command_size must be at least 1024", key="max_command_size")
        check_receive_size(self.max_receive_size, "max_receive_size")
        for upn, size in self.max_receive_size_by_mailbox.items():
            check_receive_size(size, f"max_receive_size_by_mailbox.{upn}")
        # compared with the flags of an APPEND as the store spells them
        object.__setattr__(self, "append_drops_flags", normalize_flags(self.append_drops_flags))
        mailboxes = {upn.lower(): size for upn, size in self.max_receive_size_by_mailbox.items()}
        object.__setattr__(self, "max_receive_size_by_mailbox", mailboxes)

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
            for key in ("accepted_audiences", "refuse_append_to"):
                if key in values:
                    values[key] = _names(values[key], key)
            if "append_drops_flags" in values:
                values["append_drops_flags"] = frozenset(
                    _names(values["append_drops_flags"], "append_drops_flags")
                )
            if not isinstance(values.get("max_receive_size_by_mailbox", {}), Mapping):
                raise TypeError("max_receive_size_by_mailbox must be a table of UPN = bytes")
            return cls(**values)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"invalid Exchange sandbox settings: {exc}") from exc

    def receive_size(self, upn: str) -> int:
        """The maximum receive size of the mailbox ``upn``."""
        return self.max_receive_size_by_mailbox.get(upn.lower(), self.max_receive_size)

    def capabilities(self, *, authenticated: bool) -> str:
        pre, post = self.capability_profile.lists()
        listed = post if authenticated else pre
        if not self.idle_advertised:
            listed = " ".join(word for word in listed.split(" ") if word != "IDLE")
        return listed

    @property
    def basic_auth_advertised(self) -> bool:
        return self.capability_profile is not CapabilityProfile.BASIC_AUTH_DISABLED

    def greeting(self) -> str:
        """1.2 [C]: the banner plus `` [<base64 of the UTF-16LE front-end FQDN>]``."""
        fqdn = self.front_end or front_end_fqdn(self.seed)
        return f"{texts.GREETING} [{greeting_blob(fqdn)}]"


def _names(value: object, key: str) -> tuple[str, ...]:
    """A list of strings from a TOML/JSON table (a lone string would become its letters)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key} must be a list of strings")
    return tuple(value)


def check_receive_size(size: object, key: str) -> None:
    """A mailbox's maximum receive size is a whole number of bytes up to 150 MB (1.10 [C])."""
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_MESSAGE_SIZE:
        raise ConfigError(
            f"{key} must be a number of bytes from 1 to {MAX_MESSAGE_SIZE} (150 MB)", key=key
        )


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
