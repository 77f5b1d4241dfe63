"""The mboxrd format, streamed: the ``From `` separator line and the quoting of body lines.

mboxrd quotes every line that starts with any number of ``>`` followed by ``From ``
by adding one more ``>``; a reader removes one ``>`` from such lines, so every message
comes back byte for byte (unlike mboxo, where ``>From `` lines cannot be told apart).

Bodies arrive in chunks that may split a line anywhere, so :class:`MboxrdQuoter` keeps a
little state between chunks instead of ever holding a whole line: whether the current line
so far is only ``>`` characters, and at most four bytes (``F``, ``Fr``, ``Fro``, ``From``)
that may still turn out to start ``From ``. A run of ``>`` characters needs no holding
back: the added ``>`` is the same byte wherever in the run it goes.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = ["MboxrdQuoter", "envelope_sender", "from_line"]

_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
# What a line that is still only ">"s (or empty) may end with at a chunk's end and still
# become a "From " line once the next chunk comes: a proper prefix of b"From ".
_FROM_PREFIXES = (b"From", b"Fro", b"Fr", b"F")

# Return-Path as MTAs write it; anything else (folded, several, odd characters) is
# ignored and the separator says MAILER-DAEMON, as mbox readers expect for an unknown sender.
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<([!-;=?-~]{1,254})>[ \t]*\r?$", re.I | re.M)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
UNKNOWN_SENDER = "MAILER-DAEMON"


class MboxrdQuoter:
    """Quotes one message's body for mboxrd, chunk by chunk (constant memory).

    Call :meth:`feed` with each chunk and write what it returns, then write what
    :meth:`finish` returns. ``ends_with_newline`` then says whether the message's last byte
    was a line feed (the mbox writer adds one when it was not, as the format needs)."""

    __slots__ = ("_at_line_start", "_held", "ends_with_newline")

    def __init__(self) -> None:
        # True while everything written of the current line is ">" characters (or nothing).
        self._at_line_start = True
        self._held = b""
        self.ends_with_newline = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        self.ends_with_newline = chunk.endswith(b"\n")
        data = self._held + chunk if self._held else chunk
        self._held = b""
        head = b""
        if not self._at_line_start:
            newline = data.find(b"\n")
            if newline < 0:
                return data
            head, data = data[: newline + 1], data[newline + 1 :]
        last = data.rfind(b"\n")
        tail = data[last + 1 :]
        keep = self._undecided(tail)
        if keep:
            data = data[: len(data) - keep]
            self._held = tail[len(tail) - keep :]
            self._at_line_start = True
        else:
            self._at_line_start = not tail.lstrip(b">")
        if b"From " not in data:  # the common case: a fast scan, no regex
            return head + data if head else data
        return head + _FROM_LINE.sub(rb">\1", data)

    def finish(self) -> bytes:
        """The bytes held back at the message's end (they were never a ``From `` line)."""
        held, self._held = self._held, b""
        self._at_line_start = True
        return held

    @staticmethod
    def _undecided(tail: bytes) -> int:
        """How many bytes at the end of ``tail`` (the unfinished last line) must wait for
        the next chunk: a prefix of ``From `` after nothing but ``>`` characters."""
        rest = tail.lstrip(b">")
        if rest in _FROM_PREFIXES:
            return len(rest)
        return 0


def envelope_sender(first_chunk: bytes) -> str:
    """The address of the ``Return-Path:`` header in the message's head, when the first
    chunk holds one that is a single plain address; else ``MAILER-DAEMON``. The head is
    untrusted text: only printable ASCII without spaces or angle brackets is taken."""
    end = _HEAD_END.search(first_chunk)
    head = first_chunk[: end.start()] if end else first_chunk
    found = _RETURN_PATH.findall(head)
    if len(found) != 1:
        return UNKNOWN_SENDER
    address = found[0].decode("ascii")
    return address if "@" in address else UNKNOWN_SENDER


def from_line(sender: str, internal_date: _dt.datetime) -> bytes:
    """The separator line: ``From <sender> <asctime of the internal date in UTC>``."""
    when = internal_date.astimezone(_dt.UTC)
    return f"From {sender} {when.ctime()}\n".encode("ascii")
