"""AADSTS errors as the Microsoft identity platform returns them.

Every failure of the sandbox's token endpoint is an :class:`AadstsError`; :func:`error_body`
turns it into Microsoft's JSON body (``error``, ``error_description`` starting with
``AADSTS<code>: `` and ending with the trace line, ``error_codes``, ``timestamp``,
``trace_id``, ``correlation_id``, ``error_uri`` and, where Microsoft sends one, ``suberror``)
with the same HTTP status. Texts follow Microsoft's published error reference; where the
exact text or code is not documented (marked [U]) it is our best reading.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from exoimap.errors import AuthError

__all__ = ["CATALOG", "AadstsError", "ErrorSpec", "error_body"]


@dataclass(frozen=True)
class ErrorSpec:
    """What Microsoft answers for one AADSTS code."""

    error: str
    status: int
    template: str
    suberror: str | None = None


# Templates use str.format fields; missing fields are filled with a neutral placeholder.
CATALOG: dict[int, ErrorSpec] = {
    50011: ErrorSpec(
        "invalid_request",
        400,
        "The redirect URI '{redirect_uri}' specified in the request does not match the "
        "redirect URIs configured for the application '{client_id}'.",
    ),
    50034: ErrorSpec(
        "invalid_grant", 400, "The user account {upn} does not exist in the {tenant} directory."
    ),
    50076: ErrorSpec(
        "invalid_grant",
        400,
        "Due to a configuration change made by your administrator, or because you moved to a "
        "new location, you must use multi-factor authentication to access '{resource}'.",
        "basic_action",
    ),
    50126: ErrorSpec(
        "invalid_grant", 400, "Error validating credentials due to invalid username or password."
    ),
    50173: ErrorSpec(
        "invalid_grant",
        400,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password. The grant was issued on "
        "'{issued}' and the TokensValidFrom date (before which tokens are not valid) for this "
        "user is '{valid_from}'.",
    ),
    53003: ErrorSpec(
        "invalid_grant",
        400,
        "Access has been blocked by Conditional Access policies. The access policy does not "
        "allow token issuance.",
        "message_only",
    ),
    54005: ErrorSpec(
        "invalid_grant",
        400,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
        "use an existing refresh token.",
    ),
    65001: ErrorSpec(
        "invalid_grant",
        400,
        "The user or administrator has not consented to use the application with ID "
        "'{client_id}' named '{app_name}'. Send an interactive authorization request for this "
        "user and resource.",
        "consent_required",
    ),
    # [U] Entra documents no code for a declined device flow; 65004 is "user declined".
    65004: ErrorSpec("authorization_declined", 400, "User declined to consent to access the app."),
    70000: ErrorSpec(
        "invalid_grant", 400, "The provided value for the 'code' parameter is not valid."
    ),
    70003: ErrorSpec(
        "unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant}'."
    ),
    70008: ErrorSpec(
        "invalid_grant",
        400,
        "The provided authorization code or refresh token has expired due to inactivity. Send "
        "a new interactive authorization request for this user and resource.",
    ),
    70011: ErrorSpec(
        "invalid_scope",
        400,
        "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' "
        "is not valid.",
    ),
    70016: ErrorSpec(
        "authorization_pending",
        400,
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    ),
    70018: ErrorSpec("bad_verification_code", 400, "Invalid verification code entered."),
    70019: ErrorSpec("expired_token", 400, "Verification code expired."),
    70043: ErrorSpec(
        "invalid_grant",
        400,
        "The refresh token has expired or is invalid due to sign-in frequency checks by "
        "conditional access. The token was issued on {issued} and the maximum allowed "
        "lifetime for this request is {max_age}.",
    ),
    90002: ErrorSpec(
        "invalid_request",
        400,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    ),
    90014: ErrorSpec(
        "invalid_request",
        400,
        "The required field '{param}' is missing from the credential. Ensure that you have "
        "all the necessary parameters for the login request.",
    ),
    50058: ErrorSpec(
        "login_required",
        400,
        "A silent sign-in request was sent but no user is signed in.",
    ),
    500011: ErrorSpec(
        "invalid_resource",
        400,
        "The resource principal named {resource} was not found in the tenant named {tenant}. "
        "This can happen if the application has not been installed by the administrator of "
        "the tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
    ),
    501481: ErrorSpec(
        "invalid_grant",
        400,
        "The Code_Verifier does not match the code_challenge supplied in the authorization "
        "request.",
    ),
    700016: ErrorSpec(
        "unauthorized_client",
        400,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
        "This can happen if the application has not been installed by the administrator of "
        "the tenant or consented to by any user in the tenant. You may have sent your "
        "authentication request to the wrong tenant.",
    ),
    700024: ErrorSpec(
        "invalid_client", 400, "Client assertion is not within its valid time range."
    ),
    700025: ErrorSpec(
        "invalid_client",
        400,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    ),
    700027: ErrorSpec(
        "invalid_client", 401, "Client assertion failed signature validation. {detail}"
    ),
    700082: ErrorSpec(
        "invalid_grant",
        400,
        "The refresh token has expired due to inactivity. The token was issued on {issued} and "
        "was inactive for {inactive}.",
    ),
    900144: ErrorSpec(
        "invalid_request", 400, "The request body must contain the following parameter: '{param}'."
    ),
    7000215: ErrorSpec(
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app "
        "'{client_id}'.",
    ),
    7000218: ErrorSpec(
        "invalid_client",
        401,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    ),
    7000222: ErrorSpec(
        "invalid_client",
        401,
        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure "
        "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
        "using certificate credentials for added security: https://aka.ms/certCreds.",
    ),
    9002313: ErrorSpec("invalid_grant", 400, "Invalid request. Request is malformed or invalid."),
    9001023: ErrorSpec(
        "invalid_request",
        400,
        "The grant type isn't supported over the /common or /consumers endpoints. Please use "
        "the /organizations or tenant-specific endpoint.",
    ),
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "(not given)"


class AadstsError(AuthError):
    """A failure the sandbox reports with an AADSTS code (``code`` is in :data:`CATALOG`)."""

    def __init__(self, code: int, **fields: Any) -> None:
        self.spec = CATALOG[code]
        self.fields = fields
        self.description = self.spec.template.format_map(_Blank(fields))
        super().__init__(f"AADSTS{code}: {self.description}", code=code)

    @property
    def error(self) -> str:
        return self.spec.error

    @property
    def status(self) -> int:
        return self.spec.status


def error_body(exc: AadstsError, correlation_id: str | None = None) -> dict[str, Any]:
    """Microsoft's JSON error body for ``exc`` (also used for error redirects)."""
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    body: dict[str, Any] = {
        "error": exc.error,
        "error_description": (
            f"AADSTS{exc.code}: {exc.description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation} Timestamp: {stamp}"
        ),
        "error_codes": [exc.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
    }
    if exc.spec.suberror:
        body["suberror"] = exc.spec.suberror
    return body
