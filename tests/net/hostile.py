"""A scripted hostile IMAP server: folder names, reply texts and FETCH answers chosen to
attack the client (no real server misbehaves on purpose, so this is where such tests live).

It parses commands with the project's own sans-I/O server side and writes every response
as raw bytes, so it can send what no honest server would: control characters and rich
markup in folder names and texts, a flood of FETCH lines for a folder of two messages,
messages nobody asked for, UIDVALIDITY 0. It accepts any sign-in.

Use it inside a running event loop (``async with``), or from synchronous code (a CLI test)
with :meth:`HostileServer.running`, which serves on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from exoimap.protocol import commands as c
from exoimap.protocol.events import NEED_DATA, AuthenticateData, CommandReceived
from exoimap.protocol.server import ServerConnection
from exoimap.protocol.types import Status, StatusResponse
from exoimap.protocol.utf7 import encode_mailbox

CAPABILITIES = b"IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN SASL-IR LITERAL+ UIDPLUS UNSELECT"
DATE = b'"06-May-2024 07:08:09 +0000"'


@dataclass
class HostileFolder:
    uidvalidity: int = 7
    messages: dict[int, bytes] = field(default_factory=dict)
    #: Refuse SELECT, EXAMINE and STATUS of this folder with ``NO <text>``.
    refuse: bytes | None = None


@dataclass
class HostileServer:
    ssl_context: ssl.SSLContext
    folders: dict[str, HostileFolder] = field(default_factory=dict)
    greeting: bytes = b"* OK hostile IMAP4rev1 ready\r\n"
    #: Answer a flags listing (``UID FETCH 1:* (UID FLAGS)``) with this many FETCH lines,
    #: whatever EXISTS said (0: answer honestly).
    flood: int = 0
    #: Each flood line carries a header literal of this many bytes (0: flags only).
    flood_literal: int = 0
    #: ``repeat-first``: every body FETCH is answered with the folder's first message, once
    #: per UID asked for; ``unasked``: the honest answer plus a message nobody asked for;
    #: ``interleave`` (legal, RFC 3501 5.5, and what Dovecot does when its output blocks):
    #: the first body FETCH keeps its last message and completion back until the next one's
    #: first message is out.
    fetch_fault: str | None = None
    port: int = 0
    flood_lines_sent: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._server.wait_closed()

    @contextlib.contextmanager
    def running(self) -> Iterator[HostileServer]:
        """Serve on a thread with its own event loop (for code that runs its own loop)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stop: asyncio.Event | None = None

        async def serve() -> None:
            nonlocal stop
            stop = asyncio.Event()
            async with self:
                started.set()
                await stop.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        started.wait()
        try:
            yield self
        finally:
            assert stop is not None
            loop.call_soon_threadsafe(stop.set)
            thread.join()
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConnection()
        session = _Session(self, writer, conn)
        try:
            writer.write(self.greeting)
            while data := await reader.read(65536):
                conn.receive_data(data)
                while (event := conn.next_event()) is not NEED_DATA:
                    writer.write(conn.data_to_send())
                    if isinstance(event, CommandReceived):
                        if not await session.answer(event.tag, event.command):
                            return
                    elif isinstance(event, AuthenticateData):
                        session.signed_in(event.tag)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


@dataclass
class _Session:
    server: HostileServer
    writer: asyncio.StreamWriter
    conn: ServerConnection
    selected: HostileFolder | None = None
    #: ``interleave``: the first body FETCH's held-back end (None: nothing held yet; b"":
    #: released, answer honestly from now on)
    held: bytes | None = None

    def signed_in(self, tag: str) -> None:
        # through the connection object: it must see AUTHENTICATE completed
        self.conn.send(StatusResponse(tag, Status.OK, None, "signed in"))
        self.send(self.conn.data_to_send())

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def answer(self, tag_text: str, command: object) -> bool:
        """Answer one command; False once the connection should end."""
        tag = tag_text.encode()
        if isinstance(command, c.Capability):
            self.send(b"* CAPABILITY " + CAPABILITIES + b"\r\n" + tag + b" OK done\r\n")
        elif isinstance(command, c.Authenticate):
            if command.initial_response is not None:
                self.signed_in(tag_text)
            else:
                self.send(b"+ \r\n")
        elif isinstance(command, c.List):
            self._list(tag, command)
        elif isinstance(command, (c.Select, c.Examine)):
            self._select(tag, command.mailbox)
        elif isinstance(command, c.StatusCommand):
            self._status(tag, command.mailbox)
        elif isinstance(command, c.Fetch) and command.uid and self.selected is not None:
            await self._fetch(tag, command, self.selected)
        elif isinstance(command, c.Logout):
            self.send(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            await self.writer.drain()
            return False
        elif isinstance(command, (c.Noop, c.Unselect, c.Enable, c.Login)):
            if isinstance(command, c.Unselect):
                self.selected = None
            self.send(tag + b" OK done\r\n")
        else:
            self.send(tag + b" BAD not here\r\n")
        return True

    def _list(self, tag: bytes, command: c.List) -> None:
        if command.pattern == "":
            self.send(b'* LIST (\\Noselect) "/" ""\r\n')
        else:
            for name in self.server.folders:
                self.send(b'* LIST () "/" ' + _literal(encode_mailbox(name)) + b"\r\n")
        self.send(tag + b" OK LIST done\r\n")

    def _folder(self, tag: bytes, name: str) -> HostileFolder | None:
        folder = self.server.folders.get(name)
        if folder is None:
            self.send(tag + b" NO [NONEXISTENT] no such folder\r\n")
        elif folder.refuse is not None:
            self.send(tag + b" NO " + folder.refuse + b"\r\n")
            return None
        return folder

    def _select(self, tag: bytes, name: str) -> None:
        self.selected = None
        folder = self._folder(tag, name)
        if folder is None:
            return
        self.selected = folder
        uidnext = max(folder.messages, default=0) + 1
        self.send(
            b"* %d EXISTS\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
            b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] ok\r\n"
            b"* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n"
            % (len(folder.messages), folder.uidvalidity, uidnext)
        )
        self.send(tag + b" OK [READ-WRITE] SELECT done\r\n")

    def _status(self, tag: bytes, name: str) -> None:
        folder = self._folder(tag, name)
        if folder is None:
            return
        uidnext = max(folder.messages, default=0) + 1
        self.send(
            b"* STATUS "
            + _literal(encode_mailbox(name))
            + b" (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n"
            % (len(folder.messages), uidnext, folder.uidvalidity)
        )
        self.send(tag + b" OK STATUS done\r\n")

    async def _fetch(self, tag: bytes, command: c.Fetch, folder: HostileFolder) -> None:
        uids = _expand(command.sequence_set, folder.messages)
        bodies = any(isinstance(i, c.BodySection) and i.section == "" for i in command.items)
        headers = any(isinstance(i, c.BodySection) and i.section for i in command.items)
        if bodies and self.server.fetch_fault == "interleave" and self.held != b"":
            self._interleaved(tag, uids, folder)
            return
        if bodies:
            await self._bodies(uids, folder)
        elif self.server.flood:
            await self._flood()
        else:
            for seq, uid in enumerate(sorted(folder.messages), 1):
                if uid in uids:
                    self.send(self._listing_line(seq, uid, folder.messages[uid], headers))
        self.send(tag + b" OK FETCH done\r\n")

    def _listing_line(self, seq: int, uid: int, body: bytes, headers: bool) -> bytes:
        line = b"* %d FETCH (UID %d FLAGS (\\Seen)" % (seq, uid)
        if headers:
            header = body.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
            line += b" RFC822.SIZE %d INTERNALDATE %s BODY[HEADER.FIELDS (MESSAGE-ID)] %s" % (
                len(body),
                DATE,
                _literal(header),
            )
        return line + b")\r\n"

    async def _flood(self) -> None:
        # written in slices with a drain between them: the server's own memory stays small
        header = _literal(b"X" * self.server.flood_literal)
        extra = b" BODY[HEADER] " + header if self.server.flood_literal else b""
        step = max(1, min(1000, (256 << 10) // len(extra or b"x")))  # about 256 KB a slice
        for start in range(1, self.server.flood + 1, step):
            for n in range(start, min(start + step, self.server.flood + 1)):
                self.send(b"* %d FETCH (UID %d FLAGS (\\Seen)%s)\r\n" % (n, n, extra))
            self.server.flood_lines_sent = min(start + step - 1, self.server.flood)
            await self.writer.drain()

    def _interleaved(self, tag: bytes, uids: list[int], folder: HostileFolder) -> None:
        parts = [_body_line(uid, folder.messages[uid]) for uid in uids]
        parts.append(tag + b" OK FETCH done\r\n")
        if self.held is None:  # the first command: all but its last message and completion
            self.send(b"".join(parts[:-2]))
            self.held = b"".join(parts[-2:])
        else:  # the next: its first message, then the first command's end, then its rest
            self.send(parts[0] + self.held + b"".join(parts[1:]))
            self.held = b""

    async def _bodies(self, uids: list[int], folder: HostileFolder) -> None:
        fault = self.server.fetch_fault
        answers = [(uid, folder.messages[uid]) for uid in uids]
        if fault == "repeat-first":
            first = min(folder.messages)
            answers = [(first, folder.messages[first]) for _ in uids]
        elif fault == "unasked":
            answers.append((max(folder.messages) + 100, b"Subject: bogus\r\n\r\nnobody asked\r\n"))
        for uid, body in answers:
            self.send(_body_line(uid, body))
            await self.writer.drain()


def _body_line(uid: int, body: bytes) -> bytes:
    return b"* 1 FETCH (UID %d FLAGS (\\Seen) INTERNALDATE %s RFC822.SIZE %d BODY[] %s)\r\n" % (
        uid,
        DATE,
        len(body),
        _literal(body),
    )


def _expand(sequence_set: object, messages: dict[int, bytes]) -> list[int]:
    top = max(messages, default=0)
    wanted: set[int] = set()
    for start, end in getattr(sequence_set, "ranges", ()):
        lo = top if start is None else start
        hi = top if end is None else end
        wanted.update(range(min(lo, hi), max(lo, hi) + 1))
    return sorted(u for u in wanted if u in messages)
