"""Python's imaplib through ``exoimap proxy`` against the sandbox's Exchange IMAP: signed in
with an app password, the mailbox reads byte for byte as it does directly, APPEND and IDLE
pass through, and an expired upstream token is healed without the client noticing."""

from __future__ import annotations

import imaplib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.config import Paths
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.proxy.proxy_helpers import RunningProxy, book, metered_proxy, running_proxy

pytestmark = pytest.mark.xdist_group("sandbox")


@pytest.fixture
def account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_tenant: SandboxTenant
) -> tuple[str, str]:
    """A signed-in account ``work`` and an app password for it: (mailbox address, password)."""
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3, "Archive": 2})
    password = book(Paths.from_env()).add("laptop", "work").reveal()
    return upn, password


@pytest.fixture
def proxy(account: tuple[str, str]) -> Iterator[RunningProxy]:
    with running_proxy(Paths.from_env()) as running:
        yield running


def direct(tenant: SandboxTenant, upn: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        tenant.imap_host, tenant.imap_port, ssl_context=tenant.ssl_context(), timeout=30
    )
    token = tenant.user_token(upn)
    client.authenticate("XOAUTH2", lambda _: tenant.xoauth2(upn, token))
    return client


def test_login_capabilities_and_byte_exact_reads(
    proxy: RunningProxy, account: tuple[str, str], sandbox_tenant: SandboxTenant
) -> None:
    upn, password = account
    client = proxy.connect()
    try:
        assert "AUTH=PLAIN" in client.capabilities
        assert not any("XOAUTH2" in cap for cap in client.capabilities)
        status, _ = client.login(upn, password)
        assert status == "OK"
        status, caps = client.capability()
        assert "XOAUTH2" not in caps[0].decode()
        assert "IDLE" in caps[0].decode()
        via_proxy = _read_all(client)
    finally:
        client.logout()
    plain = direct(sandbox_tenant, upn)
    try:
        assert via_proxy == _read_all(plain)
    finally:
        plain.logout()
    assert len(via_proxy["INBOX"]) == 3
    assert len(via_proxy["Archive"]) == 2


def _read_all(client: imaplib.IMAP4_SSL) -> dict[str, list[object]]:
    """LIST, then every message of INBOX and Archive: raw FETCH answers as sent."""
    status, listing = client.list()
    assert status == "OK"
    result: dict[str, list[object]] = {"LIST": sorted(listing)}
    for folder in ("INBOX", "Archive"):
        status, _ = client.select(folder, readonly=True)
        assert status == "OK"
        status, data = client.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        assert status == "OK"
        result[folder] = [item for item in data if isinstance(item, tuple)]
    return result


def test_authenticate_plain_append_and_fetch_back(
    proxy: RunningProxy, account: tuple[str, str]
) -> None:
    upn, password = account
    big = sample_message(77, 300_000)  # well over the streaming threshold both ways
    client = proxy.connect()
    try:
        status, _ = client.authenticate("PLAIN", lambda _: f"\0{upn}\0{password}".encode())
        assert status == "OK"
        status, data = client.append("INBOX", "(\\Seen)", None, big)
        assert status == "OK", data
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))  # type: ignore[union-attr]
        client.select("INBOX")
        status, fetched = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert status == "OK"
        assert isinstance(fetched[0], tuple)
        assert fetched[0][1] == big
    finally:
        client.logout()


def test_idle_wakes_on_new_mail(
    proxy: RunningProxy, account: tuple[str, str], sandbox_tenant: SandboxTenant
) -> None:
    upn, password = account
    client = proxy.connect()
    try:
        client.login(upn, password)
        client.select("INBOX")
        tag = client._new_tag().decode()
        client.send(f"{tag} IDLE\r\n".encode())
        assert client.readline().startswith(b"+")
        sandbox_tenant.exchange.deliver(upn, sample_message(90, 1_000))
        assert re.match(rb"\* 4 EXISTS", client.readline())
        client.send(b"DONE\r\n")
        while not (line := client.readline()).startswith(tag.encode()):
            assert line.startswith(b"*")
        assert b" OK " in line
    finally:
        client.logout()


def test_expired_upstream_token_is_healed(
    proxy: RunningProxy, account: tuple[str, str], sandbox_tenant: SandboxTenant
) -> None:
    upn, password = account
    client = proxy.connect()
    advanced = 0.0
    try:
        client.login(upn, password)
        client.select("INBOX", readonly=True)
        status, before = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert status == "OK"
        advanced = 7200.0
        sandbox_tenant.admin.advance_clock(advanced)  # the upstream token is now expired
        status, after = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert status == "OK"
        assert after == before
        assert proxy.sessions_healed() == 1
        status, _ = client.noop()  # still in INBOX, on the new session
        assert status == "OK"
        client.logout()
    finally:
        sandbox_tenant.admin.advance_clock(-advanced)


def test_session_is_renewed_before_the_token_expires(
    proxy: RunningProxy, account: tuple[str, str]
) -> None:
    upn, password = account
    client = proxy.connect()
    try:
        client.login(upn, password)
        client.select("Archive", readonly=True)
        status, before = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        assert status == "OK"
        proxy.upstream_clock.shift = 3600 - 200  # the token now ends within the margin
        status, after = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        proxy.upstream_clock.shift = 0
        assert proxy.sessions_renewed() == 1
        assert after == before  # on the new session, Archive still selected
        assert proxy.sessions_healed() == 0
    finally:
        client.logout()


def test_connections_per_mailbox_are_limited(account: tuple[str, str]) -> None:
    upn, password = account
    with running_proxy(Paths.from_env(), max_sessions=2) as proxy:
        first, second, third = proxy.connect(), proxy.connect(), proxy.connect()
        try:
            assert first.login(upn, password)[0] == "OK"
            assert second.login(upn, password)[0] == "OK"
            with pytest.raises(imaplib.IMAP4.error, match="2 proxy connections open"):
                third.login(upn, password)
            first.logout()
            assert _login_when_free(third, upn, password)  # a session was given back
        finally:
            second.logout()
            third.logout()


def _login_when_free(client: imaplib.IMAP4_SSL, upn: str, password: str) -> bool:
    """Sign in once the proxy has given back a session (it does so after the other client's
    connection has closed, a moment after that client read its LOGOUT answer)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.login(upn, password)[0] == "OK"
        except imaplib.IMAP4.error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("bye", [False, True], ids=["answer", "answer-and-bye"])
def test_throttling_is_a_delay_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_tenant: SandboxTenant, bye: bool
) -> None:
    # Two messages per 2 s window, then "NO Request is throttled ... 1000 milliseconds"
    # (and with ``bye``, Exchange's "* BYE Connection closed. 14" after it).
    throttle = ThrottlePolicy(window_seconds=2.0, max_messages=2, backoff_ms=1000, bye=bye)
    isolated_home(tmp_path, monkeypatch)
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests(throttle=throttle)) as server:
        upn = signed_in_account(sandbox_tenant, "busy", {"INBOX": 4}, exchange=server)
        password = book(Paths.from_env()).add("laptop", "busy").reveal()
        with metered_proxy(Paths.from_env()) as (proxy, page):
            client = proxy.connect()
            try:
                client.login(upn, password)
                client.select("INBOX", readonly=True)
                bodies = []
                for uid in range(1, 5):
                    status, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
                    assert status == "OK", data
                    bodies.append(data[0][1])  # type: ignore[index]
            finally:
                client.logout()
            # with BYE, each throttled session was replaced (once per throttling answer)
            assert (proxy.sessions_healed() > 0) is bye
            retries = page.value("exoimap_proxy_throttle_retries_total")
            healed = page.value("exoimap_proxy_sessions_healed_total", reason="throttled")
            assert healed == proxy.sessions_healed()
    assert bodies == [sample_message(n, 500 + 37 * n) for n in range(1, 5)]
    waits = [
        r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == "imap.throttled"
    ]
    assert waits
    assert all(r.data["wait_s"] == 1.0 for r in waits)
    assert retries == len(waits)  # each held command counted once


def test_pipelined_commands_keep_their_tags_and_garbage_is_answered_bad(
    proxy: RunningProxy, account: tuple[str, str]
) -> None:
    upn, password = account
    client = proxy.connect()
    try:
        client.login(upn, password)
        # three commands in one write, with the client's own tags, then a line that is not
        # a command the protocol core knows: each gets its answer under its own tag
        client.send(
            b"x1 SELECT INBOX\r\nzz9 UID FETCH 1:* (UID)\r\nq-7 NOOP\r\nbad1 GETQUOTAROOT INBOX\r\n"
        )
        tagged: dict[bytes, bytes] = {}
        untagged: list[bytes] = []
        while len(tagged) < 4:
            line = client.readline()
            assert line, "the proxy closed the connection"
            if line.startswith(b"* "):
                untagged.append(line)
            else:
                tag, _, rest = line.partition(b" ")
                tagged[tag] = rest
        assert tagged[b"x1"].startswith(b"OK [READ-WRITE]")
        assert tagged[b"zz9"].startswith(b"OK")
        assert tagged[b"q-7"].startswith(b"OK")
        assert tagged[b"bad1"].startswith(b"BAD")
        assert sum(b" FETCH (UID " in line for line in untagged) == 3
        assert client.noop()[0] == "OK"  # the session goes on
    finally:
        client.logout()


def test_append_refused_upstream_reaches_the_client_and_the_session_goes_on(
    proxy: RunningProxy, account: tuple[str, str]
) -> None:
    upn, password = account
    client = proxy.connect()
    try:
        client.login(upn, password)
        status, data = client.append("NoSuchFolder", None, None, sample_message(5, 70_000))
        assert status == "NO"
        assert b"TRYCREATE" in data[0]
        status, data = client.append("INBOX", None, None, sample_message(6, 1_000))
        assert status == "OK", data
        assert client.select("INBOX")[1] == [b"4"]
    finally:
        client.logout()
