"""What the last silent refresh of each account said, for ``exoimap account list``.

Holding a refresh token is not being signed in: Microsoft may have revoked it (a password
change, revoked sessions, withdrawn consent) since. ``account list`` does not ask the
identity platform; it shows what the last refresh learnt. A refresh that failed for good
(not a network problem) leaves one small JSON file per account next to the vault; the next
successful sign-in or refresh, or ``logout``, removes it. The file holds the error's
sentence (already free of secrets: error texts are redacted where they are made) and the
time, never a token, so it is readable without the vault key.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RefreshFailure", "clear", "last_failure", "record_failure"]

_FOLDER = "refresh-status"


@dataclass(frozen=True)
class RefreshFailure:
    """Why the account's last refresh failed, and when (epoch seconds)."""

    reason: str
    at: float


def _path(vault_dir: Path, account: str) -> Path:
    return vault_dir / _FOLDER / f"{account}.json"


def record_failure(vault_dir: Path, account: str, reason: str) -> None:
    """Remember that the account's refresh failed for ``reason``."""
    path = _path(vault_dir, account)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"reason": reason, "at": time.time()}, handle)
    os.replace(tmp, path)


def clear(vault_dir: Path, account: str) -> None:
    """Forget a recorded failure (the account signed in or refreshed since)."""
    with contextlib.suppress(FileNotFoundError):
        _path(vault_dir, account).unlink()


def last_failure(vault_dir: Path, account: str) -> RefreshFailure | None:
    """The recorded failure, or None (none, or an unreadable file: nothing is known)."""
    try:
        data = json.loads(_path(vault_dir, account).read_text("utf-8"))
        return RefreshFailure(reason=str(data["reason"]), at=float(data["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
