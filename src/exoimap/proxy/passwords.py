"""Per-client app passwords: random, shown once, kept only as scrypt hashes.

Each password is bound to one configured account and has a label naming the client that
uses it (``thunderbird-laptop``, ``scanner``). The book is ``<data>/proxy/passwords.json``
(0600), apart from the vault: a guess at an app password never opens the vault, and a
revoked password stops working without touching any token.

A password is 20 random characters from an alphabet without look-alikes, in groups of
five for typing (about 100 bits). Checking one costs an scrypt (n=2**15): slow for a guesser,
a few tens of milliseconds for a client that signs in once per session.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from exoimap.errors import ConfigError
from exoimap.private_files import write_private
from exoimap.secrets import Secret

__all__ = ["DEFAULT_SCRYPT", "AppPassword", "PasswordBook", "ScryptCost"]

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"  # no l, 1, 0: read aloud or typed safely
_GROUPS, _GROUP_SIZE = 4, 5
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**15
    r: int = 8
    p: int = 1


DEFAULT_SCRYPT = ScryptCost()


@dataclass(frozen=True)
class AppPassword:
    """One stored password: its label, account and hash (never the password)."""

    label: str
    account: str
    created: str
    salt: str
    digest: str
    n: int
    r: int
    p: int

    def __repr__(self) -> str:
        return f"AppPassword(label={self.label!r}, account={self.account!r})"

    def matches(self, password: str) -> bool:
        salt = base64.b64decode(self.salt)
        digest = _scrypt(password, salt, ScryptCost(self.n, self.r, self.p))
        return hmac.compare_digest(digest, base64.b64decode(self.digest))


def _scrypt(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=256 * cost.n * cost.r,
        dklen=32,
    )


def _new_password() -> str:
    groups = (
        "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_SIZE)) for _ in range(_GROUPS)
    )
    return "-".join(groups)


class PasswordBook:
    """The app passwords in ``path`` (read fresh on every call: a revocation made by
    another process counts at the next sign-in)."""

    def __init__(self, path: Path, cost: ScryptCost | None = None) -> None:
        self.path = path
        self._cost = cost or DEFAULT_SCRYPT

    def entries(self) -> list[AppPassword]:
        try:
            document = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"the app password file cannot be read ({type(exc).__name__})", path=str(self.path)
            ) from None
        try:
            return [AppPassword(**entry) for entry in document["passwords"]]
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"the app password file is malformed ({type(exc).__name__})", path=str(self.path)
            ) from None

    def _save(self, entries: list[AppPassword]) -> None:
        document = {"version": 1, "passwords": [asdict(e) for e in entries]}
        write_private(self.path, (json.dumps(document, indent=2) + "\n").encode())

    def add(self, label: str, account: str) -> Secret[str]:
        """Make a new password for ``account`` under ``label``; returned once, stored hashed."""
        if not _LABEL.fullmatch(label):
            raise ConfigError(
                "a label is 1-64 letters, digits, dots, dashes or underscores, "
                "starting with a letter or digit"
            )
        entries = self.entries()
        if any(e.label == label for e in entries):
            raise ConfigError(
                f"an app password labelled {label!r} exists; revoke it first to replace it"
            )
        password = _new_password()
        salt = secrets.token_bytes(16)
        cost = self._cost
        digest = _scrypt(password, salt, cost)
        entries.append(
            AppPassword(
                label=label,
                account=account,
                created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                salt=base64.b64encode(salt).decode("ascii"),
                digest=base64.b64encode(digest).decode("ascii"),
                n=cost.n,
                r=cost.r,
                p=cost.p,
            )
        )
        self._save(entries)
        return Secret(password)

    def revoke(self, label: str) -> AppPassword | None:
        """Remove the password labelled ``label``; the removed entry, or None if none."""
        entries = self.entries()
        kept = [e for e in entries if e.label != label]
        if len(kept) == len(entries):
            return None
        self._save(kept)
        return next(e for e in entries if e.label == label)

    def check(self, account: str, password: str) -> AppPassword | None:
        """The entry of ``account`` that ``password`` is, or None."""
        for entry in self.entries():
            if entry.account == account and entry.matches(password):
                return entry
        return None
