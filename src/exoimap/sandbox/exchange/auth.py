"""Who may open which mailbox: XOAUTH2 (and optional PLAIN/LOGIN) checks against the
identity half's keys and directory, following the protocol facts 1.5 and 3.7."""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Protocol

from exoimap.sandbox.exchange.config import AuthOutcome, ExchangeSettings
from exoimap.sandbox.identity import AccessTokenVerifier, Directory, InvalidAccessToken
from exoimap.secrets import Secret

__all__ = [
    "IMAP_PERMISSIONS",
    "SMTP_PERMISSIONS",
    "AuthDecision",
    "Authorizer",
    "Cause",
    "IdentityView",
    "Permissions",
    "parse_xoauth2",
]


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a token must carry for one protocol: a delegated scope (``scp``) or an
    application role (``roles``) of Office 365 Exchange Online (spec 3.x [C])."""

    delegated: str
    application: str


IMAP_PERMISSIONS = Permissions("IMAP.AccessAsUser.All", "IMAP.AccessAsApp")
SMTP_PERMISSIONS = Permissions("SMTP.Send", "SMTP.SendAsApp")


class Cause(enum.Enum):
    """Why a sign-in was refused or only half accepted (for logs and tests; no secrets)."""

    OK = "ok"
    MALFORMED = "malformed XOAUTH2 response"
    BAD_TOKEN = "bad signature or not a sandbox token"  # noqa: S105 (a reason)
    EXPIRED = "token expired"
    WRONG_AUDIENCE = "audience is not Exchange Online"
    MISSING_PERMISSION = "token lacks the protocol's permission (e.g. IMAP.AccessAsUser.All)"
    NO_SERVICE_PRINCIPAL = "app has no Exchange service principal"
    WRONG_OBJECT_ID = "service principal registered with another object id"
    NO_MAILBOX_ACCESS = "principal has no FullAccess on the mailbox"
    UNKNOWN_MAILBOX = "no such mailbox"
    BASIC_AUTH_DISABLED = "basic authentication is disabled"
    BAD_PASSWORD = "wrong user name or password"  # noqa: S105 (a reason)


class IdentityView(Protocol):
    """What the IMAP half needs from the identity half (an ``IdentitySandbox``)."""

    @property
    def directory(self) -> Directory: ...

    @property
    def verifier(self) -> AccessTokenVerifier: ...

    def now(self) -> float: ...


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """``accepted``: answer OK; then ``connected`` says whether the mailbox opens.
    ``mailbox`` is the mailbox UPN (lower case) and ``expires_at`` the token's ``exp``."""

    accepted: bool
    connected: bool
    cause: Cause
    mailbox: str | None = None
    expires_at: float | None = None
    #: The application id of an app-only sign-in (Exchange throttles per application).
    app: str | None = None

    @classmethod
    def refused(cls, cause: Cause) -> AuthDecision:
        return cls(False, False, cause)


def parse_xoauth2(raw: bytes) -> tuple[str, Secret[str]] | None:
    """``user=<mailbox>\\x01auth=Bearer <token>\\x01\\x01`` -> (mailbox, token)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\x01\x01"):
        return None
    user: str | None = None
    token: str | None = None
    for field in text[:-2].split("\x01"):
        key, sep, value = field.partition("=")
        if not sep:
            return None
        if key == "user":
            user = value
        elif key == "auth":
            scheme, _, credential = value.partition(" ")
            if scheme.lower() != "bearer" or not credential:
                return None
            token = credential.strip()
    if not user or not token:
        return None
    return user, Secret(token)


class Authorizer:
    """Decides sign-ins; the [U] cases follow ``settings.failures``."""

    def __init__(self, identity: IdentityView, settings: ExchangeSettings) -> None:
        self._identity = identity
        self._settings = settings

    def _outcome(self, outcome: AuthOutcome, cause: Cause, mailbox: str | None) -> AuthDecision:
        if outcome is AuthOutcome.NOT_CONNECTED:
            return AuthDecision(True, False, cause, mailbox)
        return AuthDecision.refused(cause)

    def xoauth2(self, raw: bytes, needs: Permissions = IMAP_PERMISSIONS) -> AuthDecision:
        parsed = parse_xoauth2(raw)
        if parsed is None:
            return AuthDecision.refused(Cause.MALFORMED)
        user, token = parsed
        return self.bearer(user, token, needs)

    def bearer(
        self, user: str, token: Secret[str], needs: Permissions = IMAP_PERMISSIONS
    ) -> AuthDecision:
        """Check a token for ``needs`` (IMAP's permissions, or SMTP's for submission)."""
        identity = self._identity
        failures = self._settings.failures
        try:
            claims = identity.verifier.verify(token, now=identity.now())
        except InvalidAccessToken as exc:
            cause = Cause.EXPIRED if exc.reason == "expired" else Cause.BAD_TOKEN
            return AuthDecision.refused(cause)
        if claims.audience not in self._settings.accepted_audiences:
            return AuthDecision.refused(Cause.WRONG_AUDIENCE)
        directory = identity.directory
        mailbox = user.strip().lower()
        owner = directory.find_user(mailbox)
        if claims.app_only:
            if needs.application not in claims.roles:
                return AuthDecision.refused(Cause.MISSING_PERMISSION)
            principal = directory.exchange_principal(claims.app_id, claims.tenant_id)
            if principal is None:
                return self._outcome(
                    failures.app_without_service_principal, Cause.NO_SERVICE_PRINCIPAL, mailbox
                )
            if principal.object_id != claims.object_id:
                # 3.7 [C]: "Using the incorrect Object ID will cause an authentication failure"
                return AuthDecision.refused(Cause.WRONG_OBJECT_ID)
            if owner is None:
                return self._outcome(failures.unknown_mailbox, Cause.UNKNOWN_MAILBOX, mailbox)
            if not directory.has_full_access(principal.object_id, mailbox, claims.tenant_id):
                return self._outcome(
                    failures.app_without_mailbox_access, Cause.NO_MAILBOX_ACCESS, mailbox
                )
        else:
            if needs.delegated not in claims.scopes:
                return AuthDecision.refused(Cause.MISSING_PERMISSION)
            if owner is None:
                return self._outcome(failures.unknown_mailbox, Cause.UNKNOWN_MAILBOX, mailbox)
            if not directory.has_full_access(claims.object_id, mailbox, claims.tenant_id):
                return self._outcome(
                    failures.delegated_without_mailbox_access, Cause.NO_MAILBOX_ACCESS, mailbox
                )
        app = claims.app_id if claims.app_only else None
        return AuthDecision(True, True, Cause.OK, owner.upn.lower(), claims.expires_at, app)

    def password(self, user: str, password: Secret[str]) -> AuthDecision:
        """PLAIN / LOGIN against the sandbox user's password (only when enabled)."""
        if not self._settings.allow_basic_auth:
            return AuthDecision.refused(Cause.BASIC_AUTH_DISABLED)
        owner = self._identity.directory.find_user(user.strip())
        if owner is None or not hmac.compare_digest(
            owner.password.encode(), password.reveal().encode()
        ):
            return AuthDecision.refused(Cause.BAD_PASSWORD)
        return AuthDecision(True, True, Cause.OK, owner.upn.lower(), None)

    def plain(self, raw: bytes) -> AuthDecision:
        """SASL PLAIN: ``authzid \\0 authcid \\0 password``."""
        parts = raw.split(b"\x00")
        if len(parts) != 3:
            return AuthDecision.refused(Cause.MALFORMED)
        try:
            authzid, authcid, secret = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            return AuthDecision.refused(Cause.MALFORMED)
        if authzid and authzid.lower() != authcid.lower():
            return AuthDecision.refused(Cause.BAD_PASSWORD)
        return self.password(authcid, Secret(secret))
