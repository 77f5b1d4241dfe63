"""When to retry and how long to wait: backoff with jitter, throttling, session expiry.

Kept free of I/O so the rules are tested on their own; :mod:`exoimap.net.imap` applies them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from exoimap.errors import SessionInvalidated, Throttled

__all__ = [
    "Backoff",
    "bye_error",
    "parse_throttle",
    "refresh_deadline",
]

_THROTTLE = re.compile(
    r"Request is throttled\.\s*Suggested Backoff Time:\s*(\d+)\s*milliseconds", re.IGNORECASE
)
_SESSION_INVALIDATED = re.compile(r"Session invalidated\s*-\s*(\S.*)?$", re.IGNORECASE)


def parse_throttle(text: str) -> Throttled | None:
    """Exchange's ``Request is throttled. Suggested Backoff Time: N milliseconds`` (in a NO
    or BAD) as :class:`Throttled` with ``backoff`` in seconds; None for any other text."""
    m = _THROTTLE.search(text)
    if m is None:
        return None
    return Throttled(int(m.group(1)) / 1000.0)


def bye_error(text: str) -> SessionInvalidated | None:
    """``Session invalidated - <reason>`` in a BYE as :class:`SessionInvalidated`."""
    m = _SESSION_INVALIDATED.search(text.strip())
    if m is None:
        return None
    return SessionInvalidated((m.group(1) or "unknown").strip())


def refresh_deadline(expires_at: float | None, opened_at: float, margin: float) -> float | None:
    """When a session signed in at ``opened_at`` with a token expiring at ``expires_at``
    (epoch seconds) should be re-established: ``margin`` seconds before expiry, but never
    before half of the token's remaining life, so a short-lived token cannot make the
    client reconnect in a loop. None when the expiry is unknown."""
    if expires_at is None:
        return None
    return max(expires_at - margin, opened_at + (expires_at - opened_at) / 2)


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
