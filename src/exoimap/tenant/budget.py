"""The request budget of a tenant and of each of its mailboxes, shared by every worker.

Exchange throttles an application across the whole tenant: the workers of one tenant, on
any number of machines, must together stay under one budget, and a backoff one of them is
told ("Request is throttled. Suggested Backoff Time: N milliseconds", or a 429 with
``Retry-After``) must slow all of them. Both live in Redis:

* each budget is a sliding log of the last window's requests (a sorted set scored by
  Redis's own clock, so the workers' clocks need not agree); one script checks the
  tenant's and the mailbox's log and records the request in both, or in neither, at once,
  and counts it in the tenant's total (:func:`requests_sent`: every IMAP command a job
  sends is paced, so this is what Exchange was sent);
* a backoff is a "paused until" time per tenant that only ever moves later
  (:class:`TenantPause`): whoever is told to back off, a worker's IMAP connection or
  discovery's Microsoft Graph listing, sets it, and every request of every worker and of
  discovery waits it out first.

Dramatiq's ``WindowRateLimiter`` was not used: it counts with each machine's clock, takes
one limit per call (a request refused by the mailbox's budget would still spend the
tenant's), and cannot say how long to wait, so waiters would poll Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from redis.exceptions import RedisError

from exoimap.errors import NetworkError
from exoimap.net.session import NetEvent

__all__ = [
    "ARRIVAL_GUARD",
    "Budget",
    "RequestBudget",
    "TenantPause",
    "budget_key",
    "pause_key",
    "requests_sent",
    "sent_key",
]

log = logging.getLogger("exoimap.tenant")

#: Longest single sleep of a waiting request: a pause set meanwhile is seen this soon.
_MAX_NAP = 5.0
#: A request is counted when its worker takes it and reaches the server a little later
#: (the worker's event loop, the network). The logs keep each request this much longer
#: than the window (at most a tenth of it), so that in any window the server counts, on
#: arrival, no more than the limit arrive while those delays stay under it.
ARRIVAL_GUARD = 1.0

# KEYS: the pause, the budget logs, the count of requests sent; ARGV: window (ms), a limit
# per log (0: none), an id.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused > now then return paused - now end
local window = tonumber(ARGV[1])
local wait = 0
for i = 2, #KEYS - 1 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i]) then
      local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest[2]) + window - now)
    end
  end
end
if wait > 0 then return wait end
redis.call('INCR', KEYS[#KEYS])
for i = 2, #KEYS - 1 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[i], now, ARGV[#ARGV])
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
return 0
"""

# KEYS: the pause; ARGV: how long (ms). Returns the ms left of the (possibly longer) pause.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wanted = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if wanted > current then
  redis.call('SET', KEYS[1], wanted, 'PX', tonumber(ARGV[1]))
  return tonumber(ARGV[1])
end
return current - now
"""


def budget_key(tenant: str, upn: str | None = None) -> str:
    return f"exoimap:budget:{tenant}" + (f":{upn.lower()}" if upn else "")


def pause_key(tenant: str) -> str:
    return f"exoimap:pause:{tenant}"


def sent_key(tenant: str) -> str:
    return f"exoimap:sent:{tenant}"


def requests_sent(client: redis.Redis, tenant: str) -> int:
    """How many requests the tenant's budget let go, ever, by every worker."""
    try:
        raw = client.get(sent_key(tenant))
    except RedisError as exc:
        raise NetworkError(f"cannot reach Redis for the request count: {exc}") from None
    return int(raw or 0)


@dataclass(frozen=True, slots=True)
class Budget:
    """How many requests a tenant, and each of its mailboxes, may send per window (0: no
    limit)."""

    tenant_requests: int = 0
    mailbox_requests: int = 0
    window_seconds: float = 60.0


def _naps(left: Callable[[], float], who: str, what: str) -> Iterator[float]:
    """The sleeps of one waiter until ``left()`` says none is left; its first wait is
    logged (a short one at debug level)."""
    told = False
    while (wait := left()) > 0:
        if not told:
            level = logging.INFO if wait >= 1 else logging.DEBUG
            log.log(level, "%s waits %.1f s for the tenant's %s", who, wait, what)
            told = True
        yield min(wait, _MAX_NAP)


class TenantPause:
    """The tenant's shared "not before" time, as one requester sees it (``seen_on`` names
    it in the log: a mailbox, or discovery)."""

    def __init__(
        self,
        client: redis.Redis,
        tenant: str,
        seen_on: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tenant, self.seen_on = tenant, seen_on
        self._client, self._sleep = client, sleep
        self._pause = client.register_script(_PAUSE)
        #: Seconds :meth:`wait` slept.
        self.waited = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every request of the tenant, on every worker, for ``seconds`` (or the
        longer pause already set)."""
        milliseconds = max(1, int(seconds * 1000))
        try:
            self._pause(keys=[pause_key(self.tenant)], args=[milliseconds])
        except RedisError as exc:
            log.warning("could not share a backoff of %.1f s through Redis: %s", seconds, exc)
            return
        log.warning(
            "tenant %s throttled (seen on %s): every worker holds back %.1f s",
            self.tenant,
            self.seen_on,
            seconds,
        )

    def remaining(self) -> float:
        """Seconds left of the pause (0.0: none); the key lives exactly as long as it."""
        try:
            left_ms = int(self._client.pttl(pause_key(self.tenant)))
        except RedisError as exc:
            raise NetworkError(f"cannot reach Redis for the tenant's backoff: {exc}") from None
        return max(left_ms, 0) / 1000

    def wait(self) -> None:
        """Block until the pause is over (at once when there is none)."""
        for nap in _naps(self.remaining, self.seen_on, "backoff"):
            self.waited += nap
            self._sleep(nap)


class RequestBudget:
    """One mailbox's view of its tenant's budget and pause (see the module docstring)."""

    def __init__(self, client: redis.Redis, tenant: str, upn: str, budget: Budget) -> None:
        self.tenant, self.upn, self.budget = tenant, upn, budget
        self._take = client.register_script(_TAKE)
        self._shared_pause = TenantPause(client, tenant, upn)
        self._keys = [
            pause_key(tenant),
            budget_key(tenant),
            budget_key(tenant, upn),
            sent_key(tenant),
        ]
        self._limits = [budget.tenant_requests, budget.mailbox_requests]
        #: Seconds this mailbox's requests waited for the budget or a pause.
        self.waited = 0.0

    def try_take(self) -> float:
        """Record one request when the budget and any pause allow it now (0.0), else the
        seconds to wait before asking again (nothing recorded)."""
        window = self.budget.window_seconds
        window_ms = max(1, int((window + min(ARRIVAL_GUARD, window / 10)) * 1000))
        try:
            waiting_ms = self._take(
                keys=self._keys, args=[window_ms, *self._limits, uuid.uuid4().hex]
            )
        except RedisError as exc:
            raise NetworkError(f"cannot reach Redis for the request budget: {exc}") from None
        return int(waiting_ms) / 1000

    async def __call__(self) -> None:
        """Wait until one more request may go (a :data:`exoimap.net.pacing.Pacer`)."""
        for nap in _naps(self.try_take, self.upn, "request budget"):
            self.waited += nap
            await asyncio.sleep(nap)

    def pause(self, seconds: float) -> None:
        """Hold every request of the tenant, on every worker, for ``seconds``."""
        self._shared_pause.pause(seconds)

    def heard(self, _account: str, event: NetEvent) -> None:
        """A connection event of the mailbox's backup: a throttling answer pauses all."""
        if event.kind == "throttled" and event.wait:
            self.pause(event.wait)
