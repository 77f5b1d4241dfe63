"""Reads an access token's claims and checks them against the least-privilege policy.

Exchange Online access tokens carry a ``nonce`` in their header, which makes their signature
impossible for anyone but Exchange to verify; so the claims are *read*, never trusted for
security decisions. They tell the user early and clearly what Exchange would otherwise
answer with a bare ``AUTHENTICATE failed``: wrong audience, missing IMAP permission, expired.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exoimap.errors import InsufficientPermission
from exoimap.secrets import Secret

__all__ = [
    "BROAD_PERMISSIONS",
    "IMAP_APP_ROLE",
    "IMAP_DELEGATED_SCOPE",
    "TokenClaims",
    "check_token",
    "read_claims",
]

IMAP_DELEGATED_SCOPE = "IMAP.AccessAsUser.All"
IMAP_APP_ROLE = "IMAP.AccessAsApp"

#: Permissions far beyond reading a mailbox over IMAP: a token carrying one of them can do
#: much more harm if it leaks, so we warn (the app registration should drop them).
BROAD_PERMISSIONS: frozenset[str] = frozenset(
    {
        "full_access_as_app",
        "full_access_as_user",
        "EWS.AccessAsUser.All",
        "EWS.full_access_as_app",
        "Exchange.ManageAsApp",
        "Exchange.Manage",
        "Mail.ReadWrite",
        "Mail.ReadWrite.All",
        "Mail.ReadWrite.Shared",
        "Mail.Send",
        "Mail.Send.All",
        "Mail.Send.Shared",
        "MailboxSettings.ReadWrite",
        "Directory.ReadWrite.All",
        "user_impersonation",
    }
)


@dataclass(frozen=True)
class TokenClaims:
    """The claims of an access token that matter to us (no signature check)."""

    audience: str | None
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    expires_at: float | None = None
    issued_at: float | None = None
    user: str | None = None
    app_id: str | None = None
    tenant_id: str | None = None
    object_id: str | None = None
    app_only: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def permissions(self) -> tuple[str, ...]:
        return self.scopes + self.roles

    def seconds_left(self, now: float | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)


def _b64url_json(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        raise ValueError("not base64url JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def read_claims(token: Secret[str]) -> TokenClaims | None:
    """The claims of a JWT access token, or None when the token is opaque (not a JWT).

    Consumer (outlook.com) tokens and tokens from other servers may be opaque; that is not
    an error, there is just nothing to check.
    """
    parts = token.reveal().split(".")
    if len(parts) != 3:
        return None
    try:
        _b64url_json(parts[0])
        payload = _b64url_json(parts[1])
    except ValueError:
        return None
    scp = payload.get("scp")
    scopes = tuple(scp.split()) if isinstance(scp, str) else ()
    roles_value = payload.get("roles")
    roles = (
        tuple(r for r in roles_value if isinstance(r, str)) if isinstance(roles_value, list) else ()
    )
    user = None
    for key in ("upn", "preferred_username", "unique_name", "email"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            user = value
            break
    aud = payload.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if aud and isinstance(aud[0], str) else None
    app_id = payload.get("appid", payload.get("azp"))
    idtyp = payload.get("idtyp")
    return TokenClaims(
        audience=aud if isinstance(aud, str) else None,
        scopes=scopes,
        roles=roles,
        expires_at=_number(payload.get("exp")),
        issued_at=_number(payload.get("iat")),
        user=user,
        app_id=app_id if isinstance(app_id, str) else None,
        tenant_id=payload.get("tid") if isinstance(payload.get("tid"), str) else None,
        object_id=payload.get("oid") if isinstance(payload.get("oid"), str) else None,
        app_only=idtyp == "app" or (not scopes and bool(roles)),
        raw=payload,
    )


def _audience_matches(audience: str, accepted: Iterable[str]) -> bool:
    norm = audience.rstrip("/").lower()
    return any(norm == a.rstrip("/").lower() for a in accepted)


def check_token(
    claims: TokenClaims,
    *,
    app_only: bool,
    accepted_audiences: Iterable[str],
    granted_scope: str | None = None,
    now: float | None = None,
) -> list[str]:
    """Check a freshly issued token against the least-privilege policy.

    Raises :class:`InsufficientPermission` when the token cannot work for IMAP (wrong
    audience, no IMAP permission, already expired). Returns warnings (broad extra
    permissions) for the caller to log. ``granted_scope`` is the ``scope`` field of the
    token response, which shows a ``.default`` request.
    """
    accepted = tuple(accepted_audiences)
    if claims.audience is None or not _audience_matches(claims.audience, accepted):
        hint = ""
        if claims.audience and "graph" in claims.audience.lower():
            hint = (
                " The scope resolved to Microsoft Graph: IMAP needs the Exchange resource "
                "(a bare 'IMAP.AccessAsUser.All' scope means Graph)."
            )
        raise InsufficientPermission(
            f"the token was issued for {claims.audience or 'an unknown audience'!r}, not for "
            f"Exchange Online IMAP ({', '.join(sorted(accepted))}).{hint}",
            fix="Check the account's cloud setting and the API the app registration asks for.",
        )
    needed = IMAP_APP_ROLE if app_only else IMAP_DELEGATED_SCOPE
    have = claims.roles if app_only else claims.scopes
    if needed not in have:
        kind = "application permission (role)" if app_only else "delegated permission (scope)"
        shown = ", ".join(claims.permissions) or "none"
        raise InsufficientPermission(
            f"the token lacks the IMAP {kind} {needed!r} (it carries: {shown}).",
            fix=(
                f"In Entra ID, add '{needed}' from 'Office 365 Exchange Online' to the app "
                "registration and grant admin consent; see docs/setup-microsoft-365.md."
            ),
        )
    left = claims.seconds_left(now)
    if left is not None and left <= 0:
        raise InsufficientPermission(
            "the identity platform issued a token that has already expired; "
            "check this computer's clock.",
        )
    warnings: list[str] = []
    broad = sorted(p for p in claims.permissions if p in BROAD_PERMISSIONS)
    if broad:
        warnings.append(
            "the token carries broad permissions beyond IMAP: "
            + ", ".join(broad)
            + ". Remove them from the app registration: exoimap needs only "
            + needed
            + "."
        )
    if (
        not app_only
        and granted_scope
        and any(s.endswith("/.default") or s == ".default" for s in granted_scope.split())
    ):
        warnings.append(
            "the token was granted through '.default' in a delegated flow, which includes every "
            "consented permission; exoimap asks only for " + IMAP_DELEGATED_SCOPE + "."
        )
    return warnings
