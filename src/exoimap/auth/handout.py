"""Handing an account's access token to another program (``exoimap token print``).

Mail clients (mbsync, neomutt, msmtp, ...) ask for a token each time they connect.
:class:`TokenDesk` answers with one valid for at least five more minutes, refreshed first
otherwise through the account's :class:`~exoimap.auth.provider.TokenProvider` (under the
vault's per-account lock, so many askers at once never lose a rotated refresh token), and
records every answer in the audit log: which account, which programs asked, never the token.

A desk keeps what it learned for the next ask: the account's provider (with the opened
vault) and the last token. A command uses a desk once; the agent keeps one for its life,
and there a kept token is handed out again only while the vault entry it came from is
unchanged (another process refreshed, or ``exoimap logout`` removed it: then it asks the
vault again) and the account's configuration is the same.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from exoimap import audit
from exoimap.auth.provider import TokenInfo, TokenProvider
from exoimap.auth.vault import Vault
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.errors import ExoimapError

__all__ = [
    "FORMATS",
    "MAX_MIN_VALIDITY",
    "MIN_VALIDITY",
    "TokenDesk",
    "asking_programs",
    "render",
    "xoauth2_string",
]

#: A token handed out is valid for at least this long (seconds); else it is refreshed first.
MIN_VALIDITY = 300.0
#: Microsoft's access tokens live 60 to 90 minutes: no refresh can promise more than this.
MAX_MIN_VALIDITY = 3000
#: ``token``: the bare access token; ``xoauth2``: the base64 SASL XOAUTH2 initial response.
FORMATS = ("token", "xoauth2")
#: How many generations of asking programs the audit record names.
_ASKER_DEPTH = 3


@dataclass(frozen=True)
class _Kept:
    account: AccountConfig
    info: TokenInfo
    #: The vault entry's version the token was read from (None for a token command's).
    version: tuple[int, int, int] | None


class TokenDesk:
    """Hands out access tokens for the accounts of one exoimap home."""

    def __init__(self, paths: Paths, *, prompt: Callable[[str], str] | None = None) -> None:
        self._paths = paths
        self._vault = Vault.from_paths(paths, prompt=prompt)
        self._providers: dict[str, TokenProvider] = {}
        self._kept: dict[str, _Kept] = {}
        self._mutex = threading.Lock()  # guards the three dicts
        self._account_locks: dict[str, threading.Lock] = {}

    def hand_out(
        self,
        name: str,
        *,
        requested_by: tuple[str, ...],
        via: str,
        fmt: str,
        min_validity: float = MIN_VALIDITY,
    ) -> tuple[TokenInfo, str]:
        """The account's token (with the user name it goes with), valid for at least
        ``min_validity`` seconds, audited; raises what the provider raises when a sign-in
        is needed, after recording the failure."""
        try:
            account = load_config(self._paths).account(name)
            info = self._token(account, min_validity)
        except ExoimapError as exc:
            audit.emit(
                audit.TokenHandedOut(
                    account=name,
                    outcome="failure",
                    requested_by=requested_by,
                    via=via,
                    format=fmt,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            raise
        left = info.expires_at - time.time()
        audit.emit(
            audit.TokenHandedOut(
                account=name,
                requested_by=requested_by,
                via=via,
                format=fmt,
                expires_in=int(left) if math.isfinite(left) else None,
            )
        )
        return info, account.username or account.email

    def _token(self, account: AccountConfig, min_validity: float) -> TokenInfo:
        name = account.name
        with self._mutex:
            lock = self._account_locks.setdefault(name, threading.Lock())
        # One ask per account at a time: the second of two finds the first's token. Other
        # accounts are not held up by a slow refresh.
        with lock:
            with self._mutex:
                kept = self._kept.get(name)
            version = self._vault.token_cache_version(name)
            if (
                kept is not None
                and kept.account == account
                and kept.version == version
                and math.isfinite(kept.info.expires_at)  # a token command's opaque token
                and kept.info.expires_at - time.time() >= min_validity
            ):
                return kept.info
            with self._mutex:
                provider = self._providers.get(name)
                if provider is None or provider.account != account:
                    provider = self._providers[name] = TokenProvider(account, vault=self._vault)
            info = provider.token_info(min_validity=min_validity)
            # Read after the provider wrote what it refreshed: the version this token is in.
            kept = _Kept(account, info, self._vault.token_cache_version(name))
            with self._mutex:
                self._kept[name] = kept
            return info


def xoauth2_string(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial client response, base64-encoded."""
    raw = f"user={username}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def render(
    name: str, info: TokenInfo, username: str, *, fmt: str, as_json: bool, now: float
) -> str:
    """What ``token print`` writes to stdout: one line."""
    token = info.token.reveal()
    text = xoauth2_string(username, token) if fmt == "xoauth2" else token
    if not as_json:
        return text + "\n"
    finite = math.isfinite(info.expires_at)
    document = {
        "account": name,
        "format": fmt,
        "token": text,
        "expires_at": int(info.expires_at) if finite else None,
        "expires_in": max(0, int(info.expires_at - now)) if finite else None,
    }
    return json.dumps(document) + "\n"


def asking_programs(pid: int) -> tuple[str, ...]:
    """The programs above process ``pid``, nearest first, as ``name[pid]`` (from
    ``/proc``; empty where there is none). What the audit log records as who asked."""
    chain: list[str] = []
    current = _parent(pid)
    while current is not None and current > 1 and len(chain) < _ASKER_DEPTH:
        name = _command_name(current)
        if name is None:
            break
        chain.append(f"{name}[{current}]")
        current = _parent(current)
    return tuple(chain)


def _stat_fields(pid: int) -> tuple[str, list[str]] | None:
    """``(comm, fields after it)`` of ``/proc/PID/stat``; the name may hold spaces and
    parentheses, so it is everything between the first ``(`` and the last ``)``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    start, end = raw.find("("), raw.rfind(")")
    if start < 0 or end < start:
        return None
    return raw[start + 1 : end], raw[end + 1 :].split()


def _parent(pid: int) -> int | None:
    if pid == os.getpid():
        return os.getppid()
    fields = _stat_fields(pid)
    if fields is None or len(fields[1]) < 2 or not fields[1][1].isdigit():
        return None
    return int(fields[1][1])


def _command_name(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return None if fields is None else fields[0]
