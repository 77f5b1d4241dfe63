"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

Printable ASCII stands for itself except ``&``, which is written ``&-``; other characters
are UTF-16BE, base64 with ``,`` instead of ``/`` and no padding, between ``&`` and ``-``.
"""

from __future__ import annotations

import base64
import binascii

from exoimap.errors import RemoteProtocolError

__all__ = ["decode_mailbox", "decode_mailbox_lenient", "encode_mailbox"]


def _printable(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def encode_mailbox(name: str) -> bytes:
    """A mailbox name in modified UTF-7 (ASCII bytes)."""
    out: list[bytes] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be", "surrogatepass")
            out.append(b"&" + base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for ch in name:
        if _printable(ch):
            flush()
            out.append(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            pending.append(ch)
    flush()
    return b"".join(out)


def decode_mailbox(raw: bytes) -> str:
    """Decode a modified UTF-7 name; raises :class:`RemoteProtocolError` if it is invalid."""
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c != 0x26:  # "&"
            if not 0x20 <= c <= 0x7E:
                raise RemoteProtocolError("a mailbox name with a non-ASCII byte")
            out.append(chr(c))
            i += 1
            continue
        end = raw.find(b"-", i + 1)
        if end < 0:
            raise RemoteProtocolError("an unterminated modified UTF-7 sequence")
        chunk = raw[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(b",", b"/") + b"=" * (-len(chunk) % 4)
            try:
                decoded = base64.b64decode(padded, validate=True).decode("utf-16-be")
            except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
                raise RemoteProtocolError("invalid modified UTF-7 in a mailbox name") from exc
            if any(_printable(ch) for ch in decoded):
                raise RemoteProtocolError("modified UTF-7 encodes printable ASCII")
            out.append(decoded)
        i = end + 1
    return "".join(out)


def decode_mailbox_lenient(raw: bytes) -> str:
    """Decode modified UTF-7, or keep the name as sent (UTF-8) when it is not valid."""
    try:
        return decode_mailbox(raw)
    except RemoteProtocolError:
        return raw.decode("utf-8", "surrogateescape")
