"""The proxy's Prometheus metrics, scraped over HTTP while imaplib and smtplib use the proxy
against the sandbox: each counter moves by exactly what the clients did."""

from __future__ import annotations

import imaplib
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.config import Paths
from exoimap.protocol import commands as c
from exoimap.protocol.types import SequenceSet
from exoimap.proxy.meter import COMMAND_NAMES, command_name
from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, new_mailbox, signed_in_account
from tests.proxy.proxy_helpers import MetricsPage, RunningProxy, book, metered_proxy, moved

pytestmark = pytest.mark.xdist_group("sandbox")

COMMANDS = "exoimap_proxy_commands_total"
LATENCY_COUNT = "exoimap_proxy_added_latency_seconds_count"
LATENCY_SUM = "exoimap_proxy_added_latency_seconds_sum"
CLIENTS_OPEN = "exoimap_proxy_client_connections_open"
UPSTREAMS_OPEN = "exoimap_proxy_upstream_connections_open"
BYTES = "exoimap_proxy_bytes_total"


@pytest.fixture
def account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_tenant: SandboxTenant
) -> tuple[str, str]:
    """A signed-in account ``work`` (SMTP.Send too) with an app password: (address, password)."""
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2}, smtp=True)
    return upn, book(Paths.from_env()).add("laptop", "work").reveal()


@pytest.fixture
def proxy(account: tuple[str, str]) -> Iterator[tuple[RunningProxy, MetricsPage]]:
    with metered_proxy(Paths.from_env()) as running:
        yield running


def label(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_a_session_counts_its_commands_bytes_latency_and_connections(
    proxy: tuple[RunningProxy, MetricsPage], account: tuple[str, str]
) -> None:
    running, page = proxy
    upn, password = account
    before = page.scrape()
    client = running.connect()
    with pytest.raises(imaplib.IMAP4.error, match="Invalid credentials"):
        client.login(upn, "not-the-app-password")
    client.login(upn, password)
    assert client.select("INBOX")[0] == "OK"
    status, data = client.fetch("1", "(BODY.PEEK[])")
    assert status == "OK"
    body = data[0][1]  # type: ignore[index]
    assert isinstance(body, bytes)
    assert client.uid("FETCH", "1:*", "(FLAGS)")[0] == "OK"
    during = page.scrape()
    assert page.value(CLIENTS_OPEN, listener="imaps") == 1
    assert page.value(UPSTREAMS_OPEN, protocol="imap") == 1
    client.logout()
    page.wait_for(CLIENTS_OPEN, 0, listener="imaps")
    page.wait_for(UPSTREAMS_OPEN, 0, protocol="imap")
    after = page.scrape()

    assert moved(before, during, "exoimap_proxy_auth_failures_total") == {(): 1}
    assert moved(before, after, COMMANDS) == {
        label(command="CAPABILITY"): 1,  # imaplib asks once it is connected
        label(command="LOGIN"): 2,
        label(command="SELECT"): 1,
        label(command="FETCH"): 1,
        label(command="UID FETCH"): 1,
        label(command="LOGOUT"): 1,
    }
    # The proxy answers CAPABILITY and LOGIN itself; the others were relayed and each timed once.
    assert moved(before, after, LATENCY_COUNT) == {
        label(command="SELECT"): 1,
        label(command="FETCH"): 1,
        label(command="UID FETCH"): 1,
        label(command="LOGOUT"): 1,
    }
    assert all(seconds > 0 for seconds in moved(before, after, LATENCY_SUM).values())
    assert moved(before, after, "exoimap_proxy_client_connections_total") == {
        label(listener="imaps"): 1
    }
    relayed = moved(before, after, BYTES)
    assert relayed[label(protocol="imap", direction="to_client")] > len(body)
    assert relayed[label(protocol="imap", direction="to_upstream")] > 0
    assert moved(before, after, "exoimap_proxy_rate_limited_total") == {}


def test_wrong_passwords_are_counted_then_rate_limited(
    proxy: tuple[RunningProxy, MetricsPage], account: tuple[str, str]
) -> None:
    running, page = proxy
    upn, _ = account
    before = page.scrape()
    client = running.connect()
    try:
        for _ in range(5):  # the limiter's free failures
            with pytest.raises(imaplib.IMAP4.error, match="Invalid credentials"):
                client.login(upn, "a guess")
        with pytest.raises(imaplib.IMAP4.error, match="Too many failed sign-ins"):
            client.login(upn, "one guess too many")
    finally:
        client.shutdown()
    after = page.scrape()
    assert moved(before, after, "exoimap_proxy_auth_failures_total") == {(): 5}
    assert moved(before, after, "exoimap_proxy_rate_limited_total") == {(): 1}


def test_healed_and_renewed_sessions_are_counted(
    proxy: tuple[RunningProxy, MetricsPage],
    account: tuple[str, str],
    sandbox_tenant: SandboxTenant,
) -> None:
    running, page = proxy
    upn, password = account
    healed = "exoimap_proxy_sessions_healed_total"
    client = running.connect()
    advanced = 0.0
    try:
        client.login(upn, password)
        client.select("INBOX", readonly=True)
        before = page.scrape()
        running.upstream_clock.shift = 3600 - 200  # the token now ends within the margin
        assert client.noop()[0] == "OK"
        running.upstream_clock.shift = 0
        renewed = page.scrape()
        advanced = 7200.0
        sandbox_tenant.admin.advance_clock(advanced)  # the upstream token is now expired
        assert client.uid("FETCH", "1:*", "(FLAGS)")[0] == "OK"
        after = page.scrape()
        client.logout()
    finally:
        sandbox_tenant.admin.advance_clock(-advanced)
    assert moved(before, renewed, healed) == {label(reason="renewed"): 1}
    assert moved(renewed, after, healed) == {label(reason="token_expired"): 1}
    # each replaced session was closed: one upstream connection throughout
    assert after[(UPSTREAMS_OPEN, label(protocol="imap"))] == 1


def test_smtp_submission_is_counted(
    proxy: tuple[RunningProxy, MetricsPage],
    account: tuple[str, str],
    sandbox_tenant: SandboxTenant,
) -> None:
    running, page = proxy
    upn, password = account
    recipient = new_mailbox(sandbox_tenant, {})
    mail = b"Subject: counted\r\n\r\nOne message.\r\n"
    before = page.scrape()
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=60) as client:
        client.starttls(context=running.client_context())
        client.login(upn, password)
        assert client.sendmail(upn, [recipient], mail) == {}
        assert page.value(CLIENTS_OPEN, listener="smtp") == 1
    page.wait_for(CLIENTS_OPEN, 0, listener="smtp")
    after = page.scrape()
    assert moved(before, after, "exoimap_proxy_messages_submitted_total") == {
        label(outcome="success"): 1
    }
    assert moved(before, after, "exoimap_proxy_client_connections_total") == {
        label(listener="smtp"): 1
    }
    assert moved(before, after, BYTES) == {
        label(protocol="smtp", direction="to_upstream"): len(mail)
    }
    assert after[(UPSTREAMS_OPEN, label(protocol="smtp"))] == 0


def test_command_labels_are_a_fixed_set() -> None:
    every = {0: c.Noop(), 1: c.Fetch(SequenceSet.of(1), ("FLAGS",), uid=True), 2: c.Done()}
    assert command_name(every[0]) == "NOOP"
    assert command_name(every[1]) == "UID FETCH"
    assert command_name(every[2]) == "other"  # not a command a client sends on its own
    assert command_name("X-ANYTHING-A-CLIENT-MADE-UP") == "other"
    assert {"UID STORE", "STATUS", "APPEND", "other"} <= COMMAND_NAMES
    assert len(COMMAND_NAMES) < 50
