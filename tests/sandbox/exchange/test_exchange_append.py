"""APPEND as Exchange Online answers it, byte for byte, with synchronising (``{n}``) and
non-synchronising (``{n+}``, LITERAL+) literals: flags it drops or keeps, APPENDUID, the
dates it keeps or gives, the maximum receive size, throttling and folders that refuse
mail."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exoimap.errors import ConfigError
from exoimap.protocol.dates import format_date_time
from exoimap.sandbox.exchange.config import NON_MAIL_FOLDERS, ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.tenant import SandboxTenant

from .conftest import Raw, signed_in

MESSAGE = b"From: a@example.com\r\nSubject: restore me\r\n\r\nbody\r\n"
TOO_LARGE = b"NO Maximum size of appendable message has been exceeded"
CONTINUATION = b"+ Ready for additional command text."
LITERALS = pytest.mark.parametrize("sync", [True, False], ids=["sync", "literal-plus"])


def append(
    client: Raw, tag: str, folder: str, data: bytes, *, sync: bool, extras: str = ""
) -> list[bytes]:
    """``tag APPEND folder [extras] {n}`` (or ``{n+}``) with ``data``; every line the server
    sent up to its tagged answer, ``+`` included."""
    head = (
        f"{tag} APPEND {folder} {extras}{' ' if extras else ''}{{{len(data)}{'' if sync else '+'}}}"
    )
    if not sync:
        client.send(head.encode() + b"\r\n" + data)
        return client.until(tag)
    client.send(head)
    first = client.line()
    if not first.startswith(b"+"):
        return [first]  # refused: the message is never sent
    client.send(data)
    return [first, *client.until(tag)]


@contextmanager
def server_and_client(
    tenant: SandboxTenant, user: str, token: str, **settings: object
) -> Iterator[tuple[ExchangeControl, Raw]]:
    """A server with fresh mailboxes and ``settings``, and a client signed in to it."""
    with tenant.extra_server(ExchangeSettings.for_tests(**settings)) as server:
        client = signed_in(tenant, user, token, server.port)
        try:
            yield server, client
        finally:
            client.close()


def status(client: Raw, folder: str) -> tuple[int, int, int]:
    """MESSAGES, UIDNEXT, UIDVALIDITY of ``folder``."""
    lines = client.command("st", f"STATUS {folder} (MESSAGES UIDNEXT UIDVALIDITY)")
    match = re.fullmatch(
        rb"\* STATUS \S+ \(MESSAGES (\d+) UIDNEXT (\d+) UIDVALIDITY (\d+)\)", lines[0]
    )
    assert match is not None, lines
    assert lines[1] == b"st OK STATUS completed."
    messages, uidnext, uidvalidity = (int(n) for n in match.groups())
    return messages, uidnext, uidvalidity


# --- flags, APPENDUID, dates --------------------------------------------------------------


@LITERALS
def test_append_drops_flagged_and_keywords_keeps_mdnsent_and_the_date(
    tenant: SandboxTenant, alice: str, alice_token: str, sync: bool
) -> None:
    with server_and_client(tenant, alice, alice_token) as (_, client):
        _, uidnext, uidvalidity = status(client, "Archive")
        extras = '(\\Seen \\Flagged $MDNSent $Custom) "05-Mar-2024 14:30:07 +0200"'
        lines = append(client, "a1", "Archive", MESSAGE, sync=sync, extras=extras)
        assert lines == [CONTINUATION] * sync + [
            b"a1 OK [APPENDUID %d %d] APPEND completed." % (uidvalidity, uidnext)
        ]
        client.command("s", "SELECT Archive")
        assert client.command("f1", f"UID FETCH {uidnext} (FLAGS INTERNALDATE)") == [
            b'* 1 FETCH (UID %d FLAGS ($MDNSent \\Seen) INTERNALDATE "05-Mar-2024 14:30:07 +0200")'
            % uidnext,
            b"f1 OK FETCH completed.",
        ]
        # a STORE afterwards keeps \Flagged (what a restore does after the APPEND)
        assert client.command("f2", f"UID STORE {uidnext} +FLAGS (\\Flagged)") == [
            b"* 1 FETCH (FLAGS ($MDNSent \\Flagged \\Seen) UID %d)" % uidnext,
            b"f2 OK STORE completed.",
        ]


def test_appenduid_numbers_follow_uidnext(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    with server_and_client(tenant, alice, alice_token) as (server, client):
        server.deliver(alice, MESSAGE, folder="Drafts")
        _, uidnext, uidvalidity = status(client, "Drafts")
        for n, sync in enumerate((True, False, True)):
            lines = append(client, f"u{n}", "Drafts", MESSAGE, sync=sync)
            assert lines[-1] == b"u%d OK [APPENDUID %d %d] APPEND completed." % (
                n,
                uidvalidity,
                uidnext + n,
            )
        assert status(client, "Drafts") == (4, uidnext + 3, uidvalidity)


def test_plain_imap_keeps_flagged(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    settings = {"append_drops_flags": frozenset()}
    with server_and_client(tenant, alice, alice_token, **settings) as (_, client):
        lines = append(client, "a1", "INBOX", MESSAGE, sync=False, extras="(\\Flagged)")
        assert lines[-1].startswith(b"a1 OK [APPENDUID ")
        client.command("s", "SELECT INBOX")
        assert client.command("f", "FETCH 1 (FLAGS)")[0] == b"* 1 FETCH (FLAGS (\\Flagged))"


def test_append_without_a_date_gets_the_server_clock(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    with server_and_client(tenant, alice, alice_token) as (_, client):
        moved = -3 * 86400  # three days back: no wall-clock date can pass for it
        tenant.admin.advance_clock(moved)
        try:
            before = int(tenant.identity.now())
            assert append(client, "a1", "Notes", MESSAGE, sync=True)[-1].startswith(b"a1 OK")
            after = int(tenant.identity.now())
        finally:
            tenant.admin.advance_clock(-moved)  # other tests share the tenant
        client.command("s", "SELECT Notes")
        line = client.command("f", "FETCH 1 (INTERNALDATE)")[0]
        shown = {
            b'* 1 FETCH (INTERNALDATE "%s")'
            % format_date_time(dt.datetime.fromtimestamp(t, dt.UTC)).encode()
            for t in range(before, after + 1)
        }
        assert line in shown


# --- the maximum receive size -------------------------------------------------------------


def test_oversize_synchronising_literal_is_refused_instead_of_the_continuation(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    with server_and_client(tenant, alice, alice_token, max_receive_size=1000) as (_, client):
        assert append(client, "a1", "INBOX", b"x" * 1001, sync=True) == [b"a1 " + TOO_LARGE]
        exact = b"Subject: at the limit\r\n\r\n".ljust(1000, b"y")
        assert append(client, "a2", "INBOX", exact, sync=True)[:1] == [CONTINUATION]
        assert status(client, "INBOX")[0] == 1
        assert client.command("n", "NOOP") == [b"n OK NOOP completed."]


def test_oversize_literal_plus_is_read_and_dropped(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    # The message looks like commands: a server that did not read it whole would run them.
    body = b"z1 LOGOUT\r\nz2 DELETE INBOX\r\n".ljust(5000, b"q")
    with server_and_client(tenant, alice, alice_token, max_receive_size=4000) as (_, client):
        assert append(client, "a1", "INBOX", body, sync=False) == [b"a1 " + TOO_LARGE]
        assert client.command("n", "NOOP") == [b"n OK NOOP completed."]
        assert status(client, "INBOX")[0] == 0


def test_oversize_can_be_refused_after_the_message(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    settings = {"max_receive_size": 1000, "refuse_oversize_before_literal": False}
    with server_and_client(tenant, alice, alice_token, **settings) as (_, client):
        for sync in (True, False):
            lines = append(client, "a1", "INBOX", b"x" * 1001, sync=sync)
            assert lines == [CONTINUATION] * sync + [b"a1 " + TOO_LARGE]
        assert append(client, "a2", "INBOX", b"x" * 1000, sync=True)[-1].startswith(b"a2 OK")
        assert status(client, "INBOX")[0] == 1


def test_receive_size_per_mailbox(
    tenant: SandboxTenant, alice: str, bob: str, alice_token: str
) -> None:
    settings = {"max_receive_size": 1000, "max_receive_size_by_mailbox": {alice.upper(): 3000}}
    bob_token = tenant.user_token(bob)
    with server_and_client(tenant, alice, alice_token, **settings) as (server, client):
        assert append(client, "a1", "INBOX", b"x" * 2000, sync=False)[-1].startswith(b"a1 OK")
        other = signed_in(tenant, bob, bob_token, server.port)
        try:
            assert append(other, "b1", "INBOX", b"x" * 2000, sync=False) == [b"b1 " + TOO_LARGE]
        finally:
            other.close()
        server.set_max_receive_size(alice, 1500)  # Set-Mailbox -MaxReceiveSize, while connected
        assert append(client, "a2", "INBOX", b"x" * 2000, sync=True) == [b"a2 " + TOO_LARGE]
        server.set_max_receive_size(alice, None)  # back to the configured limit
        assert append(client, "a3", "INBOX", b"x" * 2000, sync=True)[-1].startswith(b"a3 OK")
        with pytest.raises(ConfigError, match=r"150 MB"):
            server.set_max_receive_size(alice, 150 * 1024 * 1024 + 1)


def test_receive_size_settings_are_checked() -> None:
    assert ExchangeSettings().max_receive_size == 35 * 1024 * 1024
    assert ExchangeSettings(max_receive_size=150 * 1024 * 1024).receive_size("a@b") == 157286400
    for bad in ({"max_receive_size": 150 * 1024 * 1024 + 1}, {"max_receive_size": 0}):
        with pytest.raises(ConfigError, match="from 1 to 157286400"):
            ExchangeSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"max_receive_size_by_mailbox\.a@b"):
        ExchangeSettings.from_mapping({"max_receive_size_by_mailbox": {"a@b": "35MB"}})
    settings = ExchangeSettings.from_mapping(
        {
            "max_receive_size_by_mailbox": {"Alice@Contoso.example": 52428800},
            "append_drops_flags": ["\\flagged", "$MDNSent"],
            "refuse_append_to": ["Calendar"],
        }
    )
    assert settings.receive_size("alice@contoso.example") == 52428800
    assert settings.receive_size("bob@contoso.example") == 35 * 1024 * 1024
    assert settings.append_drops_flags == {"\\Flagged", "$MDNSent"}
    assert settings.refuse_append_to == ("Calendar",)


# --- throttling ---------------------------------------------------------------------------


@LITERALS
def test_append_is_throttled_like_other_commands(
    tenant: SandboxTenant, alice: str, alice_token: str, sync: bool
) -> None:
    policy = ThrottlePolicy(window_seconds=3600, max_messages=2, backoff_ms=4321)
    with server_and_client(tenant, alice, alice_token, throttle=policy) as (_, client):
        for n in range(2):
            assert append(client, f"a{n}", "INBOX", MESSAGE, sync=sync)[-1].startswith(
                b"a%d OK" % n
            )
        lines = append(client, "a2", "INBOX", MESSAGE, sync=sync)
        assert lines == [b"a2 NO Request is throttled. Suggested Backoff Time: 4321 milliseconds"]
        assert status(client, "INBOX")[0] == 2
        # stored messages count as served ones do: FETCH of a body is throttled too
        client.command("s", "SELECT INBOX")
        assert client.command("f", "FETCH 1 (BODY.PEEK[])") == [
            b"f NO Request is throttled. Suggested Backoff Time: 4321 milliseconds"
        ]


@LITERALS
def test_throttled_append_can_end_the_connection(
    tenant: SandboxTenant, alice: str, alice_token: str, sync: bool
) -> None:
    policy = ThrottlePolicy(max_bytes=10, status="BAD", bye=True)
    with server_and_client(tenant, alice, alice_token, throttle=policy) as (_, client):
        assert append(client, "a1", "INBOX", MESSAGE, sync=sync)[-1].startswith(b"a1 OK")
        assert append(client, "a2", "INBOX", MESSAGE, sync=sync) == [
            b"a2 BAD Request is throttled. Suggested Backoff Time: 300000 milliseconds"
        ]
        assert client.line() == b"* BYE Connection closed. 14"
        assert client.closed()


# --- folders that refuse mail, states -----------------------------------------------------


@LITERALS
def test_non_mail_folders(tenant: SandboxTenant, alice: str, alice_token: str, sync: bool) -> None:
    # [U] by default they take mail like any folder; a switch makes them refuse it
    with server_and_client(tenant, alice, alice_token) as (_, client):
        assert append(client, "c", "Calendar", MESSAGE, sync=sync)[-1].startswith(
            b"c OK [APPENDUID"
        )
    settings = {"refuse_append_to": NON_MAIL_FOLDERS}
    with server_and_client(tenant, alice, alice_token, **settings) as (_, client):
        for folder in NON_MAIL_FOLDERS:
            assert append(client, "n", folder, MESSAGE, sync=sync) == [b"n NO APPEND failed."]
            assert status(client, folder)[0] == 0
        assert append(client, "i", "INBOX", MESSAGE, sync=sync)[-1].startswith(b"i OK")


def test_append_in_the_wrong_state_counts_as_a_bad_command(raw: Raw) -> None:
    raw.line()
    for n, sync in enumerate((True, False)):
        assert append(raw, f"q{n}", "INBOX", MESSAGE, sync=sync) == [
            b"q%d BAD Command received in Invalid state." % n
        ]
    assert raw.command("q2", "SELECT INBOX") == [b"q2 BAD Command received in Invalid state."]
    assert raw.line() == b"* BYE Connection closed. 14"
    assert raw.closed()


def test_documented_settings_load() -> None:
    """The TOML example of docs/sandbox.md is what ``sandbox up --imap-settings`` reads."""
    text = (Path(__file__).parents[3] / "docs" / "sandbox.md").read_text("utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    settings = ExchangeSettings.from_mapping(tomllib.loads(block.group(1)))
    assert settings.append_drops_flags == frozenset()
    assert settings.receive_size("alice@contoso.onmicrosoft.com") == 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"refuse_append_to": "Calendar"}, "refuse_append_to must be a list of strings"),
        ({"append_drops_flags": "\\Flagged"}, "append_drops_flags must be a list of strings"),
        ({"max_receive_size_by_mailbox": [1]}, "must be a table of UPN = bytes"),
        ({"max_receive_size": True}, "max_receive_size must be a number of bytes"),
        ({"failures": ["x"]}, "invalid Exchange sandbox settings"),
    ],
)
def test_bad_append_settings_are_one_line_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ExchangeSettings.from_mapping(table)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_append_when_not_connected_counts_as_a_bad_command(tenant: SandboxTenant, bob: str) -> None:
    token = tenant.app_token("exoimap-daemon")  # FullAccess on alice only
    client = signed_in(tenant, bob, token)
    try:
        for n, sync in enumerate((True, False, True)):
            assert append(client, f"b{n}", "INBOX", MESSAGE, sync=sync) == [
                b"b%d BAD User is authenticated but not connected." % n
            ]
        assert client.line() == b"* BYE Connection closed. 14"
        assert client.closed()
    finally:
        client.close()


@LITERALS
def test_append_after_the_token_expired_ends_the_session(
    tenant: SandboxTenant, alice: str, sync: bool
) -> None:
    client = signed_in(tenant, alice, tenant.user_token(alice))
    tenant.admin.advance_clock(2 * 3600)
    try:
        head = f"a1 APPEND INBOX {{{len(MESSAGE)}{'' if sync else '+'}}}"
        client.send(head if sync else head.encode() + b"\r\n" + MESSAGE)
        assert client.line() == b"* BYE Session invalidated - AccessTokenExpired"
        assert client.closed()
    finally:
        tenant.admin.advance_clock(-2 * 3600)  # other tests share the tenant
        client.close()


def test_pipelined_appends_are_answered_in_order(
    tenant: SandboxTenant, alice: str, alice_token: str
) -> None:
    # More than one write's worth of answers (the session writes every 64 events)
    count = 150
    with server_and_client(tenant, alice, alice_token) as (_, client):
        _, uidnext, uidvalidity = status(client, "Archive")
        batch = b"".join(
            b"p%d APPEND Archive (\\Seen) {%d+}\r\n%s\r\n"
            % (n, len(MESSAGE) + 3, MESSAGE + b"%03d" % n)
            for n in range(count)
        )
        client.sock.sendall(batch)
        answers = [client.line() for _ in range(count)]
        assert answers == [
            b"p%d OK [APPENDUID %d %d] APPEND completed." % (n, uidvalidity, uidnext + n)
            for n in range(count)
        ]
        client.command("s", "SELECT Archive")
        client.send(f"f UID FETCH {uidnext + count - 1} (BODY.PEEK[])")
        assert client.line().endswith(b"{%d}" % (len(MESSAGE) + 3))
        assert client.exact(len(MESSAGE) + 3) == MESSAGE + b"%03d" % (count - 1)
        assert client.until("f") == [b")", b"f OK FETCH completed."]
