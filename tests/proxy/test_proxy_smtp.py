"""SMTP submission through ``exoimap proxy`` against the sandbox's Exchange SMTP endpoint, with
real clients: Python's ``smtplib`` (STARTTLS and implicit TLS, AUTH PLAIN and LOGIN) and
``curl`` (``smtp://`` with ``--ssl-reqd``). The client signs in with an app password; the
proxy relays with the account's OAuth2 token; the message arrives in the recipient's INBOX
(read back over IMAP through the proxy) and in the sender's Sent Items."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.auth.claims import TokenClaims
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.proxy.smtp_upstream import missing_smtp_permission
from exoimap.sandbox.tenant import DELEGATED_SCOPE, SandboxTenant
from tests.cli.sync_helpers import isolated_home, login, new_mailbox, signed_in_account
from tests.proxy.conftest import WorkAccount
from tests.proxy.proxy_helpers import (
    EXOIMAP,
    RunningProxy,
    book,
    curl_tls,
    free_port,
    mailbox_folder,
    proxy_process,
    running_proxy,
)

pytestmark = pytest.mark.xdist_group("sandbox")


def message(subject: str) -> bytes:
    return (
        f"From: the sender\r\nTo: the recipient\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@proxy.test>\r\n\r\n"
        "Scanned document attached (not really).\r\n.a line that starts with a dot\r\n"
    ).encode()


def folder_bodies(proxy: RunningProxy, user: str, password: str, folder: str) -> list[bytes]:
    """Every message of ``folder``, read over IMAP through the proxy."""
    with proxy.connect() as imap:
        imap.login(user, password)
        imap.select(f'"{folder}"', readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [part[1] for part in data if isinstance(part, tuple)]


@pytest.fixture
def sender(work_account: WorkAccount) -> tuple[str, str]:
    """A signed-in account ``work`` with an app password: (mailbox address, password)."""
    upn = work_account({})
    return upn, book(Paths.from_env()).add("scanner", "work").reveal()


def test_smtplib_sends_through_the_proxy_with_starttls_and_implicit_tls(
    sandbox_tenant: SandboxTenant, sender: tuple[str, str]
) -> None:
    upn, password = sender
    recipient = new_mailbox(sandbox_tenant, {})
    with running_proxy(Paths.from_env()) as proxy:
        with smtplib.SMTP("127.0.0.1", proxy.smtp_port, timeout=60) as client:
            client.ehlo()
            assert not client.has_extn("auth")  # no password before TLS
            client.starttls(context=proxy.client_context())
            client.ehlo()
            assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
            client.login(upn, password)  # smtplib picks PLAIN
            assert client.sendmail(upn, [recipient], message("first")) == {}
        context = proxy.client_context()
        with smtplib.SMTP_SSL("127.0.0.1", proxy.smtps_port, context=context) as client:
            client.ehlo()
            client.user, client.password = upn, password
            client.auth("LOGIN", client.auth_login, initial_response_ok=False)
            assert client.sendmail(upn, [recipient], message("second")) == {}
        sent = folder_bodies(proxy, upn, password, "Sent Items")
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == [
        message("first"),
        message("second"),
    ]
    assert sent == [message("first"), message("second")]
    submitted = [
        r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == "smtp.submitted"
    ]
    assert [(r.outcome, r.data["reply"], r.data["recipients"]) for r in submitted] == [
        ("success", 250, 1),
        ("success", 250, 1),
    ]
    assert submitted[0].data["size"] == len(message("first"))
    assert submitted[0].data["username"] == "scanner"
    assert all(recipient not in str(r.data) and upn not in str(r.data) for r in submitted)


def test_exchange_refusals_reach_the_client_and_a_wrong_password_sends_nothing(
    sandbox_tenant: SandboxTenant, sender: tuple[str, str]
) -> None:
    upn, password = sender
    other = new_mailbox(sandbox_tenant, {})
    with (
        running_proxy(Paths.from_env()) as proxy,
        smtplib.SMTP("127.0.0.1", proxy.smtp_port, timeout=60) as client,
    ):
        client.starttls(context=proxy.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            client.login(upn, "not-the-app-password")
        assert wrong.value.smtp_code == 535
        client.login(upn, password)
        # Exchange decides who may be the sender: its answer is passed on as it is.
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(other, [upn], message("as someone else"))
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.startswith(b"5.7.60 SMTP; Client does not have")
    assert mailbox_folder(sandbox_tenant, upn, "INBOX") == []


def test_curl_sends_a_mail_through_the_proxy(
    sandbox_tenant: SandboxTenant, sender: tuple[str, str], tmp_path: Path
) -> None:
    upn, password = sender
    recipient = new_mailbox(sandbox_tenant, {})
    mail = tmp_path / "mail.eml"
    mail.write_bytes(message("from curl"))
    with running_proxy(Paths.from_env()) as proxy:
        done = curl_tls(
            proxy,
            f"{upn}:{password}",
            *("--mail-from", upn, "--mail-rcpt", recipient, "--upload-file", str(mail)),
            f"smtp://127.0.0.1:{proxy.smtp_port}",
        )
    assert done.returncode == 0, done.stderr
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == [message("from curl")]


def test_a_token_exchange_refuses_is_replaced_and_the_message_still_goes(
    sandbox_tenant: SandboxTenant, sender: tuple[str, str]
) -> None:
    upn, password = sender
    recipient = new_mailbox(sandbox_tenant, {})
    moved = 3600.0 + 60.0  # past the lifetime of the token the vault holds
    with running_proxy(Paths.from_env()) as proxy:
        sandbox_tenant.admin.advance_clock(moved)
        try:
            with smtplib.SMTP_SSL(
                "127.0.0.1", proxy.smtps_port, context=proxy.client_context(), timeout=60
            ) as client:
                client.login(upn, password)
                assert client.sendmail(upn, [recipient], message("after expiry")) == {}
        finally:
            sandbox_tenant.admin.advance_clock(-moved)  # other tests share the tenant
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == [message("after expiry")]
    events = [r.event for r in audit.read_records(Paths.from_env().audit_dir)]
    assert "token.refreshed" in events[: events.index("smtp.submitted")]


def test_an_account_signed_in_without_smtp_send_is_told_how_to_fix_it(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {})  # IMAP only: least privilege
    password = book(Paths.from_env()).add("scanner", "work").reveal()
    recipient = new_mailbox(sandbox_tenant, {})
    with (
        running_proxy(Paths.from_env()) as proxy,
        submitted(proxy, upn, password) as client,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        client.sendmail(upn, [recipient], message("refused"))
    assert refused.value.smtp_code == 535
    assert b"lacks SMTP.Send; run `exoimap login work --smtp`" in refused.value.smtp_error
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == []

    login(sandbox_tenant, "work", upn, "--smtp")  # the fix it named, then a new proxy
    assert load_config().account("work").smtp_send
    with running_proxy(Paths.from_env()) as proxy, submitted(proxy, upn, password) as client:
        assert client.sendmail(upn, [recipient], message("sent")) == {}
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == [message("sent")]
    asked = [
        r.data["scopes"]
        for r in audit.read_records(Paths.from_env().audit_dir)
        if r.event == "token.requested"
    ]
    imap, smtp = DELEGATED_SCOPE, "https://outlook.office.com/SMTP.Send"
    assert asked == [[imap], [imap, smtp]]  # SMTP.Send only once asked for


@contextmanager
def submitted(proxy: RunningProxy, user: str, password: str) -> Iterator[smtplib.SMTP]:
    """An SMTP client of the proxy, signed in with an app password."""
    with smtplib.SMTP("127.0.0.1", proxy.smtp_port, timeout=60) as client:
        client.starttls(context=proxy.client_context())
        client.login(user, password)
        yield client


@pytest.mark.parametrize(
    ("flow", "scopes", "roles", "fix"),
    [
        ("device", ("IMAP.AccessAsUser.All",), (), "run `exoimap login work --smtp`"),
        ("device", ("IMAP.AccessAsUser.All", "SMTP.Send"), (), None),
        ("client-secret", (), ("IMAP.AccessAsApp",), "grant that application permission"),
        ("client-secret", (), ("IMAP.AccessAsApp", "SMTP.SendAsApp"), None),
    ],
)
def test_the_fix_named_for_a_token_without_smtp_permission(
    flow: str, scopes: tuple[str, ...], roles: tuple[str, ...], fix: str | None
) -> None:
    account = AccountConfig(name="work", email="work@example.test", flow=flow)
    claims = TokenClaims(audience="https://outlook.office.com", scopes=scopes, roles=roles)
    told = missing_smtp_permission(account, claims)
    assert told is None if fix is None else fix in (told or "")
    assert missing_smtp_permission(account, None) is None  # an opaque token: nothing to say


def test_the_proxy_warns_at_start_up_of_accounts_without_smtp_send(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "work", {})
    imap, smtp = free_port(), free_port()
    listen = ["--listen", f"127.0.0.1:{imap}", "--smtp-listen", f"127.0.0.1:{smtp}"]
    with proxy_process([EXOIMAP, "proxy", *listen], imap) as running:
        pass
    assert b"warning: work signs in without SMTP.Send" in running.errors
    assert b"exoimap login work --smtp" in running.errors
