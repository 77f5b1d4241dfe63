"""Exchange Online behaviour: sign-in failures explained, throttling, token-expiry BYE,
the three-bad-commands rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.errors import ImapAuthenticationFailed
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.imap import Endpoint, ImapClient, RetryPolicy
from exoimap.net.session import NetEvent
from exoimap.net.tls import TLSPolicy
from exoimap.protocol import commands as c
from exoimap.sandbox.ca import LocalCA
from exoimap.secrets import Secret
from tests.net.exchange_like import ExchangeLike
from tests.net.servers import server_context

pytestmark = pytest.mark.anyio

USER = "user@contoso.example"


class RotatingTokens:
    """Hands out tok-1, tok-2, ... (each a fresh token, as after a refresh)."""

    def __init__(self) -> None:
        self.calls = 0
        self.expires_at: float | None = None

    async def access_token(self) -> Secret[str]:
        self.calls += 1
        return Secret(f"tok-{self.calls}-{'x' * 40}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    ca = LocalCA.load_or_create(tmp_path_factory.mktemp("exo-ca"))
    cert = ca.issue(("127.0.0.1",))
    return ca.cert_file, server_context(str(cert.cert_file), str(cert.key_file))


def _server(tls: tuple[Path, object], **kw: object) -> ExchangeLike:
    messages = {
        uid: f"Subject: {uid}\r\n\r\n{'z' * (uid * 997)}\r\n".encode() for uid in range(1, 41)
    }
    valid = {f"tok-{n}-{'x' * 40}" for n in range(1, 50)}
    return ExchangeLike(tls[1], messages=messages, valid_tokens=valid, **kw)  # type: ignore[arg-type]


def _client(
    tls: tuple[Path, object], port: int, tokens: object, events: list[NetEvent], **retry: object
) -> ImapClient:
    endpoint = Endpoint("127.0.0.1", port, TLSPolicy(ca_file=tls[0]))
    policy = RetryPolicy(backoff_base=0.01, **retry)  # type: ignore[arg-type]
    return ImapClient(
        endpoint, OAuth2Credentials(USER, tokens), retry=policy, on_event=events.append
    )  # type: ignore[arg-type]


async def _fetch_all(client: ImapClient) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    async for m in client.fetch("INBOX", range(1, 41)):
        assert m.uid not in out
        out[m.uid] = b"".join([x async for x in m.chunks])
    return out


async def test_authenticate_failed_lists_the_exchange_causes(tls: tuple[Path, object]) -> None:
    events: list[NetEvent] = []
    async with _server(tls) as server:
        client = _client(tls, server.port, StaticToken(Secret("not-a-valid-token-value")), events)
        with pytest.raises(ImapAuthenticationFailed) as info:
            await client.session()
    text = str(info.value)
    for cause in ("New-ServicePrincipal", "object id", "IMAP is disabled", "user= name"):
        assert cause in text
    assert "not-a-valid-token-value" not in text
    assert server.connections == 1  # never retried
    assert [e.kind for e in events][:2] == ["connect", "auth_failed"]


async def test_not_connected_is_explained_without_tripping_three_bads(
    tls: tuple[Path, object],
) -> None:
    events: list[NetEvent] = []
    async with _server(tls, not_connected=True) as server:
        client = _client(tls, server.port, RotatingTokens(), events)
        with pytest.raises(ImapAuthenticationFailed, match="FullAccess"):
            await client.session()
    assert server.bad_streak_max == 1


async def test_continuation_without_sasl_ir(tls: tuple[Path, object]) -> None:
    events: list[NetEvent] = []
    server = _server(tls, sasl_ir=False)
    async with server, _client(tls, server.port, RotatingTokens(), events) as client:
        assert (await client.select("INBOX")).uidvalidity == 14
        assert client.exchange
    assert len(server.auth_lines) == 1
    assert server.auth_lines[0].startswith(b"dXNlcj")  # base64 of "user="


async def test_throttling_waits_the_suggested_backoff_and_continues(
    tls: tuple[Path, object],
) -> None:
    events: list[NetEvent] = []
    waits: list[float] = []
    async with _server(tls, throttle_fetches=2, throttle_ms=1500) as server:
        client = _client(tls, server.port, RotatingTokens(), events, fetch_batch=10, fetch_depth=1)

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        client._sleep = sleep  # record the waits instead of sleeping 1.5 s twice
        async with client:
            got = await _fetch_all(client)
    assert sorted(got) == list(range(1, 41))
    assert waits == [1.5, 1.5]
    throttled = [e for e in events if e.kind == "throttled"]
    assert [e.wait for e in throttled] == [1.5, 1.5]
    assert "Suggested Backoff Time: 1500 milliseconds" in throttled[0].detail


async def test_a_throttled_sign_in_is_waited_out_like_a_throttled_command(
    tls: tuple[Path, object],
) -> None:
    events: list[NetEvent] = []
    waits: list[float] = []
    async with _server(tls, throttle_signins=2, throttle_ms=1500) as server:
        client = _client(tls, server.port, RotatingTokens(), events)

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        client._sleep = sleep
        async with client:
            assert (await client.select("INBOX")).uidvalidity == 14
    assert waits == [1.5, 1.5]
    assert len(server.auth_lines) == 3
    assert [e.wait for e in events if e.kind == "throttled"] == [1.5, 1.5]


async def test_token_expiry_bye_resumes_without_losing_or_repeating(
    tls: tuple[Path, object],
) -> None:
    events: list[NetEvent] = []
    tokens = RotatingTokens()
    server = _server(tls, expire_after_messages=7)
    async with server, _client(tls, server.port, tokens, events, fetch_batch=5) as client:
        got = await _fetch_all(client)
    assert got == server.messages
    assert server.connections == 6  # 40 messages, 7 per session
    assert tokens.calls == 6
    retries = [e for e in events if e.kind == "retry"]
    assert len(retries) == 5
    assert all("AccessTokenExpired" in e.detail for e in retries)


async def test_two_bads_in_a_row_make_the_client_reconnect_instead_of_a_third(
    tls: tuple[Path, object],
) -> None:
    events: list[NetEvent] = []
    async with _server(tls) as server:
        async with _client(tls, server.port, RotatingTokens(), events) as client:

            async def nonsense(session: object) -> None:
                from exoimap.net.session import ImapSession

                assert isinstance(session, ImapSession)
                for _ in range(2):
                    reply = await session.command(c.Namespace())  # the script answers BAD
                    assert not reply.ok
                await session.command(c.Namespace())  # must not be sent

            with pytest.raises(Exception, match="rejected"):
                await nonsense(await client.session())
        assert server.bad_streak_max == 2
