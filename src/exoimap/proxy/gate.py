"""Who may come in: an app password checked against the account it is bound to.

Every wrong password is counted for its source address (:class:`FailureLimiter`) and
written to the audit log; a source over its limit is refused before any hash is computed.
Nothing here reads or changes the vault: a guesser can neither lock the account out of
Exchange nor wipe its tokens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from exoimap import audit
from exoimap.config import AccountConfig
from exoimap.proxy.limiter import FailureLimiter
from exoimap.proxy.passwords import AppPassword, PasswordBook
from exoimap.proxy.upstream import Upstreams

__all__ = ["Admitted", "Gate", "Refused"]

SIGN_IN_ACTION = "proxy.sign_in"


@dataclass(frozen=True)
class Admitted:
    account: AccountConfig
    password: AppPassword


@dataclass(frozen=True)
class Refused:
    """``code`` and ``text`` for the client's tagged NO."""

    code: str
    text: str


@dataclass
class Gate:
    book: PasswordBook
    upstreams: Upstreams
    limiter: FailureLimiter

    async def check(self, source: str, username: str, password: str) -> Admitted | Refused:
        """Admit ``username`` (an account name or its mailbox address) with ``password``."""
        wait = self.limiter.wait(source)
        if wait > 0:
            self.upstreams.meter.rate_limited()
            self._deny(None, source, "rate limited: too many wrong app passwords")
            return Refused(
                "UNAVAILABLE",
                f"Too many failed sign-ins from this address; try again in {wait:.0f} s.",
            )
        account = self.upstreams.account_for(username)
        entry = None
        if account is not None:
            entry = await asyncio.to_thread(self.book.check, account.name, password)
        if account is None or entry is None:
            failures = self.limiter.failed(source)
            self.upstreams.meter.auth_failed()
            self._deny(
                account.name if account else None,
                source,
                f"wrong app password or unknown user (failure {failures} from this address)",
            )
            return Refused("AUTHENTICATIONFAILED", "Invalid credentials.")
        self.limiter.succeeded(source)
        return Admitted(account, entry)

    @staticmethod
    def _deny(account: str | None, source: str, reason: str) -> None:
        audit.emit(
            audit.AccessDenied(
                account=account, action=SIGN_IN_ACTION, resource=f"client {source}", reason=reason
            )
        )
