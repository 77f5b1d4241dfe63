"""The client against a real Dovecot: sign-in, pipelined streamed fetch, recovery."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from exoimap.errors import ImapAuthenticationFailed
from exoimap.net.credentials import OAuth2Credentials, PasswordCredentials, StaticToken
from exoimap.net.imap import Endpoint, FetchedBody, ImapClient, RetryPolicy
from exoimap.net.session import NetEvent
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.secrets import Secret
from tests.net.proxy import CuttingProxy

pytestmark = pytest.mark.anyio

WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


def _message(n: int, size: int) -> bytes:
    head = f"From: s{n}@example.com\r\nSubject: message {n}\r\nMessage-ID: <{n}@x>\r\n\r\n".encode()
    line = (f"{n:06d} " * 12 + "\r\n").encode()
    body = (line * (size // len(line) + 1))[: max(0, size - len(head))]
    return head + body


def _seed(dovecot: DovecotServer, user: str, sizes: list[int]) -> list[bytes]:
    messages = [_message(n, size) for n, size in enumerate(sizes)]
    for n, content in enumerate(messages):
        flags = "S" if n % 2 else "FS"
        dovecot.write_message(user, content, flags=flags, when=WHEN, serial=n)
    dovecot.fix_ownership(user)
    return messages


class MintingTokens:
    """A token source that signs a fresh JWT on every call (like a refreshing provider)."""

    def __init__(self, dovecot: DovecotServer, user: str, lifetime: float = 3600) -> None:
        self.dovecot = dovecot
        self.user = user
        self.lifetime = lifetime
        self.calls = 0
        self.expires_at: float | None = None

    async def access_token(self) -> Secret[str]:
        self.calls += 1
        self.expires_at = time.time() + self.lifetime
        return self.dovecot.mint_token(self.user, self.lifetime)


async def _collect(client: ImapClient, uids: range, on_message: object = None) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    async for message in client.fetch("INBOX", uids):
        assert message.uid not in out, "a message was delivered twice"
        out[message.uid] = b"".join([c async for c in message.chunks])
        assert len(out[message.uid]) == message.size
        if callable(on_message):
            on_message(message)
    return out


def _crlf(data: bytes) -> bytes:
    return data  # messages are written with CRLF already; Dovecot sends them unchanged


async def test_xoauth2_sign_in_and_audit_events(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    events: list[NetEvent] = []
    tokens = MintingTokens(dovecot, mailbox)
    async with ImapClient(endpoint, OAuth2Credentials(mailbox, tokens), on_event=events.append):
        pass
    kinds = [e.kind for e in events]
    assert kinds == ["connect", "auth", "disconnect"]
    auth = events[1]
    assert auth.mechanism == "XOAUTH2"
    assert auth.user == mailbox
    assert auth.tls_version in ("TLSv1.2", "TLSv1.3")
    assert auth.host == "127.0.0.1"
    assert auth.bytes_out > 500  # the token went out
    assert events[2].bytes_in >= auth.bytes_in
    token = (await tokens.access_token()).reveal()
    assert all(token not in repr(e) and token[-20:] not in repr(e) for e in events)


async def test_oauthbearer_sign_in(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    creds = OAuth2Credentials(mailbox, MintingTokens(dovecot, mailbox), mechanism="oauthbearer")
    async with ImapClient(endpoint, creds) as client:
        status = await client.select("INBOX")
        assert status.uidvalidity > 0


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_password_sign_in(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint, mechanism: str
) -> None:
    creds = PasswordCredentials(mailbox, dovecot.password(mailbox), mechanism=mechanism)
    async with ImapClient(endpoint, creds) as client:
        assert (await client.select("INBOX")).exists == 0


async def test_expired_token_is_refused_with_causes_and_not_retried(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    events: list[NetEvent] = []
    expired = StaticToken(dovecot.mint_token(mailbox, lifetime=-60))
    client = ImapClient(endpoint, OAuth2Credentials(mailbox, expired), on_event=events.append)
    with pytest.raises(ImapAuthenticationFailed, match="expired") as info:
        await client.session()
    assert info.value.causes
    assert [e.kind for e in events] == ["connect", "auth_failed", "disconnect"]
    assert expired.token.reveal() not in str(info.value)


async def test_wrong_password_is_explained(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    client = ImapClient(endpoint, PasswordCredentials(mailbox, Secret("not-the-password")))
    with pytest.raises(ImapAuthenticationFailed, match="password is wrong"):
        await client.session()


async def test_fetch_streams_every_message_exactly_in_few_commands(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    sizes = [300, 5_000, 40_000, 200_000, 1_500_000] * 6  # small (buffered) and streamed
    expected = _seed(dovecot, mailbox, sizes)
    creds = PasswordCredentials(mailbox, dovecot.password(mailbox))
    seen: list[FetchedBody] = []
    async with ImapClient(endpoint, creds, retry=RetryPolicy(fetch_batch=8)) as client:
        await client.select("INBOX")
        before = (await client.session()).commands_sent
        got = await _collect(client, range(1, 31), seen.append)
        used = (await client.session()).commands_sent - before
    assert [got[u] for u in range(1, 31)] == expected
    assert used == 4  # 30 messages in batches of 8: one UID FETCH per batch
    assert "\\Flagged" in seen[0].flags
    assert seen[1].internal_date == WHEN


async def test_missing_uids_are_skipped(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    expected = _seed(dovecot, mailbox, [1000, 2000])
    creds = PasswordCredentials(mailbox, dovecot.password(mailbox))
    async with ImapClient(endpoint, creds) as client:
        got = await _collect(client, range(1, 50))
    assert got == {1: expected[0], 2: expected[1]}


@pytest.mark.parametrize(
    "cuts",
    [
        [60_000],  # inside the first streamed body: resumes that body from its offset
        [5_000, 700_000, 2_500_000],  # greeting-time, mid-batch and a late cut
    ],
)
async def test_fetch_resumes_after_dropped_connections(
    dovecot: DovecotServer, mailbox: str, cuts: list[int | None]
) -> None:
    sizes = [300, 150_000, 20_000, 900_000, 3_000] * 4
    expected = _seed(dovecot, mailbox, sizes)
    events: list[NetEvent] = []
    async with CuttingProxy(dovecot.imaps_port, cuts=list(cuts)) as proxy:
        endpoint = Endpoint("127.0.0.1", proxy.port, TLSPolicy(ca_file=dovecot.ca_file))
        creds = OAuth2Credentials(mailbox, MintingTokens(dovecot, mailbox))
        retry = RetryPolicy(fetch_batch=6, backoff_base=0.01)
        async with ImapClient(endpoint, creds, retry=retry, on_event=events.append) as client:
            got = await _collect(client, range(1, len(sizes) + 1))
        assert proxy.connections == len(cuts) + 1
    assert [got[u] for u in range(1, len(sizes) + 1)] == expected
    assert sum(e.kind == "retry" for e in events) == len(cuts)
    resumes = [e.detail for e in events if e.kind == "resume"]
    if cuts == [60_000]:  # the cut fell inside message 2's body: only its rest was fetched
        assert len(resumes) == 1
        assert resumes[0].startswith("message 2: continuing at byte ")


async def test_session_is_renewed_before_the_token_expires(
    dovecot: DovecotServer, mailbox: str, endpoint: Endpoint
) -> None:
    expected = _seed(dovecot, mailbox, [2_000, 80_000, 500] * 8)
    now = [time.time()]
    tokens = MintingTokens(dovecot, mailbox)

    class ShortLived(MintingTokens):
        async def access_token(self) -> Secret[str]:
            token = await super().access_token()
            self.expires_at = now[0] + 600  # as far as the client can tell
            return token

    short = ShortLived(dovecot, mailbox)
    events: list[NetEvent] = []
    retry = RetryPolicy(fetch_batch=4, fetch_depth=1, refresh_margin=300)
    client = ImapClient(
        endpoint,
        OAuth2Credentials(mailbox, short),
        retry=retry,
        clock=lambda: now[0],
        on_event=events.append,
    )

    def tick(_: FetchedBody) -> None:
        now[0] += 100  # each message "takes" 100 s: the session must be renewed every ~3

    async with client:
        got = await _collect(client, range(1, 25), tick)
    assert [got[u] for u in range(1, 25)] == expected
    assert client.sessions_opened >= 4
    assert sum(e.kind == "refresh" for e in events) == client.sessions_opened - 1
    assert not any(e.kind == "retry" for e in events)
    assert tokens.calls == 0
    assert short.calls == client.sessions_opened
