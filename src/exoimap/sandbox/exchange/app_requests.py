"""Commands per application across every connection of the service (app-only sign-ins).

Exchange throttles an application across the whole tenant, not per connection: this log
keeps the time of every command each app-only client sent, so the service can refuse the
ones past ``ThrottlePolicy.max_app_requests`` per window, and a test or benchmark can check
afterwards that a client's own request budget kept it under a limit (:meth:`busiest`) and
counted what it sent (:meth:`count` plus :attr:`throttled`). Which commands Exchange counts
is not documented [U]: here every command of an app-only connection counts, those before
its sign-in (CAPABILITY, AUTHENTICATE) when it signs in, and LOGOUT.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Sequence

__all__ = ["AppRequests"]


class AppRequests:
    """The commands each app sent (admitted ones) and how many were refused as throttled.

    Used on the service's event loop only (no locking); times are ``time.monotonic()``.
    """

    def __init__(self) -> None:
        self._admitted: dict[str, list[float]] = {}
        self.throttled: Counter[str] = Counter()

    def admit(self, app: str, limit: int | None, window: float) -> bool:
        """Record one command of ``app``; False (and counted as throttled) when the app
        already sent ``limit`` in the last ``window`` seconds."""
        now = time.monotonic()
        times = self._admitted.setdefault(app, [])
        if limit is not None and len(times) - bisect.bisect_right(times, now - window) >= limit:
            self.throttled[app] += 1
            return False
        times.append(now)
        return True

    def times(self, app: str) -> list[float]:
        """When each admitted command of ``app`` arrived (``time.monotonic()``)."""
        return list(self._admitted.get(app, ()))

    def record(self, app: str, arrived: Sequence[float]) -> None:
        """Count commands of ``app`` that arrived at ``arrived`` (``time.monotonic()``,
        before now), whatever the limit: they were answered before the app was known."""
        admitted = self._admitted.setdefault(app, [])
        for at in arrived:
            bisect.insort(admitted, at)

    def count(self, app: str) -> int:
        """Commands admitted for ``app`` so far."""
        return len(self._admitted.get(app, ()))

    def busiest(self, app: str, window: float, since: float = 0.0) -> int:
        """The most commands ``app`` sent within any ``window`` seconds (from ``since``)."""
        every = self._admitted.get(app, [])
        times = every[bisect.bisect_left(every, since) :]
        most, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - window:
                start += 1
            most = max(most, end - start + 1)
        return most

    def reset(self) -> None:
        self._admitted.clear()
        self.throttled.clear()
