"""One run per mailbox at a time, across every worker: a lease in Redis.

The lease is a Redis lock (redis-py's, with an owner token: only the holder can renew or
release it) that expires ``seconds`` after it was last renewed. While a job works, a
thread renews it every third of that; a worker that dies stops renewing, and the lease
lapses so the redelivered job can take it. Dramatiq's own concurrent rate limiter was not
used for this: its Redis key has no owner and is never renewed, so a long backup would
lose it silently and its release could free someone else's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import redis
from redis.exceptions import LockError, RedisError

from exoimap.errors import ExoimapError, NetworkError

__all__ = ["LeaseBusy", "LeaseLost", "lease_key", "mailbox_lease"]

log = logging.getLogger("exoimap.tenant")


class LeaseBusy(ExoimapError):
    """Another worker is backing up this mailbox right now (try again later)."""

    retryable = True


def lease_key(tenant: str, upn: str) -> str:
    return f"exoimap:lease:{tenant}:{upn.lower()}"


class LeaseLost(ExoimapError):
    """The lease lapsed while the job worked (Redis unreachable for longer than the lease,
    or the job stalled): the job stops, as another worker may have taken the mailbox."""

    retryable = True


@contextlib.contextmanager
def mailbox_lease(
    client: redis.Redis, tenant: str, upn: str, seconds: float
) -> Iterator[threading.Event]:
    """Hold the mailbox's lease for the ``with`` block (LeaseBusy when another has it).
    Yields an event set when the lease is lost: the holder must stop working."""
    lock = client.lock(lease_key(tenant, upn), timeout=seconds, thread_local=False)
    try:
        taken = lock.acquire(blocking=False)
    except RedisError as exc:
        raise NetworkError(f"cannot reach Redis for the mailbox lease: {exc}") from None
    if not taken:
        log.info("lease of %s held by another worker: trying again later", upn)
        raise LeaseBusy(f"{upn} is being backed up by another worker")
    stop, lost = threading.Event(), threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(lock, seconds, stop, lost, upn), name=f"lease {upn}", daemon=True
    )
    renewer.start()
    try:
        yield lost
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(LockError, RedisError):
            lock.release()


def _renew(
    lock: redis.lock.Lock, seconds: float, stop: threading.Event, lost: threading.Event, upn: str
) -> None:
    """Renew every third of the lease; a Redis error is tried again until the lease would
    have lapsed, someone else holding it ends the lease at once."""
    renewed = time.monotonic()
    while not stop.wait(seconds / 3):
        try:
            lock.reacquire()
            renewed = time.monotonic()
            continue
        except LockError as exc:  # not ours any more (lapsed, or taken over)
            reason = type(exc).__name__
        except RedisError as exc:
            if time.monotonic() - renewed < seconds:
                continue
            reason = type(exc).__name__
        log.warning("lost the lease of %s: %s", upn, reason)
        lost.set()
        return
