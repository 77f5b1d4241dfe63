"""Every AADSTS code of the spec maps to the right class and a sentence with the fix.

The bodies are shaped exactly like the identity platform's (spec section 3.2): ``error``,
``error_description`` starting ``AADSTS<code>: `` and ending with the trace trailer,
``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``.
"""

from __future__ import annotations

import pytest

from exoimap.auth.aadsts import AADSTS, ErrorContext, error_code, error_from_response
from exoimap.clouds import get_cloud
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

CLIENT = "22222222-2222-2222-2222-222222222222"
TENANT = "contoso.example"
CTX = ErrorContext(account="work", client_id=CLIENT, tenant=TENANT, cloud=get_cloud("worldwide"))


def body(code: int, error: str, text: str, *, suberror: str | None = None) -> dict[str, object]:
    trailer = (
        " Trace ID: 0d7e6c4a-6b7b-4f5e-9d6c-2b1e0a7c1200 Correlation ID: "
        "5b2c6a1e-8f1d-4c0a-bb7e-0e3f1d2c3b4a Timestamp: 2026-11-28 06:00:00Z"
    )
    out: dict[str, object] = {
        "error": error,
        "error_description": f"AADSTS{code}: {text}{trailer}",
        "error_codes": [code],
        "timestamp": "2026-11-28 06:00:00Z",
        "trace_id": "0d7e6c4a-6b7b-4f5e-9d6c-2b1e0a7c1200",
        "correlation_id": "5b2c6a1e-8f1d-4c0a-bb7e-0e3f1d2c3b4a",
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    if suberror:
        out["suberror"] = suberror
    return out


# code, error value, server text, expected class, words the fix must contain
CASES: list[tuple[int, str, str, type[AuthError], tuple[str, ...]]] = [
    (50126, "invalid_grant", "Error validating credentials due to invalid username or password.",
     InteractionRequired, ("exoimap login work",)),
    (50034, "invalid_grant", "The user account {EmailHidden} does not exist in the directory.",
     TenantOrAppNotFound, ("email", TENANT)),
    (50076, "invalid_grant", "Due to a configuration change made by your administrator, or "
     "because you moved to a new location, you must use multi-factor authentication.",
     InteractionRequired, ("exoimap login work",)),
    (50079, "invalid_grant", "Due to a configuration change, you must enroll in MFA.",
     InteractionRequired, ("MFA registration", "exoimap login work")),
    (53003, "invalid_grant", "Access has been blocked by Conditional Access policies.",
     InteractionRequired, ("exoimap login work", "policy")),
    (50173, "invalid_grant", "The provided grant has expired due to it being revoked.",
     TokenExpiredOrRevoked, ("exoimap login work",)),
    (70008, "invalid_grant", "The provided authorization code or refresh token has expired due "
     "to inactivity.", TokenExpiredOrRevoked, ("exoimap login work",)),
    (700082, "invalid_grant", "The refresh token has expired due to inactivity. The token was "
     "issued on 2026-08-01 and was inactive for 90.00:00:00.",
     TokenExpiredOrRevoked, ("exoimap login work",)),
    (700084, "invalid_grant", "The refresh token was issued to a single page app (SPA).",
     TokenExpiredOrRevoked, ("Mobile and desktop", "exoimap login work")),
    (70043, "invalid_grant", "The refresh token has expired or is invalid due to sign-in "
     "frequency checks by conditional access.", TokenExpiredOrRevoked, ("exoimap login work",)),
    (65001, "invalid_grant", "The user or administrator has not consented to use the "
     "application with ID '22222222'.", ConsentRequired,
     (f"https://login.microsoftonline.com/{TENANT}/v2.0/adminconsent?client_id={CLIENT}",
      "exoimap login work")),
    (70011, "invalid_scope", "The provided value for the input parameter 'scope' is not valid.",
     InsufficientPermission, ("cloud",)),
    (70016, "authorization_pending", "OAuth 2.0 device flow error. Authorization is pending.",
     InteractionRequired, ("exoimap login work",)),
    (70018, "bad_verification_code", "Invalid verification code entered.",
     InteractionRequired, ("exoimap login work",)),
    (70019, "expired_token", "Verification code expired.",
     InteractionRequired, ("15 minutes", "exoimap login work")),
    (90002, "invalid_request", "Tenant 'nosuch.example' not found.",
     TenantOrAppNotFound, ("tenant", TENANT)),
    (500011, "invalid_resource", "The resource principal named https://outlook.office365.com "
     "was not found in the tenant named Contoso.", TenantOrAppNotFound, ("cloud",)),
    (700016, "unauthorized_client", f"Application with identifier '{CLIENT}' was not found in "
     "the directory 'Contoso'.", TenantOrAppNotFound, ("client_id", CLIENT, TENANT)),
    (7000215, "invalid_client", "Invalid client secret provided. Ensure the secret being sent "
     "in the request is the client secret value, not the client secret ID, for a secret added "
     f"to app '{CLIENT}'.", InvalidClientCredentials,
     ("exoimap account set-secret work", "not its Secret ID")),
    (7000222, "invalid_client", "The provided client secret keys for app are expired.",
     InvalidClientCredentials, ("new client secret", "exoimap account set-secret work")),
    (7000218, "invalid_client", "The request body must contain the following parameter: "
     "'client_assertion' or 'client_secret'.", InvalidClientCredentials,
     ("Allow public client flows", "exoimap account set-secret work")),
    (700027, "invalid_client", "Client assertion failed signature validation.",
     InvalidClientCredentials, ("certificate",)),
    (50012, "invalid_client", "Client assertion contains an invalid signature.",
     InvalidClientCredentials, ("certificate",)),
    (700030, "invalid_client", "Invalid certificate - subject name in certificate is not "
     "authorized.", InvalidClientCredentials, ("certificate",)),
    (700025, "invalid_client", "Client is public so neither 'client_assertion' nor "
     "'client_secret' should be presented.", AppMisconfigured, ("device",)),
    (501481, "invalid_grant", "The Code_Verifier does not match the code_challenge supplied in "
     "the authorization request.", InteractionRequired, ("exoimap login work",)),
    (54005, "invalid_grant", "OAuth2 Authorization code was already redeemed.",
     InteractionRequired, ("exoimap login work",)),
    (50011, "invalid_request", "The redirect URI 'http://127.0.0.1:5000' specified in the "
     "request does not match the redirect URIs configured for the application.",
     AppMisconfigured, ("http://localhost", "Mobile and desktop applications")),
    (9001023, "invalid_request", "The grant type isn't supported over the /common or "
     "/consumers endpoints.", AppMisconfigured, ("tenant",)),
]  # fmt: skip


@pytest.mark.parametrize(("code", "error", "text", "cls", "fix_words"), CASES)
def test_each_code_maps_to_its_class_and_fix(
    code: int, error: str, text: str, cls: type[AuthError], fix_words: tuple[str, ...]
) -> None:
    exc = error_from_response(body(code, error, text), CTX, status=400)
    assert type(exc) is cls
    assert exc.code == code
    assert exc.fix
    for word in fix_words:
        assert word in exc.fix, (word, exc.fix)
    message = str(exc)
    assert f"AADSTS{code}" in message
    assert "'work'" in message
    assert "Trace ID" not in message  # the trailer is noise for the user
    assert not exc.retryable


def test_every_code_in_the_table_is_tested() -> None:
    assert {c[0] for c in CASES} | {70020} == set(AADSTS)


def test_the_code_is_found_in_the_description_when_error_codes_is_missing() -> None:
    raw = body(7000215, "invalid_client", "Invalid client secret provided.")
    del raw["error_codes"]
    assert error_code(raw) == 7000215
    assert isinstance(error_from_response(raw, CTX, status=401), InvalidClientCredentials)


def test_consent_suberror_without_a_known_code() -> None:
    raw = {"error": "invalid_grant", "suberror": "consent_required", "error_description": "x"}
    assert isinstance(error_from_response(raw, CTX), ConsentRequired)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ({"error": "temporarily_unavailable", "error_description": "AADSTS50196: loop"}, 400),
        ({"error": "server_error", "error_description": "AADSTS90033: transient"}, 500),
        ({"error": "invalid_request", "error_description": "too many"}, 429),
        ({"error": "invalid_grant", "error_description": "AADSTS70008: x"}, 503),
    ],
)
def test_transient_failures_are_retryable_and_leave_the_stored_sign_in_to_the_provider(
    raw: dict[str, object], status: int
) -> None:
    exc = error_from_response(raw, CTX, status=status)
    assert isinstance(exc, TransientAuthError)
    assert exc.retryable
    # whether a stored sign-in was kept is for the token provider to say: only it knows
    # whether there is one (tests/auth/test_signin_words_e2e.py)
    assert "kept" not in str(exc)


def test_unknown_code_keeps_the_servers_words_without_secrets() -> None:
    secretish = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    raw = body(99999, "invalid_request", f"Something odd happened with {secretish}.")
    exc = error_from_response(raw, CTX, status=400)
    assert type(exc) is AuthError
    assert "Something odd happened" in str(exc)
    assert secretish not in str(exc)
    assert "AADSTS99999" in str(exc)


def test_known_error_values_without_codes() -> None:
    assert isinstance(
        error_from_response({"error": "authorization_declined"}, CTX), InteractionRequired
    )
    assert isinstance(
        error_from_response({"error": "invalid_client"}, CTX), InvalidClientCredentials
    )
    assert isinstance(error_from_response({"error": "invalid_grant"}, CTX), TokenExpiredOrRevoked)


def test_consent_url_falls_back_to_a_pointer_without_a_client_id() -> None:
    ctx = ErrorContext(account="home")
    exc = error_from_response(body(65001, "invalid_grant", "no consent"), ctx)
    assert exc.fix is not None
    assert "Grant admin consent" in exc.fix
