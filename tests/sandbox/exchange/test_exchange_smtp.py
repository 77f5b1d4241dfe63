"""The sandbox's SMTP submission endpoint through Python's ``smtplib``: STARTTLS first,
AUTH XOAUTH2 with a real MSAL token, delivery into the recipient's INBOX and a copy into the
sender's Sent Items (read back over IMAP), and Exchange's refusals."""

from __future__ import annotations

import smtplib

import pytest

from exoimap.sandbox.tenant import DELEGATED_SCOPE, SandboxTenant
from tests.cli.sync_helpers import new_mailbox
from tests.proxy.proxy_helpers import mailbox_folder
from tests.sandbox.exchange.conftest import app_token, new_daemon, user_token

pytestmark = pytest.mark.xdist_group("sandbox")

SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
#: what a client that reads and sends asks for
SEND_SCOPES = f"{DELEGATED_SCOPE} {SMTP_SCOPE}"

MESSAGE = (
    b"From: sender\r\nTo: recipient\r\nSubject: through the sandbox SMTP\r\n"
    b"Message-ID: <smtp-test-1@example.test>\r\n\r\nHello over SMTP.\r\n.leading dot\r\n"
)


def submission(tenant: SandboxTenant) -> smtplib.SMTP:
    client = smtplib.SMTP(tenant.imap_host, tenant.smtp_port, timeout=30)
    client.ehlo()
    client.starttls(context=tenant.ssl_context())
    client.ehlo()
    return client


def signed_in(tenant: SandboxTenant, upn: str, scope: str = SEND_SCOPES) -> smtplib.SMTP:
    client = submission(tenant)
    token = user_token(tenant, upn, scope)
    client.auth("XOAUTH2", lambda _=None: f"user={upn}\x01auth=Bearer {token}\x01\x01")
    return client


def test_a_token_without_smtp_send_is_refused_as_exchange_does(tenant: SandboxTenant) -> None:
    sender = new_mailbox(tenant, {})
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        signed_in(tenant, sender, DELEGATED_SCOPE)  # IMAP only: enough for IMAP, not SMTP
    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error.startswith(b"5.7.3 Authentication unsuccessful")
    # SMTP.Send alone is what SMTP needs
    with signed_in(tenant, sender, SMTP_SCOPE) as client:
        assert client.sendmail(sender, [sender], MESSAGE) == {}


def test_a_submitted_message_reaches_the_inbox_and_sent_items(tenant: SandboxTenant) -> None:
    sender, recipient = new_mailbox(tenant, {}), new_mailbox(tenant, {})
    with signed_in(tenant, sender) as client:
        refused = client.sendmail(sender, [recipient.upper()], MESSAGE)
    assert refused == {}
    assert mailbox_folder(tenant, recipient, "INBOX") == [MESSAGE]
    assert mailbox_folder(tenant, sender, "Sent Items") == [MESSAGE]
    assert mailbox_folder(tenant, sender, "INBOX") == []


def test_auth_is_offered_only_after_starttls_and_only_xoauth2(tenant: SandboxTenant) -> None:
    with smtplib.SMTP(tenant.imap_host, tenant.smtp_port, timeout=30) as plain:
        plain.ehlo()
        assert plain.has_extn("starttls")
        assert not plain.has_extn("auth")
        code, text = plain.docmd("MAIL FROM:<someone@example.test>")
        assert code == 530
        assert b"STARTTLS" in text
    with submission(tenant) as client:
        assert client.esmtp_features["auth"].split() == ["XOAUTH2"]


def test_a_bad_token_is_refused_as_exchange_does(tenant: SandboxTenant) -> None:
    sender = new_mailbox(tenant, {})
    with submission(tenant) as client, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.auth("XOAUTH2", lambda _=None: f"user={sender}\x01auth=Bearer not-a-token\x01\x01")
    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error.startswith(b"5.7.3 Authentication unsuccessful")


def test_sending_as_another_mailbox_or_to_nobody_is_refused(tenant: SandboxTenant) -> None:
    sender, other = new_mailbox(tenant, {}), new_mailbox(tenant, {})
    with signed_in(tenant, sender) as client:
        code, text = client.docmd(f"MAIL FROM:<{other}>")
        assert (code, text.split(b";")[0]) == (550, b"5.7.60 SMTP")
        assert client.docmd(f"MAIL FROM:<{sender}>")[0] == 250
        code, text = client.docmd(f"RCPT TO:<nobody@{tenant.tenant_domain}>")
        assert code == 550
        assert text.startswith(b"5.1.10 RESOLVER.ADR.RecipientNotFound")
    assert mailbox_folder(tenant, other, "INBOX") == []


def test_an_app_needs_smtp_send_as_app_to_submit(tenant: SandboxTenant) -> None:
    mailbox = new_mailbox(tenant, {})
    imap_role = "https://outlook.office365.com/IMAP.AccessAsApp"
    reader = new_daemon(tenant, permissions=(imap_role,), grant=(mailbox,))
    sender = new_daemon(
        tenant,
        permissions=(imap_role, "https://outlook.office365.com/SMTP.SendAsApp"),
        grant=(mailbox,),
    )
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        signed_in_as_app(tenant, reader, mailbox)
    assert refused.value.smtp_code == 535
    with signed_in_as_app(tenant, sender, mailbox) as client:
        assert client.sendmail(mailbox, [mailbox], MESSAGE) == {}
    assert mailbox_folder(tenant, mailbox, "INBOX") == [MESSAGE]


def signed_in_as_app(tenant: SandboxTenant, app: str, mailbox: str) -> smtplib.SMTP:
    client = submission(tenant)
    token = app_token(tenant, app)
    try:
        client.auth("XOAUTH2", lambda _=None: f"user={mailbox}\x01auth=Bearer {token}\x01\x01")
    except smtplib.SMTPException:
        client.close()
        raise
    return client
