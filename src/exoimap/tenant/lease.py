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

__all__ = [
    "LeaseBusy",
    "LeaseLost",
    "TenantBusy",
    "lease_key",
    "mailbox_lease",
    "slot_key",
    "tenant_slot",
]

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


class TenantBusy(ExoimapError):
    """The tenant already runs as many mailboxes at once as it may (try again later)."""

    retryable = True


def slot_key(tenant: str, slot: int) -> str:
    return f"exoimap:slot:{tenant}:{slot}"


def _try_lock(client: redis.Redis, key: str, seconds: float) -> redis.lock.Lock | None:
    lock = client.lock(key, timeout=seconds, thread_local=False)
    try:
        return lock if lock.acquire(blocking=False) else None
    except RedisError as exc:
        raise NetworkError(f"cannot reach Redis for the mailbox lease: {exc}") from None


@contextlib.contextmanager
def _renewed(lock: redis.lock.Lock, seconds: float, what: str) -> Iterator[threading.Event]:
    """Keep ``lock`` renewed for the ``with`` block, then release it; yields the event set
    when it is lost."""
    stop, lost = threading.Event(), threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(lock, seconds, stop, lost, what), name=f"lease {what}", daemon=True
    )
    renewer.start()
    try:
        yield lost
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(LockError, RedisError):
            lock.release()


@contextlib.contextmanager
def mailbox_lease(
    client: redis.Redis, tenant: str, upn: str, seconds: float
) -> Iterator[threading.Event]:
    """Hold the mailbox's lease for the ``with`` block (LeaseBusy when another has it).
    Yields an event set when the lease is lost: the holder must stop working."""
    lock = _try_lock(client, lease_key(tenant, upn), seconds)
    if lock is None:
        log.info("lease of %s held by another worker: trying again later", upn)
        raise LeaseBusy(f"{upn} is being backed up by another worker")
    with _renewed(lock, seconds, upn) as lost:
        yield lost


@contextlib.contextmanager
def tenant_slot(
    client: redis.Redis, tenant: str, limit: int, seconds: float
) -> Iterator[threading.Event]:
    """Hold one of the tenant's ``limit`` slots (a semaphore of leases, so a dead worker's
    slot lapses too); TenantBusy when all are held. ``limit`` 0: no limit."""
    if limit <= 0:
        yield threading.Event()
        return
    for slot in range(limit):
        lock = _try_lock(client, slot_key(tenant, slot), seconds)
        if lock is not None:
            with _renewed(lock, seconds, f"{tenant} slot {slot}") as lost:
                yield lost
            return
    log.info("tenant %s is at its limit (%d at once): trying again later", tenant, limit)
    raise TenantBusy(f"tenant {tenant!r} already runs {limit} mailboxes at once")


def _renew(
    lock: redis.lock.Lock, seconds: float, stop: threading.Event, lost: threading.Event, what: str
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
        log.warning("lost the lease of %s: %s", what, reason)
        lost.set()
        return
