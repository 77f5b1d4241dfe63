"""Real MSAL against the sandbox: authorization code + PKCE, device code, refresh."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable
from urllib.parse import urlencode

import jwt
import msal
import pytest

from exoimap.sandbox.identity import EXCHANGE_AUDIENCES, InvalidAccessToken

from .conftest import IMAP_SCOPE, World, aadsts, drive, form_fields, redirect_params, step_of


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# --- authorization code + PKCE ----------------------------------------------------------------


def test_auth_code_pkce_s256_with_msal(world: World) -> None:
    client = world.public()
    flow, response = world.browser_sign_in(client, [IMAP_SCOPE], login_hint=world.user.upn)
    assert response["state"] == flow["state"]
    result = client.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    # MSAL checked the id token's nonce and aud itself; check the rest.
    assert result["id_token_claims"]["preferred_username"] == world.user.upn
    # MSAL sends the hex SHA-256 of its nonce and checks the id token echoes it.
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["scope"] == IMAP_SCOPE
    assert "refresh_token" in result
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info == {"uid": world.user.oid, "utid": world.idp.tenant_id}
    claims = world.idp.sandbox.verifier.verify(result["access_token"], audiences=EXCHANGE_AUDIENCES)
    assert claims.audience == "https://outlook.office.com"
    assert claims.scopes == {"IMAP.AccessAsUser.All"}
    assert claims.upn == world.user.upn
    assert claims.object_id == world.user.oid
    assert claims.app_id == world.app.client_id
    assert not claims.app_only
    raw = _claims(result["access_token"])
    assert raw["ver"] == "1.0"
    assert raw["appidacr"] == "0"
    assert raw["idtyp"] == "user"
    assert raw["tid"] == world.idp.tenant_id
    header = jwt.get_unverified_header(result["access_token"])
    assert header["alg"] == "RS256"
    assert header["kid"] == header["x5t"]
    assert "nonce" in header
    # The cache lookup hits: same token without a network call.
    account = client.get_accounts()[0]
    silent = client.acquire_token_silent([IMAP_SCOPE], account=account)
    assert silent is not None
    assert silent["access_token"] == result["access_token"]


def test_auth_code_form_shows_login_hint_and_rejects_bad_password(world: World) -> None:
    client = world.public()
    flow = client.initiate_auth_code_flow([IMAP_SCOPE], login_hint=world.user.upn)
    page = world.http.get(flow["auth_uri"], allow_redirects=False)
    assert page.status_code == 200
    assert f'value="{world.user.upn}"' in page.text
    wrong = drive(world.http, page, upn=world.user.upn, password="not-it")
    assert wrong.status_code == 400
    assert "Your account or password is incorrect." in wrong.text
    assert step_of(wrong.text) == "login"
    unknown = drive(world.http, page, upn="nobody@contoso.onmicrosoft.com", password="x")
    assert "couldn't find an account" in html.unescape(unknown.text)


def test_pkce_mismatch_is_501481(world: World) -> None:
    client = world.public()
    flow, response = world.browser_sign_in(client, [IMAP_SCOPE])
    flow["code_verifier"] = "x" * 43
    assert aadsts(client.acquire_token_by_auth_code_flow(flow, response)) == 501481


def test_code_reuse_is_54005(world: World) -> None:
    client = world.public()
    flow, response = world.browser_sign_in(client, [IMAP_SCOPE])
    first = client.acquire_token_by_auth_code_flow(dict(flow), response)
    assert "access_token" in first, first
    again = client.acquire_token_by_auth_code_flow(dict(flow), response)
    assert aadsts(again) == 54005
    assert again["error"] == "invalid_grant"


def test_pkce_plain_and_missing_method_mean_plain(world: World) -> None:
    verifier = "plain-verifier-" + "a" * 40
    for method in ("plain", None):
        params = {
            "client_id": world.app.client_id,
            "response_type": "code",
            "redirect_uri": "http://localhost:9000",
            "scope": f"{IMAP_SCOPE} openid offline_access",
            "state": "s1",
            "code_challenge": verifier,
        }
        if method:
            params["code_challenge_method"] = method
        page = world.http.get(
            f"{world.idp.authority}/oauth2/v2.0/authorize?{urlencode(params)}",
            allow_redirects=False,
        )
        final = drive(world.http, page, upn=world.user.upn, password=world.password)
        code = redirect_params(final)["code"]
        token = world.http.post(
            f"{world.idp.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "authorization_code",
                "client_id": world.app.client_id,
                "code": code,
                "redirect_uri": "http://localhost:9000",
                "code_verifier": verifier,
                "scope": IMAP_SCOPE,
            },
        )
        assert token.status_code == 200, token.text
        assert token.json()["scope"] == IMAP_SCOPE
        assert "client_info" not in token.json()  # only when the request asks for it


def test_prompt_none_needs_a_session_then_sso_works(world: World) -> None:
    client = world.public()
    flow = client.initiate_auth_code_flow([IMAP_SCOPE], prompt="none")
    silent = world.http.get(flow["auth_uri"], allow_redirects=False)
    assert redirect_params(silent)["error"] == "login_required"
    assert redirect_params(silent)["state"] == flow["state"]
    world.browser_sign_in(client, [IMAP_SCOPE])  # sets the session cookie
    flow = client.initiate_auth_code_flow([IMAP_SCOPE], prompt="none")
    sso = redirect_params(world.http.get(flow["auth_uri"], allow_redirects=False))
    assert "access_token" in client.acquire_token_by_auth_code_flow(flow, sso)
    forced = client.initiate_auth_code_flow([IMAP_SCOPE], prompt="login")
    page = world.http.get(forced["auth_uri"], allow_redirects=False)
    assert step_of(page.text) == "login"


def test_redirect_uri_not_registered_is_50011_page(world: World) -> None:
    client = world.public()
    flow = client.initiate_auth_code_flow([IMAP_SCOPE], redirect_uri="https://evil.example/cb")
    page = world.http.get(flow["auth_uri"], allow_redirects=False)
    assert page.status_code == 400
    assert "AADSTS50011" in page.text


def test_consent_page_then_consent_remembered(world: World) -> None:
    app = world.new_app(delegated=[IMAP_SCOPE], admin_consent=False)
    client = world.public(app)
    flow = client.initiate_auth_code_flow([IMAP_SCOPE])
    page = world.http.get(flow["auth_uri"], allow_redirects=False)
    consent = drive(world.http, page, upn=world.user.upn, password=world.password, consent="stop")
    assert consent.status_code == 302
    assert redirect_params(consent)["error"] == "access_denied"
    flow = client.initiate_auth_code_flow([IMAP_SCOPE])
    page = world.http.get(flow["auth_uri"], allow_redirects=False)
    login = form_fields(page.text)
    assert login[1]["step"] == "login"
    shown = world.http.post(
        login[0],
        data={**login[1], "login": world.user.upn, "passwd": world.password},
        allow_redirects=False,
    )
    assert step_of(shown.text) == "consent"
    assert IMAP_SCOPE in shown.text
    accepted = drive(world.http, shown, upn=world.user.upn, password=world.password)
    result = client.acquire_token_by_auth_code_flow(flow, redirect_params(accepted))
    assert "access_token" in result, result
    # Consent is remembered: the next sign-in (with the session) needs no page at all.
    flow = client.initiate_auth_code_flow([IMAP_SCOPE], prompt="none")
    again = redirect_params(world.http.get(flow["auth_uri"], allow_redirects=False))
    assert "code" in again


def test_mfa_user_gets_mfa_step_and_amr(world: World) -> None:
    user, password = world.new_user(mfa=True)
    client = world.public()
    flow = client.initiate_auth_code_flow([IMAP_SCOPE])
    page = world.http.get(flow["auth_uri"], allow_redirects=False)
    action, fields = form_fields(page.text)
    mfa_page = world.http.post(
        action, data={**fields, "login": user.upn, "passwd": password}, allow_redirects=False
    )
    assert step_of(mfa_page.text) == "mfa"
    done = drive(world.http, mfa_page, upn=user.upn, password=password)
    result = client.acquire_token_by_auth_code_flow(flow, redirect_params(done))
    assert _claims(result["access_token"])["amr"] == ["pwd", "mfa"]


# --- device code --------------------------------------------------------------------------------


def test_device_code_approved(world: World) -> None:
    client = world.public()
    flow = client.initiate_device_flow([IMAP_SCOPE])
    assert len(flow["user_code"]) == 9
    assert flow["verification_uri"] == f"{world.idp.base_url}/devicelogin"
    assert flow["user_code"] in flow["message"]
    assert flow["interval"] == 1
    pending = client.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert pending["error"] == "authorization_pending"
    assert aadsts(pending) == 70016
    world.idp.admin.approve_device_code(flow["user_code"], upn=world.user.upn)
    result = client.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == world.user.upn
    assert result["scope"] == IMAP_SCOPE


def test_device_code_declined(world: World) -> None:
    client = world.public()
    flow = client.initiate_device_flow([IMAP_SCOPE])
    world.idp.admin.decline_device_code(flow["user_code"])
    result = client.acquire_token_by_device_flow(flow)
    assert result["error"] == "authorization_declined"


def test_device_code_expired(world: World, clock: Callable[[float], None]) -> None:
    client = world.public()
    flow = client.initiate_device_flow([IMAP_SCOPE])
    clock(61)
    result = client.acquire_token_by_device_flow(flow)
    assert result["error"] == "expired_token"
    assert aadsts(result) == 70019


def test_device_code_bad_code(world: World) -> None:
    client = world.public()
    flow = client.initiate_device_flow([IMAP_SCOPE])
    flow["device_code"] = "not-a-device-code"
    result = client.acquire_token_by_device_flow(flow)
    assert result["error"] == "bad_verification_code"


def test_device_login_page_approve_and_decline(world: World) -> None:
    client = world.public()
    for choice, expected in (("accept", "access_token"), ("cancel", "error")):
        flow = client.initiate_device_flow([IMAP_SCOPE])
        entry = world.http.get(flow["verification_uri"])
        action, fields = form_fields(entry.text)
        bad = world.http.post(action, data={**fields, "otc": "NOPE12345"})
        assert "didn't work" in html.unescape(bad.text)
        login = world.http.post(action, data={**fields, "otc": flow["user_code"].lower()})
        assert step_of(login.text) == "login"
        done = drive(world.http, login, upn=world.user.upn, password=world.password, consent=choice)
        assert done.status_code == 200
        result = client.acquire_token_by_device_flow(flow)
        assert expected in result, result
    assert "declined" in done.text


# --- refresh tokens ------------------------------------------------------------------------------


def test_refresh_rotates_and_old_token_still_works(world: World) -> None:
    client = world.public()
    first = world.device_token(client, [IMAP_SCOPE])
    account = client.get_accounts()[0]
    second = client.acquire_token_silent([IMAP_SCOPE], account=account, force_refresh=True)
    assert second is not None
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    # Entra does not revoke the old refresh token on rotation.
    again = client.acquire_token_by_refresh_token(first["refresh_token"], [IMAP_SCOPE])
    assert "access_token" in again, again


def test_revoked_refresh_token_is_50173(world: World) -> None:
    client = world.public()
    world.device_token(client, [IMAP_SCOPE])
    world.idp.admin.revoke_sessions(world.user.upn)
    account = client.get_accounts()[0]
    result = client.acquire_token_silent_with_error(
        [IMAP_SCOPE], account=account, force_refresh=True
    )
    assert result is not None
    assert aadsts(result) == 50173
    assert result["error"] == "invalid_grant"


def test_refresh_token_inactive_is_700082(world: World, clock: Callable[[float], None]) -> None:
    client = world.public()
    world.device_token(client, [IMAP_SCOPE])
    clock(91 * 86400)
    account = client.get_accounts()[0]
    result = client.acquire_token_silent_with_error(
        [IMAP_SCOPE], account=account, force_refresh=True
    )
    assert result is not None
    assert aadsts(result) == 700082


def test_refresh_token_max_age_is_70008(world: World, clock: Callable[[float], None]) -> None:
    client = world.public()
    world.device_token(client, [IMAP_SCOPE])
    world.idp.admin.configure(refresh_token_max_age=3600)
    try:
        clock(3601)
        account = client.get_accounts()[0]
        result = client.acquire_token_silent_with_error(
            [IMAP_SCOPE], account=account, force_refresh=True
        )
    finally:
        world.idp.admin.configure(refresh_token_max_age=None)
    assert result is not None
    assert aadsts(result) == 70008


def test_access_token_verifier_rejects_expired_wrong_audience_and_forged(world: World) -> None:
    client = world.public()
    token = world.device_token(client, [IMAP_SCOPE])["access_token"]
    verifier = world.idp.sandbox.verifier
    claims = verifier.verify(token)
    with pytest.raises(InvalidAccessToken, match="expired"):
        verifier.verify(token, now=claims.expires_at + 1)
    with pytest.raises(InvalidAccessToken, match="audience"):
        verifier.verify(token, audiences=["https://graph.microsoft.com"])
    head, _body, signature = token.split(".")
    forged_body = base64.urlsafe_b64encode(
        json.dumps({**_claims(token), "upn": "mallory@contoso.onmicrosoft.com"}).encode()
    ).rstrip(b"=")
    with pytest.raises(InvalidAccessToken, match="signature"):
        verifier.verify(f"{head}.{forged_body.decode()}.{signature}")


def test_graph_scope_gives_graph_audience(world: World) -> None:
    app = world.new_app(delegated=["https://graph.microsoft.com/User.Read"], admin_consent=True)
    client = world.public(app)
    result = world.device_token(client, ["https://graph.microsoft.com/User.Read"])
    assert "access_token" in result, result
    audience = _claims(result["access_token"])["aud"]
    assert audience == "https://graph.microsoft.com"
    assert audience not in EXCHANGE_AUDIENCES
    with pytest.raises(InvalidAccessToken):
        world.idp.sandbox.verifier.verify(result["access_token"], audiences=EXCHANGE_AUDIENCES)


def test_msal_with_domain_authority_and_hash_check(world: World) -> None:
    client = world.public(authority=f"{world.idp.base_url}/{world.idp.tenant_domain}")
    result = world.device_token(client, [IMAP_SCOPE])
    assert result["id_token_claims"]["tid"] == world.idp.tenant_id
    assert hashlib.sha256(result["access_token"].encode()).hexdigest()
    assert isinstance(client, msal.PublicClientApplication)


def test_lifetimes_are_configurable(world: World) -> None:
    world.idp.admin.configure(access_token_lifetime=120)
    try:
        result = world.device_token(world.public(), [IMAP_SCOPE])
    finally:
        world.idp.admin.configure(access_token_lifetime=3599)
    assert result["expires_in"] == 120
    claims = _claims(result["access_token"])
    assert claims["exp"] - claims["iat"] == 120  # type: ignore[operator]


@pytest.mark.parametrize("segment", ["organizations", "common"])
def test_multi_tenant_authority_for_user_flows(world: World, segment: str) -> None:
    client = world.public(authority=f"{world.idp.base_url}/{segment}")
    result = world.device_token(client, [IMAP_SCOPE])
    assert "access_token" in result, result
    assert _claims(result["access_token"])["tid"] == world.idp.tenant_id


def test_confidential_web_app_auth_code_with_secret(world: World) -> None:
    app = world.new_app(
        public=False, redirect_uris=["http://localhost"], delegated=[IMAP_SCOPE], admin_consent=True
    )
    secret = world.idp.admin.add_client_secret(app.name)
    client = world.confidential(app.client_id, secret.value)
    flow, response = world.browser_sign_in(client, [IMAP_SCOPE])
    result = client.acquire_token_by_auth_code_flow(flow, response)
    assert _claims(result["access_token"])["appidacr"] == "1"
    impostor = world.confidential(app.client_id, "wrong")
    flow, response = world.browser_sign_in(impostor, [IMAP_SCOPE])
    assert aadsts(impostor.acquire_token_by_auth_code_flow(flow, response)) == 7000215


def test_public_client_presenting_a_secret_is_700025(world: World) -> None:
    response = world.http.post(
        f"{world.idp.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": world.app.client_id,
            "client_secret": "not-for-public-clients",
            "refresh_token": "0.Ax",
        },
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [700025]
