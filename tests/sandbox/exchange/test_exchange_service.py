"""Service behaviour: IDLE pushes, the connection limit, throttling, timeouts, quirk
switches, fault injection and persistence."""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path

from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.exchange.mailboxes import Mailboxes
from exoimap.sandbox.tenant import SandboxTenant

from .conftest import Raw, signed_in

MESSAGE = b"From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


def test_idle_pushes_changes_from_another_client(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    settings = ExchangeSettings.for_tests()
    with tenant.extra_server(settings) as server:
        first = server.deliver(alice, MESSAGE)
        second = server.deliver(alice, MESSAGE)
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            assert client.command("s", "SELECT INBOX")[0] == b"* 2 EXISTS"
            client.send("i IDLE")
            assert client.line() == b"+ IDLE accepted, awaiting DONE command."
            third = server.deliver(alice, MESSAGE)
            assert client.line() == b"* 3 EXISTS"
            server.set_flags(alice, "INBOX", [second], ["\\Flagged"], "add")
            assert client.line() == b"* 2 FETCH (FLAGS (\\Flagged))"
            server.delete(alice, "INBOX", [first])
            assert client.line() == b"* 1 EXPUNGE"
            server.move(alice, "INBOX", [third], "Archive")
            assert client.line() == b"* 2 EXPUNGE"
            client.send("DONE")
            assert client.line() == b"i OK IDLE completed."
            assert client.command("n", "UID SEARCH ALL") == [
                b"* SEARCH %d" % second,
                b"n OK SEARCH completed.",
            ]
        finally:
            client.close()


def test_connection_limit_per_mailbox(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    with tenant.extra_server(ExchangeSettings.for_tests(max_connections_per_mailbox=2)) as server:
        clients = [signed_in(tenant, alice, alice_token, server.port) for _ in range(3)]
        try:
            assert clients[0].command("a", "NOOP") == [b"a OK NOOP completed."]
            assert clients[2].command("a", "NOOP") == [
                b"a BAD User is authenticated but not connected."
            ]
            clients[0].command("z", "LOGOUT")
            clients[0].close()
            deadline = time.monotonic() + 5
            while server.run(lambda: server.server.mailboxes.get(alice).connections) > 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            clients[0] = signed_in(tenant, alice, alice_token, server.port)
            assert clients[0].command("b", "NOOP") == [b"b OK NOOP completed."]
        finally:
            for client in clients:
                client.close()


def test_throttling_by_messages(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    policy = ThrottlePolicy(window_seconds=60, max_messages=3, backoff_ms=12345)
    with tenant.extra_server(ExchangeSettings.for_tests(throttle=policy)) as server:
        for _ in range(5):
            server.deliver(alice, MESSAGE)
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            client.command("s", "SELECT INBOX")
            assert client.command("f1", "UID FETCH 1:3 (BODY.PEEK[])")[-1] == (
                b"f1 OK FETCH completed."
            )
            assert client.command("f2", "UID FETCH 4 (BODY.PEEK[])") == [
                b"f2 NO Request is throttled. Suggested Backoff Time: 12345 milliseconds"
            ]
            assert client.command("f3", "UID FETCH 4 (FLAGS)")[-1] == b"f3 OK FETCH completed."
        finally:
            client.close()
    policy = ThrottlePolicy(max_bytes=10, status="BAD", bye=True)
    with tenant.extra_server(ExchangeSettings.for_tests(throttle=policy)) as server:
        server.deliver(alice, MESSAGE)
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            client.command("s", "SELECT INBOX")
            client.command("f1", "UID FETCH 1 (BODY.PEEK[])")
            assert client.command("f2", "UID FETCH 1 (BODY.PEEK[])") == [
                b"f2 BAD Request is throttled. Suggested Backoff Time: 300000 milliseconds"
            ]
            assert client.line() == b"* BYE Connection closed. 14"
        finally:
            client.close()


def test_idle_timeouts(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    settings = ExchangeSettings.for_tests(preauth_timeout=0.3, authenticated_timeout=0.5)
    with tenant.extra_server(settings) as server:
        client = Raw.connect(tenant, server.port)
        try:
            client.line()
            start = time.monotonic()
            assert client.line() == b"* BYE Connection is closed. 13"
            assert 0.25 < time.monotonic() - start < 3
            assert client.closed()
        finally:
            client.close()
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            client.send("i IDLE")
            assert client.line().startswith(b"+ IDLE")
            assert client.line() == b"* BYE Connection is closed. 13"
        finally:
            client.close()


def test_quirk_switches(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    settings = ExchangeSettings.for_tests(
        status_trailing_space=True, bare_copyuid=True, estimated_rfc822_size=True
    )
    with tenant.extra_server(settings) as server:
        uid = server.deliver(alice, MESSAGE)
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            lines = client.command("s", "STATUS INBOX (MESSAGES)")
            assert lines[0] == b"* STATUS INBOX (MESSAGES 1) "
            client.command("x", "SELECT INBOX")
            size = client.command("f", f"UID FETCH {uid} (RFC822.SIZE)")[0]
            reported = int(re.search(rb"RFC822.SIZE (\d+)", size).group(1))  # type: ignore[union-attr]
            assert reported != len(MESSAGE)
            lines = client.command("m", f"UID MOVE {uid} Archive")
            assert re.fullmatch(rb"\[COPYUID \d+ %d 1\]" % uid, lines[0])
            assert lines[1:] == [b"* 1 EXPUNGE", b"m OK MOVE completed."]
        finally:
            client.close()


def test_faults_drop_restart_and_uidvalidity(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    with tenant.extra_server(ExchangeSettings.for_tests()) as server:
        server.deliver(alice, MESSAGE * 100)
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            client.command("s", "SELECT INBOX")
            server.faults.drop_after_bytes = 1500  # greeting + sign-in + SELECT are < 1000
            client.send("f UID FETCH 1 (BODY.PEEK[])")
            received = _read_until_closed(client)
            assert received.startswith(b"* 1 FETCH (UID 1 BODY[] {4200}")
            assert b"f OK" not in received
        finally:
            server.faults.clear()
            client.close()
        client = signed_in(tenant, alice, alice_token, server.port)
        try:
            old = client.command("s", "SELECT INBOX")[5]
            server.restart()
            assert client.closed()
        finally:
            client.close()
        new_validity = server.reset_uidvalidity(alice, "INBOX")
        client = signed_in(tenant, alice, alice_token, server.port)  # same port after restart
        try:
            lines = client.command("s", "SELECT INBOX")
            assert lines[5] == b"* OK [UIDVALIDITY %d] UIDVALIDITY value" % new_validity
            assert lines[5] != old
        finally:
            client.close()


def _read_until_closed(client: Raw) -> bytes:
    received = client.buffer
    while True:
        try:
            data = client.sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            return received
        if not data:
            return received
        received += data


def test_delay_fault_slows_responses(tenant: SandboxTenant) -> None:
    with tenant.extra_server(ExchangeSettings.for_tests()) as server:
        server.faults.delay = 0.3
        client = Raw.connect(tenant, server.port)
        try:
            client.line()
            start = time.monotonic()
            client.command("n", "NOOP")
            assert time.monotonic() - start >= 0.3
        finally:
            client.close()


def test_mailboxes_persist(tmp_path: Path) -> None:
    settings = ExchangeSettings.for_tests()
    first = Mailboxes(settings, tmp_path)
    box = first.get("Carol@Contoso.example")
    uid = box.store.add_message("Sent Items", MESSAGE, flags=["\\Seen"])
    box.subscribed.discard("Notes")
    first.save()
    again = Mailboxes(settings, tmp_path).get("carol@contoso.example")
    assert again.store.message_bytes("Sent Items", uid) == MESSAGE
    assert "Notes" not in again.subscribed
    assert "Journal" in again.subscribed
    assert (tmp_path.stat().st_mode & 0o777) == 0o700
