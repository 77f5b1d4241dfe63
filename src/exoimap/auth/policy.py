"""Which flows are which, and how transient identity-platform failures are retried.

Kept apart from :mod:`exoimap.auth.flows` so that code which only needs these (the token
provider of a ``token-command`` account, the setup help) does not import MSAL and
``requests``: a no-change ``exoimap sync`` should not pay for libraries it never calls.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["APP_ONLY_FLOWS", "DELEGATED_FLOWS", "TokenRetryPolicy"]

DELEGATED_FLOWS = frozenset({"device", "browser"})
APP_ONLY_FLOWS = frozenset({"client-secret", "client-certificate"})


@dataclass(frozen=True)
class TokenRetryPolicy:
    """Exponential backoff with jitter for transient identity-platform failures."""

    attempts: int = 4
    initial_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delays(self) -> list[float]:
        out, delay = [], self.initial_delay
        for _ in range(self.attempts - 1):
            out.append(min(self.max_delay, delay) * (0.5 + random.random() / 2))  # noqa: S311
            delay *= 2
        return out
