"""Policy errors (consent, MFA, Conditional Access, sign-in frequency) and error injection,
each seen through MSAL's result with its AADSTS code."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msal
import pytest

from exoimap.errors import ConfigError
from exoimap.sandbox.identity import CATALOG

from .conftest import APP_ONLY_SCOPE, IMAP_SCOPE, World, aadsts, drive, redirect_params

SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"


def _silent_refresh(
    world: World, client: msal.ClientApplication, scopes: list[str]
) -> dict[str, object]:
    account = client.get_accounts()[0]
    result = client.acquire_token_silent_with_error(scopes, account=account, force_refresh=True)
    assert result is not None
    return dict(result)


def test_consent_missing_is_65001_with_consent_required(world: World) -> None:
    app = world.new_app(delegated=[IMAP_SCOPE, SMTP_SCOPE], admin_consent=False)
    client = world.public(app)
    flow, response = world.browser_sign_in(client, [IMAP_SCOPE])  # user consents to IMAP
    assert "access_token" in client.acquire_token_by_auth_code_flow(flow, response)
    result = _silent_refresh(world, client, [SMTP_SCOPE])
    assert aadsts(result) == 65001
    assert result["suberror"] == "consent_required"


def test_user_consent_disabled_redirects_consent_required(world: World) -> None:
    admin = world.idp.admin
    domain = f"t{uuid.uuid4().hex[:8]}.example.com"
    tenant = admin.create_tenant(domain)
    admin.set_tenant_policy(domain, user_consent_allowed=False)
    password = "Pw-" + uuid.uuid4().hex
    user = admin.create_user(f"ann@{domain}", password=password)
    app = admin.create_app(
        "no-consent-" + domain, public=True, tenant=domain, redirect_uris=["http://localhost"]
    )
    client = world.public(app, authority=f"{world.idp.base_url}/{tenant.tenant_id}")
    flow = client.initiate_auth_code_flow([IMAP_SCOPE], response_mode="form_post")
    page = world.http.get(flow["auth_uri"], allow_redirects=False)
    final = drive(world.http, page, upn=user.upn, password=password)
    params = redirect_params(final)
    assert params["error"] == "consent_required"
    assert params["error_description"].startswith("AADSTS65001: ")


def test_mfa_enabled_after_sign_in_is_50076(world: World) -> None:
    user, password = world.new_user()
    client = world.public()
    flow, response = world.browser_sign_in(client, [IMAP_SCOPE], upn=user.upn, password=password)
    assert "access_token" in client.acquire_token_by_auth_code_flow(flow, response)
    world.idp.admin.set_user_flags(user.upn, mfa_required=True)
    result = _silent_refresh(world, client, [IMAP_SCOPE])
    assert aadsts(result) == 50076
    assert result["suberror"] == "basic_action"


def test_conditional_access_block_is_53003(world: World) -> None:
    client = world.public()
    world.device_token(client, [IMAP_SCOPE])
    world.idp.admin.set_user_flags(world.user.upn, blocked_by_conditional_access=True)
    result = _silent_refresh(world, client, [IMAP_SCOPE])
    assert aadsts(result) == 53003
    assert result["suberror"] == "message_only"


def test_sign_in_frequency_is_70043(world: World, clock: Callable[[float], None]) -> None:
    admin = world.idp.admin
    domain = f"t{uuid.uuid4().hex[:8]}.example.com"
    tenant = admin.create_tenant(domain)
    admin.set_tenant_policy(domain, sign_in_frequency_seconds=3600)
    user = admin.create_user(f"sif@{domain}")
    app = admin.create_app(
        "sif-" + domain, public=True, tenant=domain, delegated=[IMAP_SCOPE], admin_consent=True
    )
    client = world.public(app, authority=f"{world.idp.base_url}/{tenant.tenant_id}")
    flow = client.initiate_device_flow([IMAP_SCOPE])
    admin.approve_device_code(flow["user_code"], upn=user.upn)
    assert "access_token" in client.acquire_token_by_device_flow(flow)
    assert "access_token" in _silent_refresh(world, client, [IMAP_SCOPE])
    clock(3601)
    assert aadsts(_silent_refresh(world, client, [IMAP_SCOPE])) == 70043


INJECTABLE = [
    (90002, "invalid_request"),
    (700016, "unauthorized_client"),
    (7000215, "invalid_client"),
    (7000222, "invalid_client"),
    (700027, "invalid_client"),
    (70011, "invalid_scope"),
    (65001, "invalid_grant"),
    (50076, "invalid_grant"),
    (53003, "invalid_grant"),
    (70043, "invalid_grant"),
    (70008, "invalid_grant"),
    (700082, "invalid_grant"),
    (50173, "invalid_grant"),
    (501481, "invalid_grant"),
    (54005, "invalid_grant"),
    (9001023, "invalid_request"),
]


@pytest.mark.parametrize(("code", "error"), INJECTABLE)
def test_injected_error_surfaces_in_msal_once(world: World, code: int, error: str) -> None:
    world.idp.admin.fail_next(code, upn=world.user.upn)
    client = world.public()
    flow = client.initiate_device_flow([IMAP_SCOPE])
    world.idp.admin.approve_device_code(flow["user_code"], upn=world.user.upn)
    result = client.acquire_token_by_device_flow(flow)
    assert aadsts(result) == code
    assert result["error"] == error
    assert error == CATALOG[code].error
    # Only the next sign-in fails.
    assert "access_token" in world.device_token(client, [IMAP_SCOPE])


def test_injected_error_for_an_app_hits_client_credentials(world: World) -> None:
    app = world.new_app(
        public=False,
        redirect_uris=[],
        application=["https://outlook.office365.com/IMAP.AccessAsApp"],
        admin_consent=True,
    )
    secret = world.idp.admin.add_client_secret(app.name)
    world.idp.admin.fail_next(53003, app=app.name, count=2)
    # A new MSAL app each time: MSAL replays a cached 4xx for an identical request.
    for _ in range(2):
        client = world.confidential(app.client_id, secret.value)
        assert aadsts(client.acquire_token_for_client([APP_ONLY_SCOPE])) == 53003
    client = world.confidential(app.client_id, secret.value)
    assert "access_token" in client.acquire_token_for_client([APP_ONLY_SCOPE])


def test_injecting_an_unknown_code_is_a_config_error(world: World) -> None:
    with pytest.raises(ConfigError, match="unknown AADSTS code"):
        world.idp.admin.fail_next(12345)
    with pytest.raises(ConfigError, match="no user"):
        world.idp.admin.fail_next(50076, upn="ghost@contoso.onmicrosoft.com")
