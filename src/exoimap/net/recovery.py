"""When to retry and how long to wait: backoff with jitter and session expiry.

Kept free of I/O so the rules are tested on their own; :mod:`exoimap.net.imap` applies them.
What a server's answer means (throttling, an invalidated session) is read by
:mod:`exoimap.protocol.answers`; this module only decides what to do about it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = [
    "Backoff",
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
