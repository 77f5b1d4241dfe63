"""``exoimap proxy`` as users run it, a process of its own: it serves a client signed in
with an app password, and its Prometheus metrics count a wrong app password."""

from __future__ import annotations

import imaplib
import smtplib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from exoimap.cli import main
from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import new_mailbox
from tests.proxy.conftest import WorkAccount
from tests.proxy.proxy_helpers import (
    EXOIMAP,
    cli_password_and_ca,
    free_port,
    mailbox_folder,
    proxy_process,
)

pytestmark = pytest.mark.xdist_group("sandbox")


@contextmanager
def proxy_command(*extra: str) -> Iterator[tuple[int, int]]:
    """``exoimap proxy`` running in this test's home: (IMAP port, metrics port)."""
    port, metrics = free_port(), free_port()
    command = [EXOIMAP, "proxy", "--listen", f"127.0.0.1:{port}", "--metrics-port", str(metrics)]
    with proxy_process([*command, *extra], port):
        yield port, metrics


def test_the_proxy_command_serves_and_counts_wrong_passwords(
    work_account: WorkAccount,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upn = work_account({"INBOX": 2})
    password, context = cli_password_and_ca("laptop", capsys)
    with proxy_command() as (port, metrics):
        client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=30)
        with pytest.raises(imaplib.IMAP4.error, match="Invalid credentials"):
            client.login(upn, "not-the-app-password")
        assert client.login(upn, password)[0] == "OK"
        status, data = client.select("INBOX", readonly=True)
        assert status == "OK"
        assert data == [b"2"]
        client.logout()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=30) as page:
            exposition = page.read().decode()
    assert 'exoimap_errors_total{kind="access_denied"} 1.0' in exposition
    # the proxy's own metrics, on the same endpoint
    assert "exoimap_proxy_auth_failures_total 1.0" in exposition
    assert 'exoimap_proxy_commands_total{command="EXAMINE"} 1.0' in exposition
    assert 'exoimap_proxy_added_latency_seconds_count{command="EXAMINE"} 1.0' in exposition


def test_the_proxy_command_relays_smtp_and_serves_a_starttls_port(
    work_account: WorkAccount,
    sandbox_tenant: SandboxTenant,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upn = work_account({})
    recipient = new_mailbox(sandbox_tenant, {})
    password, context = cli_password_and_ca("printer", capsys)
    smtp_port, starttls_port = free_port(), free_port()
    mail = b"Subject: scan\r\n\r\nA scanned page.\r\n"
    listeners = ["--smtp-listen", f"127.0.0.1:{smtp_port}", "--smtp-tls", "implicit"]
    with (
        proxy_command(*listeners, "--starttls-listen", f"127.0.0.1:{starttls_port}"),
        smtplib.SMTP_SSL("127.0.0.1", smtp_port, context=context, timeout=60) as client,
        imaplib.IMAP4("127.0.0.1", starttls_port, timeout=30) as imap,
    ):
        client.login(upn, password)
        assert client.sendmail(upn, [recipient], mail) == {}
        imap.starttls(ssl_context=context)
        assert imap.login(upn, password)[0] == "OK"
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == [mail]


def test_plaintext_smtp_off_loopback_is_refused_at_start_up(
    work_account: WorkAccount,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work_account({})
    capsys.readouterr()
    args = ["proxy", "--plaintext-on-loopback", "--smtp-listen", "0.0.0.0:1587"]
    assert main(args) == 2
    assert "refusing to listen without TLS on 0.0.0.0" in capsys.readouterr().err
