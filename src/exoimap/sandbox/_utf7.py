"""Modified UTF-7 folder names (RFC 3501 section 5.1.3) for the sandbox.

Used by the seed's Maildir++ writer and the sandbox IMAP server. Small and self-contained
so the sandbox does not wait on the protocol core for it.
"""

from __future__ import annotations

import base64

from exoimap.errors import RemoteProtocolError

__all__ = ["decode_mutf7", "encode_mutf7"]


def _b64(chunk: str) -> str:
    raw = chunk.encode("utf-16-be")
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode_mutf7(name: str) -> str:
    """``Zürich`` -> ``Z&APw-rich``; ``&`` -> ``&-``."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append("&" + _b64("".join(pending)) + "-")
                pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append("&" + _b64("".join(pending)) + "-")
    return "".join(out)


def decode_mutf7(text: str) -> str:
    """The inverse of :func:`encode_mutf7`; raises RemoteProtocolError on bad input."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = text.find("-", index)
        if end < 0:
            raise RemoteProtocolError(f"unterminated modified UTF-7 in {text[:80]!r}")
        chunk = text[index + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            try:
                out.append(base64.b64decode(padded, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise RemoteProtocolError(f"invalid modified UTF-7 in {text[:80]!r}") from exc
        index = end + 1
    return "".join(out)
