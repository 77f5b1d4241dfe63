"""AADSTS error codes -> our error classes, each with the sentence that tells the user the fix.

The identity platform answers errors with a JSON body (``error``, ``error_description``
starting ``AADSTS<code>: ``, ``error_codes``, ``suberror``). :func:`error_from_response` turns
such a body (as MSAL returns it) into the most specific :class:`~exoimap.errors.AuthError`,
worded for the person at the terminal, with the fix filled in for this account (the
admin-consent URL for this app and tenant, the ``exoimap`` command to run, the setting to
check).

The module also holds, as data, the likely causes of Exchange's single generic IMAP failure
``NO AUTHENTICATE failed.`` so that the IMAP layer and the CLI explain it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from exoimap.clouds import Cloud
from exoimap.errors import (
    AppMisconfigured,
    AuthError,
    ConsentRequired,
    InsufficientPermission,
    InteractionRequired,
    InvalidClientCredentials,
    TenantOrAppNotFound,
    TokenExpiredOrRevoked,
    TransientAuthError,
)
from exoimap.logs import redact

__all__ = [
    "AADSTS",
    "IMAP_AUTH_FAILURE_CAUSES_APP_ONLY",
    "IMAP_AUTH_FAILURE_CAUSES_DELEGATED",
    "IMAP_NOT_CONNECTED_CAUSES",
    "ErrorContext",
    "Known",
    "error_code",
    "error_from_response",
    "imap_failure_causes",
]


@dataclass(frozen=True)
class ErrorContext:
    """What the fix sentences need to name: the account and its app registration."""

    account: str
    client_id: str | None = None
    tenant: str | None = None
    cloud: Cloud | None = None

    @property
    def login(self) -> str:
        return f"exoimap login {self.account}"

    @property
    def set_secret(self) -> str:
        return f"exoimap account set-secret {self.account}"

    def consent_url(self) -> str:
        if self.cloud is None or not self.client_id:
            return "the app registration's 'API permissions' page ('Grant admin consent')"
        return self.cloud.admin_consent_url(self.tenant, self.client_id)


@dataclass(frozen=True)
class Known:
    """One AADSTS code: what it means, the class we raise, and how to fix it."""

    error_class: type[AuthError]
    meaning: str
    #: A template; ``{login}``, ``{set_secret}``, ``{consent_url}``, ``{client_id}``,
    #: ``{tenant}`` and ``{account}`` are filled in from the :class:`ErrorContext`.
    fix: str


_RELOGIN = "Sign in interactively again: `{login}`."
_REPLACE_CREDENTIAL_ADVICE = (
    "In Entra ID > App registrations > your app > Certificates & secrets, create a new client "
    "secret, then store its Value (not its Secret ID) with `{set_secret}`."
)

#: Every code we know, from the spec's tables (token endpoint, refresh, app-only).
AADSTS: dict[int, Known] = {
    50126: Known(InteractionRequired, "the user name or password is wrong", _RELOGIN),
    50034: Known(
        TenantOrAppNotFound,
        "the user account does not exist in this tenant",
        "Check the account's `email` and `tenant` (tenant {tenant}).",
    ),
    50076: Known(
        InteractionRequired,
        "multi-factor authentication is required (Conditional Access or per-user MFA)",
        _RELOGIN,
    ),
    50079: Known(
        InteractionRequired,
        "the user must register for multi-factor authentication",
        "Sign in interactively and complete the MFA registration: `{login}`.",
    ),
    53003: Known(
        InteractionRequired,
        "access was blocked by a Conditional Access policy",
        "Sign in interactively again from a device and location the policy allows "
        "(`{login}`), or ask your administrator which policy applies.",
    ),
    70043: Known(
        TokenExpiredOrRevoked,
        "the sign-in frequency policy requires a fresh sign-in",
        _RELOGIN,
    ),
    50173: Known(
        TokenExpiredOrRevoked,
        "the refresh token was revoked (password change or revoked sessions)",
        _RELOGIN,
    ),
    70008: Known(TokenExpiredOrRevoked, "the refresh token expired or was revoked", _RELOGIN),
    700082: Known(
        TokenExpiredOrRevoked,
        "the refresh token expired after 90 days without use",
        _RELOGIN,
    ),
    700084: Known(
        TokenExpiredOrRevoked,
        "the refresh token expired (24 hours for single-page-app registrations)",
        "Register the app as 'Mobile and desktop applications' (not SPA), then `{login}`.",
    ),
    65001: Known(
        ConsentRequired,
        "the app has no consent for the IMAP permission in this tenant",
        "A tenant administrator must grant consent: open {consent_url} and accept, "
        "then run `{login}`.",
    ),
    70011: Known(
        InsufficientPermission,
        "the requested scope is not valid for this app",
        "Check the account's `cloud`: the scope must name the Exchange Online resource of "
        "that cloud.",
    ),
    70016: Known(
        InteractionRequired,
        "the device sign-in was not completed",
        "Finish the sign-in in the browser, or start again: `{login}`.",
    ),
    70018: Known(
        InteractionRequired,
        "the device code was not recognised",
        "Start the sign-in again: `{login}`.",
    ),
    70019: Known(
        InteractionRequired,
        "the device code expired before the sign-in was completed",
        "Start again and finish within 15 minutes: `{login}`.",
    ),
    70020: Known(
        InteractionRequired,
        "the device code expired before the sign-in was completed",
        "Start again and finish within 15 minutes: `{login}`.",
    ),
    90002: Known(
        TenantOrAppNotFound,
        "the tenant does not exist",
        "Check the account's `tenant` (now {tenant}): use the tenant id (a GUID) or a "
        "verified domain, and the right `cloud`.",
    ),
    500011: Known(
        TenantOrAppNotFound,
        "Exchange Online (the resource) is not present in this tenant",
        "Check the account's `cloud` (GCC High, DoD and China have their own) and that "
        "the tenant has Exchange Online.",
    ),
    700016: Known(
        TenantOrAppNotFound,
        "the application was not found in the directory",
        "Check the account's `client_id` (now {client_id}) and `tenant` (now {tenant}): "
        "use the Application (client) ID of an app registered in that tenant, or make the "
        "app multi-tenant.",
    ),
    7000215: Known(
        InvalidClientCredentials, "the client secret is wrong", _REPLACE_CREDENTIAL_ADVICE
    ),
    7000222: Known(
        InvalidClientCredentials, "the client secret has expired", _REPLACE_CREDENTIAL_ADVICE
    ),
    7000218: Known(
        InvalidClientCredentials,
        "the request carried no client secret or certificate",
        "For the device or browser flow, turn on 'Allow public client flows' in the app "
        "registration's Authentication page; for app-only, store the secret with "
        "`{set_secret}`.",
    ),
    700027: Known(
        InvalidClientCredentials,
        "the client certificate's signature was not accepted",
        "Upload the certificate's public part (.cer/.pem) to the app registration's "
        "'Certificates & secrets', and check the account's `certificate` file.",
    ),
    50012: Known(
        InvalidClientCredentials,
        "the client assertion (certificate sign-in) is not valid",
        "Check the account's `certificate` file and that it is uploaded to the app "
        "registration and not expired.",
    ),
    700030: Known(
        InvalidClientCredentials,
        "the certificate's subject name is not authorised for this app",
        "Upload this certificate to the app registration, or use the one already there.",
    ),
    700025: Known(
        AppMisconfigured,
        "the app is a public client, so it may not present a client secret or certificate",
        'Use `flow = "device"` or `"browser"`, or turn off \'Allow public client flows\' '
        "for an app-only registration.",
    ),
    501481: Known(
        InteractionRequired,
        "the PKCE code verifier did not match",
        "Start the sign-in again: `{login}`.",
    ),
    54005: Known(
        InteractionRequired,
        "the authorization code was already used",
        "Start the sign-in again: `{login}`.",
    ),
    50011: Known(
        AppMisconfigured,
        "the redirect URI is not registered for this app",
        "In the app registration's Authentication page, add the platform 'Mobile and desktop "
        "applications' with the redirect URI http://localhost (Entra accepts it on any port).",
    ),
    9001023: Known(
        AppMisconfigured,
        "app-only sign-in cannot use /common or /organizations",
        "Set the account's `tenant` to your tenant id (a GUID) or verified domain.",
    ),
}

# OAuth `error` values without a code we know, and what they become.
_BY_ERROR: dict[str, Known] = {
    "invalid_grant": AADSTS[70008],
    "invalid_client": Known(
        InvalidClientCredentials, "the client credentials were refused", _REPLACE_CREDENTIAL_ADVICE
    ),
    "unauthorized_client": AADSTS[700016],
    "invalid_tenant": AADSTS[90002],
    "invalid_scope": AADSTS[70011],
    "invalid_resource": AADSTS[500011],
    "consent_required": AADSTS[65001],
    "interaction_required": Known(InteractionRequired, "interactive sign-in is required", _RELOGIN),
    "login_required": Known(InteractionRequired, "interactive sign-in is required", _RELOGIN),
    "access_denied": Known(InteractionRequired, "the sign-in was cancelled or denied", _RELOGIN),
    "authorization_declined": Known(InteractionRequired, "the sign-in was declined", _RELOGIN),
    "expired_token": AADSTS[70019],
    "bad_verification_code": AADSTS[70018],
    "authorization_pending": AADSTS[70016],
}

_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
_CODE_IN_TEXT = re.compile(r"AADSTS(\d{4,9})")
# The description ends with "Trace ID: ... Correlation ID: ... Timestamp: ...": drop it.
_TRAILER = re.compile(r"\s*Trace ID:.*\Z", re.S)


def error_code(body: Mapping[str, object]) -> int | None:
    """The AADSTS number of an error body, from ``error_codes`` or the description."""
    codes = body.get("error_codes")
    if isinstance(codes, list) and codes and isinstance(codes[0], int):
        return codes[0]
    description = body.get("error_description")
    if isinstance(description, str):
        match = _CODE_IN_TEXT.search(description)
        if match:
            return int(match.group(1))
    return None


def _server_text(body: Mapping[str, object]) -> str:
    description = body.get("error_description")
    if not isinstance(description, str):
        return ""
    text = _TRAILER.sub("", description)
    text = re.sub(r"^AADSTS\d+:\s*", "", text).strip()
    return redact(" ".join(text.split()))[:300]


def error_from_response(
    body: Mapping[str, object], context: ErrorContext, *, status: int | None = None
) -> AuthError:
    """The error to raise for an error body from the token or device-code endpoint."""
    error = body.get("error")
    error = error if isinstance(error, str) else ""
    code = error_code(body)
    server = _server_text(body)
    if error in _TRANSIENT_ERRORS or (status is not None and (status == 429 or status >= 500)):
        detail = f" ({server})" if server else ""
        return TransientAuthError(
            f"account {context.account!r}: the identity platform is temporarily unavailable"
            f"{detail}.",
            code=code,
            fix="Try again in a few minutes.",
        )
    known = AADSTS.get(code) if code is not None else None
    if known is None and body.get("suberror") == "consent_required":
        known = AADSTS[65001]
    if known is None:
        known = _BY_ERROR.get(error)
    fields = {
        "account": context.account,
        "login": context.login,
        "set_secret": context.set_secret,
        "consent_url": context.consent_url(),
        "client_id": context.client_id or "not set",
        "tenant": context.tenant or "not set",
    }
    label = f" (AADSTS{code})" if code is not None else (f" ({error})" if error else "")
    if known is None:
        said = server or error or "no reason given"
        return AuthError(
            f"account {context.account!r}: sign-in failed{label}: {said}.",
            code=code,
            fix=f"If it persists, sign in again with `{context.login}`.",
        )
    message = f"account {context.account!r}: {known.meaning}{label}."
    return known.error_class(message, code=code, fix=known.fix.format(**fields))


# --- Exchange's generic IMAP failure, explained --------------------------------------------

#: Why Exchange may answer ``NO AUTHENTICATE failed.`` to a delegated (user) token.
IMAP_AUTH_FAILURE_CAUSES_DELEGATED: tuple[str, ...] = (
    "the token has expired (sessions also end when it does)",
    "the token's audience is not Exchange (a Graph token, or the wrong cloud)",
    "the token lacks the IMAP.AccessAsUser.All permission",
    "the user name sent with the token is not the signed-in user's mailbox",
    "IMAP is disabled for this mailbox (Set-CASMailbox -ImapEnabled $true)",
    "the tenant has disabled IMAP or modern authentication for this protocol",
)

#: Why Exchange may refuse an app-only token.
IMAP_AUTH_FAILURE_CAUSES_APP_ONLY: tuple[str, ...] = (
    "the token has expired (sessions also end when it does)",
    "the app lacks the admin-consented application permission IMAP.AccessAsApp",
    "the service principal is not registered in Exchange (New-ServicePrincipal)",
    "New-ServicePrincipal was given the App Registration's object id instead of the "
    "Enterprise Application's",
    "the service principal has no FullAccess on this mailbox (Add-MailboxPermission)",
    "IMAP is disabled for this mailbox (Set-CASMailbox -ImapEnabled $true)",
)

#: Why Exchange may accept the token, then answer ``BAD User is authenticated but not
#: connected.`` to every command.
IMAP_NOT_CONNECTED_CAUSES: tuple[str, ...] = (
    "the token's user is not the mailbox named in the login (user=)",
    "the principal has no permission on this mailbox (shared mailbox or app-only without "
    "Add-MailboxPermission)",
    "a transient problem in Exchange's back end (try again later)",
)


def imap_failure_causes(*, app_only: bool) -> tuple[str, ...]:
    """The likely causes of ``NO AUTHENTICATE failed.`` for this kind of account."""
    return IMAP_AUTH_FAILURE_CAUSES_APP_ONLY if app_only else IMAP_AUTH_FAILURE_CAUSES_DELEGATED
