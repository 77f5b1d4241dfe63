"""A scripted server speaking the Exchange Online texts from the spec, with faults on cue.

Until the sandbox Exchange server exists this stands in for it in the tests of behaviour
Dovecot cannot show: Exchange's sign-in failures, throttling answers, ``BYE Session
invalidated - AccessTokenExpired`` and the three-bad-commands rule.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field

GREETING = b"* OK The Microsoft Exchange IMAP4 service is ready. [TQBXAEgAUABSADIAMQA=]\r\n"
_AUTH = b"IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS"
CAPS_PRE = _AUTH + b" ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"
CAPS_POST = _AUTH + b" MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"


@dataclass
class ExchangeLike:
    ssl_context: ssl.SSLContext
    messages: dict[int, bytes] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=set)
    sasl_ir: bool = True
    not_connected: bool = False
    #: Answer this many UID FETCH commands with a throttling NO first.
    throttle_fetches: int = 0
    throttle_ms: int = 20
    #: Answer this many sign-ins (AUTHENTICATE) with a throttling NO first.
    throttle_signins: int = 0
    #: Per connection: after this many FETCH responses, BYE AccessTokenExpired mid-batch.
    expire_after_messages: int | None = None
    port: int = 0
    connections: int = 0
    bad_streak_max: int = 0
    fetch_commands: int = 0
    auth_lines: list[bytes] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> ExchangeLike:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _token_ok(self, blob: bytes) -> bool:
        try:
            text = base64.b64decode(blob).decode()
        except ValueError:
            return False
        token = text.split("auth=Bearer ", 1)[-1].rstrip("\x01")
        return token in self.valid_tokens

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._serve(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        authed = False
        bad = 0
        sent_messages = 0

        def reply(data: bytes) -> None:
            writer.write(data)

        if True:
            reply(GREETING)
            while line := await reader.readline():
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                words = rest.split(b" ")
                verb = words[0].upper()
                if authed and self.not_connected and verb != b"LOGOUT":
                    bad += 1
                    self.bad_streak_max = max(self.bad_streak_max, bad)
                    reply(tag + b" BAD User is authenticated but not connected.\r\n")
                    if bad >= 3:
                        reply(b"* BYE Connection closed. 14\r\n")
                        await writer.drain()
                        break
                    continue
                if verb == b"CAPABILITY":
                    caps = CAPS_POST if authed else CAPS_PRE
                    if not self.sasl_ir:
                        caps = caps.replace(b" SASL-IR", b"")
                    reply(b"* CAPABILITY " + caps + b"\r\n")
                    reply(tag + b" OK CAPABILITY completed.\r\n")
                elif verb == b"AUTHENTICATE":
                    if len(words) > 2 and self.sasl_ir:
                        blob = words[2]
                    else:
                        reply(b"+\r\n")
                        await writer.drain()
                        blob = (await reader.readline()).rstrip(b"\r\n")
                    self.auth_lines.append(blob)
                    if self.throttle_signins > 0:
                        self.throttle_signins -= 1
                        reply(
                            tag + b" NO Request is throttled. Suggested Backoff Time: %d "
                            b"milliseconds\r\n" % self.throttle_ms
                        )
                    elif self._token_ok(blob):
                        authed = True
                        reply(tag + b" OK AUTHENTICATE completed.\r\n")
                    else:
                        reply(tag + b" NO AUTHENTICATE failed.\r\n")
                elif verb in (b"SELECT", b"EXAMINE"):
                    uidnext = max(self.messages, default=0) + 1
                    reply(b"* %d EXISTS\r\n* 0 RECENT\r\n" % len(self.messages))
                    reply(b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)\r\n")
                    reply(b"* OK [UIDVALIDITY 14] UIDVALIDITY value\r\n")
                    reply(b"* OK [UIDNEXT %d] The next unique identifier value\r\n" % uidnext)
                    reply(tag + b" OK [READ-WRITE] SELECT completed.\r\n")
                elif verb == b"UID" and words[1].upper() == b"FETCH":
                    self.fetch_commands += 1
                    if self.throttle_fetches > 0:
                        self.throttle_fetches -= 1
                        reply(
                            tag + b" NO Request is throttled. Suggested Backoff Time: %d "
                            b"milliseconds\r\n" % self.throttle_ms
                        )
                        continue
                    for uid in _uids(words[2].decode(), self.messages):
                        if (
                            self.expire_after_messages is not None
                            and sent_messages >= self.expire_after_messages
                        ):
                            reply(b"* BYE Session invalidated - AccessTokenExpired\r\n")
                            await writer.drain()
                            return
                        body = self.messages[uid]
                        seq = sorted(self.messages).index(uid) + 1
                        reply(
                            b"* %d FETCH (UID %d FLAGS (\\Seen) "
                            b'INTERNALDATE "06-May-2024 07:08:09 +0000" '
                            b"RFC822.SIZE %d BODY[] {%d}\r\n" % (seq, uid, len(body), len(body))
                        )
                        reply(body + b")\r\n")
                        sent_messages += 1
                    reply(tag + b" OK FETCH completed.\r\n")
                elif verb == b"LOGOUT":
                    reply(b"* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n")
                    reply(tag + b" OK LOGOUT completed.\r\n")
                    await writer.drain()
                    break
                else:
                    bad += 1
                    self.bad_streak_max = max(self.bad_streak_max, bad)
                    reply(tag + b" BAD Command Error. 12\r\n")
                    continue
                bad = 0
                await writer.drain()


def _uids(text: str, messages: dict[int, bytes]) -> list[int]:
    wanted: set[int] = set()
    top = max(messages, default=0)
    for part in text.split(","):
        a, _, b = part.partition(":")
        lo = top if a == "*" else int(a)
        hi = lo if not b else (top if b == "*" else int(b))
        wanted.update(range(min(lo, hi), max(lo, hi) + 1))
    return sorted(u for u in wanted if u in messages)
