"""Sign-in over TLS: XOAUTH2 with and without SASL-IR (stdlib imaplib and raw), every
failure cause, the not-connected state, failure counters and token expiry."""

from __future__ import annotations

import imaplib

import pytest

from exoimap.sandbox.exchange.config import CapabilityProfile, ExchangeSettings
from exoimap.sandbox.tenant import SandboxTenant

from .conftest import (
    Raw,
    app_token,
    new_daemon,
    signed_in,
    user_token,
    xoauth2,
)

AUTH_FAILED = b"a1 NO AUTHENTICATE failed."


def _imaplib(tenant: SandboxTenant, port: int | None = None) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL(
        tenant.imap_host, port or tenant.imap_port, ssl_context=tenant.ssl_context(), timeout=10
    )


def _auth_lines(tenant: SandboxTenant, user: str, token: str) -> list[bytes]:
    client = Raw.connect(tenant)
    try:
        client.line()
        return client.command("a1", b"AUTHENTICATE XOAUTH2 " + xoauth2(user, token))
    finally:
        client.close()


def test_imaplib_xoauth2_without_sasl_ir_and_capabilities(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    client = _imaplib(tenant)
    with client:
        assert client.welcome.startswith(b"* OK The Microsoft Exchange IMAP4 service is ready. [")
        _, caps = client.capability()
        assert caps == [
            b"IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE "
            b"NAMESPACE LITERAL+"
        ]
        status, data = client.authenticate(
            "XOAUTH2", lambda _: f"user={alice}\x01auth=Bearer {alice_token}\x01\x01".encode()
        )
        assert (status, data) == ("OK", [b"AUTHENTICATE completed."])
        _, caps = client.capability()
        assert caps == [
            b"IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT "
            b"CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE "
            b"NAMESPACE LITERAL+"
        ]
        assert client.logout()[0] == "BYE"


def test_bare_continuation_and_cancel(raw: Raw) -> None:
    raw.line()
    raw.send("a1 AUTHENTICATE XOAUTH2")
    assert raw.line() == b"+"
    raw.send("*")
    assert raw.line() == b"a1 NO The AUTH protocol exchange was canceled by the client."


def test_sasl_ir_app_only_token(tenant: SandboxTenant, alice: str) -> None:
    token = app_token(tenant, "exoimap-daemon")
    assert _auth_lines(tenant, alice, token)[-1] == b"a1 OK AUTHENTICATE completed."


@pytest.mark.parametrize(
    "case",
    ["graph_audience", "no_imap_role", "no_service_principal", "wrong_object_id", "tampered"],
)
def test_app_only_failures_give_authenticate_failed(
    tenant: SandboxTenant, alice: str, case: str
) -> None:
    if case == "graph_audience":
        name = new_daemon(tenant, permissions=("https://graph.microsoft.com/Mail.Read",))
        token = app_token(tenant, name, "https://graph.microsoft.com/.default")
    elif case == "no_imap_role":
        name = new_daemon(
            tenant, permissions=("https://outlook.office365.com/SMTP.SendAsApp",), grant=(alice,)
        )
        token = app_token(tenant, name)
    elif case == "no_service_principal":
        token = app_token(tenant, new_daemon(tenant, register=False))
    elif case == "wrong_object_id":
        name = new_daemon(tenant)
        registration = tenant.admin.directory.find_app(name)
        assert registration is not None
        tenant.admin.register_exchange_principal(name, object_id=registration.object_id)
        tenant.admin.add_mailbox_permission(alice, name)
        token = app_token(tenant, name)
    else:
        good = app_token(tenant, "exoimap-daemon")
        head, payload, signature = good.split(".")
        token = f"{head}.{payload}.{signature[:-6]}AAAAAA"
    assert _auth_lines(tenant, alice, token) == [AUTH_FAILED]


def test_app_without_full_access_is_authenticated_but_not_connected(
    tenant: SandboxTenant, bob: str
) -> None:
    token = app_token(tenant, "exoimap-daemon")  # FullAccess on alice only
    client = signed_in(tenant, bob, token)
    try:
        for tag in ("b1", "b2"):
            assert client.command(tag, "SELECT INBOX") == [
                tag.encode() + b" BAD User is authenticated but not connected."
            ]
        assert client.command("b3", 'LIST "" *') == [
            b"b3 BAD User is authenticated but not connected."
        ]
        assert client.line() == b"* BYE Connection closed. 14"
        assert client.closed()
    finally:
        client.close()


def test_delegated_other_mailbox_needs_full_access(
    tenant: SandboxTenant, alice_token: str, alice: str, bob: str
) -> None:
    client = signed_in(tenant, bob, alice_token)
    try:
        assert client.command("b1", "NOOP") == [b"b1 BAD User is authenticated but not connected."]
    finally:
        client.close()
    tenant.admin.add_mailbox_permission(bob, alice)  # a shared mailbox: FullAccess for alice
    try:
        client = signed_in(tenant, bob, alice_token)
        assert client.command("b1", "SELECT INBOX")[-1] == b"b1 OK [READ-WRITE] SELECT completed."
        client.close()
    finally:
        tenant.admin.remove_mailbox_permission(bob, alice)


def test_delegated_token_without_imap_scope_fails(tenant: SandboxTenant, alice: str) -> None:
    name = "smtp-only"
    if tenant.admin.directory.find_app(name) is None:
        tenant.admin.create_app(
            name,
            public=True,
            delegated=["https://outlook.office.com/SMTP.Send"],
            admin_consent=True,
        )
    token = user_token(tenant, alice, "https://outlook.office.com/SMTP.Send", app=name)
    assert _auth_lines(tenant, alice, token) == [AUTH_FAILED]


def test_unknown_mechanism_and_third_failure_closes(raw: Raw) -> None:
    raw.line()
    assert raw.command("a0", "AUTHENTICATE GSSAPI") == [b"a0 BAD Command Argument Error. 11"]
    bad = xoauth2("nobody@contoso.onmicrosoft.com", "not-a-token")
    assert raw.command("a1", b"AUTHENTICATE XOAUTH2 " + bad) == [AUTH_FAILED]
    assert raw.command("a2", b"AUTHENTICATE XOAUTH2 " + bad) == [b"a2 NO AUTHENTICATE failed."]
    assert raw.command("a3", b"AUTHENTICATE XOAUTH2 " + bad) == [b"a3 NO AUTHENTICATE failed."]
    assert raw.line() == b"* BYE Connection is closed. 14"
    assert raw.closed()


def test_login_is_refused_when_basic_auth_is_off(raw: Raw, alice: str) -> None:
    raw.line()
    assert raw.command("a1", f"LOGIN {alice} whatever") == [b"a1 NO LOGIN failed."]


def test_basic_auth_switch_and_capability_profiles(tenant: SandboxTenant, alice: str) -> None:
    password = dict(tenant.users)[alice]
    with tenant.extra_server(ExchangeSettings.for_tests(allow_basic_auth=True)) as server:
        client = _imaplib(tenant, server.port)
        assert client.login(alice, password) == ("OK", [b"LOGIN completed."])
        client.logout()
    profile = CapabilityProfile.BASIC_AUTH_DISABLED
    with tenant.extra_server(ExchangeSettings.for_tests(capability_profile=profile)) as server:
        client = _imaplib(tenant, server.port)
        assert client.capabilities == (
            "IMAP4", "IMAP4REV1", "AUTH=XOAUTH2", "LOGINDISABLED", "SASL-IR", "UIDPLUS", "ID",
            "UNSELECT", "CHILDREN", "IDLE", "NAMESPACE", "LITERAL+",
        )  # fmt: skip
        client.logout()


def test_expired_token_ends_the_session_on_the_next_command(
    tenant: SandboxTenant, alice: str
) -> None:
    token = user_token(tenant, alice)
    client = signed_in(tenant, alice, token)
    tenant.admin.advance_clock(2 * 3600)
    try:
        client.send('b2 LIST "" *')
        assert client.line() == b"* BYE Session invalidated - AccessTokenExpired"
        assert client.closed()
        # the same (now expired) token is refused at sign-in
        assert _auth_lines(tenant, alice, token) == [AUTH_FAILED]
    finally:
        tenant.admin.advance_clock(-2 * 3600)  # other tests share the tenant
        client.close()


def test_tokens_never_reach_the_logs(
    tenant: SandboxTenant, alice: str, bob: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token = app_token(tenant, "exoimap-daemon")
    for user in (alice, bob, "nobody@contoso.onmicrosoft.com"):
        _auth_lines(tenant, user, token)
    assert "signed in" in caplog.text  # the server did log the sign-ins...
    assert token not in caplog.text  # ...without the token
    assert token[-40:] not in caplog.text
