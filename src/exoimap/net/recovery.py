"""When to retry and how long to wait: backoff with jitter, session expiry, and when a
server that cannot be connected to counts as unreachable.

Kept free of I/O so the rules are tested on their own; :mod:`exoimap.net.imap` applies them.
What a server's answer means (throttling, an invalidated session) is read by
:mod:`exoimap.protocol.answers`; this module only decides what to do about it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exoimap.errors import ServerUnreachable

__all__ = [
    "Backoff",
    "Reachability",
    "refresh_deadline",
]

#: A session is kept at least this long, whatever the token says (no reconnect loops).
_MIN_SESSION = 30.0


def refresh_deadline(expires_at: float | None, opened_at: float, margin: float) -> float | None:
    """When a session signed in at ``opened_at`` with a token expiring at ``expires_at``
    (epoch seconds) should be re-established: ``margin`` seconds before expiry, but never
    before half of the token's remaining life, so a short-lived token cannot make the
    client reconnect in a loop. None when the expiry is unknown."""
    if expires_at is None:
        return None
    return max(expires_at - margin, opened_at + max((expires_at - opened_at) / 2, _MIN_SESSION))


@dataclass
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base*2^n)),
    never less than ``floor``. ``reset()`` after a success."""

    base: float = 0.5
    cap: float = 30.0
    floor: float = 0.05
    max_attempts: int = 8
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float | None:
        """The wait before the next attempt, or None when attempts are exhausted."""
        if self.attempts >= self.max_attempts:
            return None
        ceiling = min(self.cap, self.base * (2**self.attempts))
        self.attempts += 1
        return max(self.floor, self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class Reachability:
    """Since when connecting to one server keeps failing; shared by every connection of one
    account's run, so a dead server costs one deadline, not one retry budget per folder.

    Only failed connects start the clock and any successful one stops it: a server that
    drops an established connection now and then is reachable, and each operation keeps
    its own retries. ``give_up_after`` None: no deadline (the attempts alone limit).
    """

    host: str
    give_up_after: float | None = 300.0
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    _since: float | None = None
    _since_wall: float = 0.0
    _last_error: str = ""

    def connected(self) -> None:
        self._since = None

    def connect_failed(self, error: BaseException) -> bool:
        """Note a failed connect; True when it is the first since connecting last worked."""
        self._last_error = str(error)
        if self._since is not None:
            return False
        self._since, self._since_wall = self.clock(), self.wall_clock()
        return True

    def reset(self) -> None:
        """A new run: what an earlier one met does not count against it."""
        self._since = None

    def remaining(self) -> float | None:
        """Seconds left before giving up; None while connecting works or with no deadline."""
        if self._since is None or self.give_up_after is None:
            return None
        return self.give_up_after - (self.clock() - self._since)

    def check(self) -> None:
        """Raise :class:`ServerUnreachable` once the deadline has passed."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0 and self._since is not None:
            waited = self.clock() - self._since
            raise ServerUnreachable(self.host, self._since_wall, waited, self._last_error)
