"""Messages and attachments as downloads: always ``Content-Disposition: attachment``, a
neutral content type (an attachment is ``application/octet-stream`` whatever it claims to
be), ``nosniff`` and a policy under which the browser would run nothing if it showed it
anyway, and a file name made harmless (no paths, quotes or control characters)."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from urllib.parse import quote

from starlette.responses import Response

from exoimap.console.mail_view import web_text

__all__ = ["attachment_of", "download", "safe_filename"]

_UNSAFE = re.compile(r'[\\/:*?"<>|;]')
_MAX_NAME = 150
DOWNLOAD_CSP = "sandbox; default-src 'none'"


def safe_filename(name: str, fallback: str) -> str:
    cleaned = _UNSAFE.sub("_", web_text(name)).strip(" .")
    return cleaned[:_MAX_NAME] or fallback


def attachment_of(raw: bytes, index: int) -> tuple[str, bytes] | None:
    """The ``index``-th attachment of a message (from 0): its file name and decoded bytes."""
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage
    for number, part in enumerate(message.iter_attachments()):
        if number == index:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            return safe_filename(part.get_filename() or "", f"attachment-{index + 1}"), data
    return None


def download(data: bytes, filename: str, media_type: str = "application/octet-stream") -> Response:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    headers = {
        "Content-Disposition": disposition,
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    return Response(data, media_type=media_type, headers=headers)
