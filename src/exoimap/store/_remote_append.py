"""APPEND for :mod:`exoimap.store.remote`: many messages into one folder, fast, and with an
answer for every one of them.

Where the server offers MULTIAPPEND (RFC 3502, Dovecot does, Exchange does not), messages up
to :data:`BUFFERED_MESSAGE` bytes are read whole and sent in groups, one APPEND command per
group: the server stores the group in one transaction (Dovecot: one index update and one
sync instead of one per message, several times faster). Larger messages, and every message
on a server without MULTIAPPEND, go one per APPEND, streamed. With UIDPLUS several commands
are in flight at once; literals are non-synchronising where the server offers LITERAL+
(decided by the protocol core), else each waits for the server's ``+``.

A group is all or nothing: when the server refuses it, its messages are sent again one by
one from the buffer, so a single bad message (say a keyword the server will not take) is
refused alone. Every other message's UID is still returned: a refusal ends in
:class:`~exoimap.errors.AppendIncomplete` with the UID of each message taken (``None`` for
the refused) and one :class:`~exoimap.errors.MessageError` per refused message.

Without UIDPLUS, one APPEND at a time, each followed by a UID SEARCH for its UID.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from exoimap.errors import AppendIncomplete, MessageError
from exoimap.net.session import ImapSession, Reply
from exoimap.protocol import commands as c
from exoimap.protocol.headers import HeaderCollector
from exoimap.protocol.types import AppendUidCode, SearchResponse
from exoimap.store.base import AppendItem
from exoimap.untrusted import shown

__all__ = ["BUFFERED_MESSAGE", "Appender", "Sniffer"]

#: Messages up to this size are read whole and may share one MULTIAPPEND.
BUFFERED_MESSAGE = 1 << 20
#: Most messages, and most bytes, in one MULTIAPPEND command.
_GROUP_MESSAGES = 100
_GROUP_BYTES = 1 << 20
#: Commands in flight at once (with UIDPLUS). A group's bytes stay in memory until its
#: answer, so groups have a smaller window: it bounds the memory a folder's append holds
#: (about ``_GROUP_WINDOW + 1`` times ``_GROUP_BYTES``, once in our buffer and once in the
#: socket's).
_WINDOW = 8
_GROUP_WINDOW = 2


class Sniffer:
    """Passes message chunks through, noting the Message-ID from the header on the way
    (needed to find an appended message without UIDPLUS)."""

    def __init__(self, chunks: AsyncIterable[bytes], message_id: str | None) -> None:
        self._chunks = chunks
        self.message_id = message_id
        self._header = HeaderCollector() if message_id is None else None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            if self._header is not None:
                self._header.feed(chunk)
                if self._header.complete:
                    self.message_id = self._header.message_id()
                    self._header = None
            yield chunk
        if self._header is not None:
            self.message_id = self._header.message_id()
            self._header = None


@dataclass(slots=True)
class _Message:
    """A message taken from the caller: its place in the answer, and its bytes when it
    was read whole (for a group, and to send it again alone)."""

    index: int
    item: AppendItem
    data: bytes | None = None
    #: Notes the Message-ID while streaming (to find the UID without UIDPLUS).
    sniffer: Sniffer | None = None


@dataclass(slots=True)
class _Sent:
    tag: str
    messages: list[_Message]


class Appender:
    """One :meth:`RemoteFolder.append` call on a session with the folder selected."""

    def __init__(
        self,
        session: ImapSession,
        folder: str,
        *,
        uidplus: bool,
        multiappend: bool,
        max_size: int | None,
        last_uid: int,
    ) -> None:
        self._session = session
        self._folder = folder
        self._uidplus = uidplus
        self._multi = multiappend and uidplus
        self._max_size = max_size
        self._last_uid = last_uid  # without UIDPLUS: the highest UID before this append
        self._uids: list[int | None] = []
        self._failures: list[MessageError] = []
        self._in_flight: deque[_Sent] = deque()
        self._group: list[_Message] = []
        self._group_bytes = 0

    async def run(self, items: AsyncIterable[AppendItem]) -> list[int]:
        """Append every item; the UIDs in order, or :class:`AppendIncomplete`."""
        try:
            async for item in items:
                await self._take(item)
        except MessageError as exc:
            # the source failed on a message: what was taken before it is still stored
            await self._finish()
            self._failures.append(exc)
            raise self._incomplete() from exc
        await self._finish()
        if self._failures:
            raise self._incomplete()
        return [uid for uid in self._uids if uid is not None]

    def _incomplete(self) -> AppendIncomplete:
        return AppendIncomplete(list(self._uids), list(self._failures), folder=self._folder)

    async def _finish(self) -> None:
        await self._send_group()
        await self._settle(0)

    async def _take(self, item: AppendItem) -> None:
        message = _Message(len(self._uids), item)
        self._uids.append(None)
        if self._max_size is not None and item.size > self._max_size:
            self._refuse(
                message,
                f"a message of {item.size} bytes is larger than the {self._max_size} bytes "
                "the server accepts",
            )
            return
        if self._multi and item.size <= BUFFERED_MESSAGE:
            message.data = await _read_whole(item)
            if len(message.data) != item.size:
                self._refuse(message, f"the message has {len(message.data)} bytes, not {item.size}")
                return
            self._group.append(message)
            self._group_bytes += item.size
            if len(self._group) >= _GROUP_MESSAGES or self._group_bytes >= _GROUP_BYTES:
                await self._send_group()
            return
        await self._send_group()  # keep the target's order the source's
        await self._send_streamed(message)

    async def _send_group(self) -> None:
        group, self._group, self._group_bytes = self._group, [], 0
        if len(group) == 1:
            await self._send_buffered(group[0])
        elif group:
            command = c.MultiAppend(
                self._folder,
                tuple(
                    c.AppendMessage(m.data or b"", _flags(m.item), m.item.internal_date)
                    for m in group
                ),
            )
            self._in_flight.append(_Sent(await self._session.send_paced(command), group))
            await self._session.drain()
        await self._settle(_GROUP_WINDOW)

    async def _send_buffered(self, message: _Message) -> None:
        item = message.item
        command = c.Append(self._folder, message.data, _flags(item), item.internal_date)
        self._in_flight.append(_Sent(await self._session.send_paced(command), [message]))

    async def _send_streamed(self, message: _Message) -> None:
        item = message.item
        command = c.Append(self._folder, None, _flags(item), item.internal_date, item.size)
        chunks = item.chunks
        if not self._uidplus:
            message.sniffer = Sniffer(item.chunks, item.message_id)
            chunks = message.sniffer.chunks()
        tag = await self._session.send_append(command, chunks)
        self._in_flight.append(_Sent(tag, [message]))
        await self._settle(_WINDOW if self._uidplus else 0)

    async def _settle(self, limit: int) -> None:
        """Wait for answers until at most ``limit`` commands are in flight."""
        while len(self._in_flight) > limit:
            sent = self._in_flight.popleft()
            reply = await self._session.wait(sent.tag)
            self._session.check_throttle(reply)
            if reply.ok:
                await self._stored(sent, reply)
            elif len(sent.messages) > 1:
                # the group was refused as a whole: each alone, so only the bad one fails
                for message in sent.messages:
                    await self._send_buffered(message)
            else:
                self._refuse(sent.messages[0], f"the server refused it: {shown(reply.done.text)}")

    async def _stored(self, sent: _Sent, reply: Reply) -> None:
        code = reply.done.code
        if self._uidplus and isinstance(code, AppendUidCode):
            uids = list(code.uids)
            if len(uids) == len(sent.messages):
                for message, uid in zip(sent.messages, uids, strict=True):
                    self._uids[message.index] = uid
                return
        if len(sent.messages) > 1:
            for message in sent.messages:
                self._refuse(message, "stored, but the server did not say under which UID")
            return
        message = sent.messages[0]
        message_id = message.sniffer.message_id if message.sniffer else message.item.message_id
        self._last_uid = await self._find_uid(self._last_uid + 1, message_id)
        self._uids[message.index] = self._last_uid

    async def _find_uid(self, start: int, message_id: str | None) -> int:
        """Without UIDPLUS: the UID of the message just appended, searched above the last
        known UID (and by Message-ID when there is one)."""
        criteria: tuple[c.SearchKey, ...] = ("UID", f"{start}:*")
        if message_id:
            criteria += ("HEADER", "Message-ID", message_id)
        reply = await self._session.command(c.Search(criteria, uid=True))
        found = [n for r in reply.untagged if isinstance(r, SearchResponse) for n in r.numbers]
        found = [n for n in found if n >= start]  # "n:*" also matches the highest UID below n
        if not found:
            raise MessageError(
                f"the server stored a message in {self._folder!r} but its UID could not be found",
                folder=self._folder,
            )
        return min(found)

    def _refuse(self, message: _Message, why: str) -> None:
        origin = message.item.origin
        self._failures.append(
            MessageError(
                f"APPEND to {self._folder!r} failed: {why}",
                folder=self._folder,
                uid=origin.uid if origin is not None else None,
                retryable=False,
            )
        )


def _flags(item: AppendItem) -> tuple[str, ...]:
    return tuple(sorted(f for f in item.flags if f.lower() != "\\recent"))


async def _read_whole(item: AppendItem) -> bytes:
    return b"".join([chunk async for chunk in item.chunks])
