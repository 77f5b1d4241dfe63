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
from collections.abc import Iterator

import redis
from redis.exceptions import LockError, RedisError

from exoimap.errors import ExoimapError, NetworkError

__all__ = ["LeaseBusy", "mailbox_lease"]

log = logging.getLogger("exoimap.tenant")


class LeaseBusy(ExoimapError):
    """Another worker is backing up this mailbox right now (try again later)."""

    retryable = True


def lease_key(tenant: str, upn: str) -> str:
    return f"exoimap:lease:{tenant}:{upn.lower()}"


@contextlib.contextmanager
def mailbox_lease(client: redis.Redis, tenant: str, upn: str, seconds: float) -> Iterator[None]:
    """Hold the mailbox's lease for the ``with`` block (LeaseBusy when another has it)."""
    lock = client.lock(lease_key(tenant, upn), timeout=seconds, thread_local=False)
    try:
        taken = lock.acquire(blocking=False)
    except RedisError as exc:
        raise NetworkError(f"cannot reach Redis for the mailbox lease: {exc}") from None
    if not taken:
        log.info("lease of %s held by another worker: trying again later", upn)
        raise LeaseBusy(f"{upn} is being backed up by another worker")
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(lock, seconds / 3, stop, upn), name=f"lease {upn}", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(LockError, RedisError):
            lock.release()


def _renew(lock: redis.lock.Lock, every: float, stop: threading.Event, upn: str) -> None:
    while not stop.wait(every):
        try:
            lock.reacquire()
        except (LockError, RedisError) as exc:
            log.warning("lost the lease of %s: %s", upn, type(exc).__name__)
            return
