"""What the search index keeps of a message: its headers decoded (RFC 2047), its text
decoded (``text/plain`` parts, or the words of ``text/html`` ones when a message has no
plain text), and whether it has attachments. Mail is untrusted: nothing here fails on a
malformed message, it just yields less text."""

from __future__ import annotations

import datetime as _dt
import email
import html
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message

__all__ = ["MAX_BODY_CHARS", "Document", "header_text", "read_document"]

#: Body text kept per message; the rest of a very long message is not searchable.
MAX_BODY_CHARS = 100_000
_TAG = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Document:
    """One message as the index holds it (``date``: the archive's internal date)."""

    folder: str
    uid: int
    date: _dt.datetime
    size: int
    sender: str
    recipients: str
    copied: str
    subject: str
    body: str
    has_attachment: bool


def header_text(message: Message, name: str) -> str:
    """A header decoded (RFC 2047), or its raw text when it does not decode."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # malformed structured headers
        raw = [v for k, v in message.raw_items() if k.lower() == name.lower()]
        return str(raw[0]) if raw else ""
    return "" if value is None else str(value)


def _all(message: Message, name: str) -> str:
    """Every instance of an address header, decoded, joined."""
    try:
        values = message.get_all(name) or []
        return ", ".join(str(v) for v in values)
    except (ValueError, IndexError, TypeError):
        return ", ".join(str(v) for k, v in message.raw_items() if k.lower() == name.lower())


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else ""
    except (LookupError, ValueError, AssertionError, TypeError):  # unknown charset, bad CTE
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def _body(message: Message) -> tuple[str, bool]:
    """The message's searchable text and whether it has an attachment."""
    plain: list[str] = []
    markup: list[str] = []
    attached = False
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        if disposition == "attachment" or (disposition == "inline" and part.get_filename()):
            attached = True
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            plain.append(_part_text(part))
        elif kind == "text/html":
            markup.append(html.unescape(_TAG.sub(" ", _part_text(part))))
        elif not kind.startswith(("text/", "multipart/")):
            attached = True
    text = "\n".join(plain or markup)
    return text[:MAX_BODY_CHARS], attached


def read_document(
    raw: bytes, folder: str, uid: int, date: _dt.datetime, size: int | None = None
) -> Document:
    """``raw`` (one message's bytes, or its first bytes: ``size`` is then the whole
    message's) as a :class:`Document`."""
    message = email.message_from_bytes(raw, policy=policy.default)
    body, attached = _body(message)
    return Document(
        folder=folder,
        uid=uid,
        date=date,
        size=len(raw) if size is None else size,
        sender=_all(message, "from"),
        recipients=_all(message, "to"),
        copied=_all(message, "cc"),
        subject=header_text(message, "subject"),
        body=body,
        has_attachment=attached,
    )
