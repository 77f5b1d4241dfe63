"""Find secrets where they must never be: files on disk and captured output.

``find_secrets(known, paths=..., texts=...)`` looks for each known secret value in its raw
form and the encodings a leak usually takes (JSON-escaped, URL-encoded, base64 and
base64url, as in an XOAUTH2 blob), in every file under the given paths (binary too) and in
the given strings, and for anything shaped like a JWT even when its value is unknown.
The lead extends the sign-in and sync tests with it when those land.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "assert_no_secrets", "find_secrets"]

_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Finding:
    where: str
    what: str


def _forms(secret: str) -> dict[str, bytes]:
    raw = secret.encode()
    xoauth2 = f"user=someone@example.com\x01auth=Bearer {secret}\x01\x01".encode()
    forms = {
        "raw": raw,
        "json": json.dumps(secret)[1:-1].encode(),
        "url": urllib.parse.quote(secret, safe="").encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "xoauth2": base64.b64encode(xoauth2).rstrip(b"="),
    }
    return {name: value for name, value in forms.items() if len(value) >= 6}


def _scan(data: bytes, where: str, known: dict[str, dict[str, bytes]]) -> list[Finding]:
    found = []
    for label, forms in known.items():
        for form, needle in forms.items():
            if needle in data:
                found.append(Finding(where, f"{label} ({form})"))
    found.extend(Finding(where, f"JWT-shaped {m.group()[:12]!r}...") for m in _JWT.finditer(data))
    return found


def find_secrets(
    known: dict[str, str], *, paths: Iterable[Path] = (), texts: dict[str, str] | None = None
) -> list[Finding]:
    """Every occurrence of a known secret (by label) or of a JWT in files and texts."""
    forms = {label: _forms(value) for label, value in known.items()}
    findings: list[Finding] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            findings.extend(_scan(path.read_bytes(), str(path), forms))
    for where, text in (texts or {}).items():
        findings.extend(_scan(text.encode("utf-8", "replace"), where, forms))
    return findings


def assert_no_secrets(
    known: dict[str, str], *, paths: Iterable[Path] = (), texts: dict[str, str] | None = None
) -> None:
    findings = find_secrets(known, paths=paths, texts=texts)
    assert not findings, "secrets leaked:\n" + "\n".join(f"  {f.where}: {f.what}" for f in findings)
