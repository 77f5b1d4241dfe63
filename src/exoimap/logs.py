"""Logging: readable lines on stderr, JSON lines in a file, and nothing secret in either.

Every record passes through :func:`redact` before it is formatted, on every handler. It
removes whatever looks like a bearer token, a JWT, a Microsoft refresh token, an XOAUTH2
blob, an Entra client secret, or the value of a ``password=``/``secret=``/``token=`` pair,
and also the exact value of every :class:`~exoimap.secrets.Secret` created in this process.
So a bug that passes a revealed token to a logger still cannot leak it.

Log messages quote server text (folder names, NO/BAD replies, the greeting), so the stderr
lines go through :func:`exoimap.untrusted.shown` as well: a terminal never receives a
control sequence from a server. The JSON lines keep the raw text (JSON escapes it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from exoimap.secrets import MASK, known_secret_values
from exoimap.untrusted import shown

__all__ = [
    "JsonLinesFormatter",
    "RedactingFilter",
    "TerminalFormatter",
    "redact",
    "setup_logging",
]

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # JWT / JWS / JWE: base64url header starting with {" plus at least one more part
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_.-]*"),
    # Authorization: Bearer <anything>
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]{8,}"),
    # XOAUTH2 / OAUTHBEARER initial responses: base64 of "user=" / "n,a=" / "n,,"
    re.compile(r"\b(?:dXNlcj|bixh|biws)[A-Za-z0-9+/=]{16,}"),
    # Microsoft refresh tokens ("0.A...", "1.A...", "M.C5..." for MSA)
    re.compile(r"\b(?:[01]\.A|M\.C\d)[A-Za-z0-9_*!$.\-]{40,}"),
    # Entra client secret values: 3 chars, a digit, "Q~", then 31-34 chars
    re.compile(r"\b[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"),
    # Any long base64url run that is not plain hex (hashes stay readable)
    re.compile(r"(?<![A-Za-z0-9_\-])(?![0-9a-f]+\b)[A-Za-z0-9_\-]{100,}={0,2}"),
)
# key=value, key: value, "key": "value" for secret-looking keys
_KEYED = re.compile(
    r"""(?ix)
    (["']?(?:password|passwd|passphrase|secret|client_secret|access_token|refresh_token|
           id_token|token|assertion|client_assertion|code_verifier|device_code|auth)["']?
     \s*[:=]\s*)
    (?:"[^"]*"|'[^']*'|[^\s,;&}]+)
    """
)


# "key: word word": a sentence after a key named as a location, not a value
_PROSE = re.compile(r"[A-Za-z]+ [A-Za-z]")


def _mask_keyed(match: re.Match[str]) -> str:
    """Mask the value of ``password=x``, ``"secret": "x"``, ``token: x``; keep a sentence.

    A value is one token. When an unquoted key and ": " are followed by words of letters
    (``password: unknown key``, ``accounts.work.password: secrets are never stored``), the
    key names a place and a sentence follows: masking its first word would say
    ``*** are never stored``. A secret made of words still never shows: every secret
    exoimap holds is a :class:`~exoimap.secrets.Secret`, whose value is masked wherever it
    appears (see :func:`redact`)."""
    separator = match.group(1)
    sentence_follows = (
        separator.rstrip()[-2:-1].isalnum()
        and separator.endswith((": ", ":\t"))
        and _PROSE.match(match.string, match.end(1)) is not None
    )
    return match.group(0) if sentence_follows else separator + MASK


def _is_word_character(text: str, at: int) -> bool:
    return 0 <= at < len(text) and text[at].isascii() and text[at].isalnum()


def _mask_whole(text: str, value: str) -> str:
    """``text`` with ``value`` masked wherever it stands as a whole token: a secret that
    happens to be a word ("secret") must not blank that word inside another ("secrets")."""
    pieces: list[str] = []
    start = 0
    at = text.find(value)
    while at != -1:
        end = at + len(value)
        if _is_word_character(text, at - 1) or _is_word_character(text, end):
            at = text.find(value, at + 1)
            continue
        pieces += (text[start:at], MASK)
        start = end
        at = text.find(value, end)
    return "".join(pieces) + text[start:] if pieces else text


def _mask_known_values(text: str) -> str:
    # A substring search per value, not one regex of them all: that regex would be compiled
    # anew (and kept in re's cache) every time a long-running process made a new token.
    for value in known_secret_values():  # longest first
        if value in text:
            text = _mask_whole(text, value)
    return text


def redact(text: str) -> str:
    """Return ``text`` with anything that looks like a secret replaced by ``***``."""
    if not text:
        return text
    # keyed values first: a known secret that is also a word of a key ("secret") must not
    # garble the key ("client_***") before its value is masked
    text = _KEYED.sub(_mask_keyed, text)
    text = _mask_known_values(text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Formats each record's message once, redacts it, and freezes the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
            record.exc_info = None
        return True


class TerminalFormatter(logging.Formatter):
    """Readable lines for a terminal: the message on one line with every character that
    does not print itself escaped, and each line of a traceback likewise."""

    def format(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(vars(record))
        safe.msg = shown(record.getMessage())
        safe.args = None
        if safe.exc_info:
            safe.exc_text = self.formatException(safe.exc_info)
            safe.exc_info = None
        if safe.exc_text:
            safe.exc_text = "\n".join(shown(line) for line in safe.exc_text.splitlines())
        return super().format(safe)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else _jsonable(value)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def _jsonable(value: object) -> object:
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


def setup_logging(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Configure the ``exoimap`` logger.

    ``verbosity``: -1 (``-q``) errors only, 0 warnings, 1 (``-v``) info, 2+ (``-vv``) debug.
    ``log_file``: JSON lines, created 0600, always at debug level.
    """
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if verbosity < -1:
        level = logging.CRITICAL
    logger = logging.getLogger("exoimap")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(level)
    stderr.setFormatter(TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    stderr.addFilter(RedactingFilter())
    logger.addHandler(stderr)

    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        os.chmod(log_file, 0o600)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(JsonLinesFormatter())
        file_handler.addFilter(RedactingFilter())
        logger.addHandler(file_handler)
