"""Wrong app passwords, counted per source address: a few are free, then each source waits.

After ``free`` failures within ``window`` seconds, a source is locked out for ``base``
seconds, doubling with every further failure up to ``cap``. While locked out its sign-ins
are refused without looking at the password (no scrypt work for a guesser, and no answer
to learn from). A correct password clears the source's count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FailureLimiter"]


@dataclass
class _Source:
    failures: int = 0
    first: float = 0.0
    locked_until: float = 0.0


@dataclass
class FailureLimiter:
    free: int = 5
    window: float = 900.0
    base: float = 30.0
    cap: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _sources: dict[str, _Source] = field(default_factory=dict)

    def wait(self, source: str) -> float:
        """Seconds ``source`` must still wait before it may try again (0: it may)."""
        entry = self._sources.get(source)
        if entry is None:
            return 0.0
        return max(0.0, entry.locked_until - self.clock())

    def failed(self, source: str) -> int:
        """Count a wrong password from ``source``; returns its failures in the window."""
        now = self.clock()
        entry = self._sources.get(source)
        if entry is None or now - entry.first > self.window:
            entry = self._sources[source] = _Source(first=now)
        entry.failures += 1
        beyond = entry.failures - self.free
        if beyond >= 0:
            entry.locked_until = now + min(self.cap, self.base * 2 ** min(beyond, 20))
        self._forget_old(now)
        return entry.failures

    def succeeded(self, source: str) -> None:
        self._sources.pop(source, None)

    def _forget_old(self, now: float) -> None:
        """Keep memory bounded under a spray from many addresses."""
        if len(self._sources) > 10_000:
            stale = [
                k
                for k, v in self._sources.items()
                if now - v.first > self.window and v.locked_until <= now
            ]
            for key in stale:
                del self._sources[key]
