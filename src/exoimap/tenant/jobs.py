"""The job queue: a Dramatiq broker on Redis and the actor that backs up one mailbox.

Messages are acknowledged only after the actor returns (Dramatiq's Redis broker keeps them
in the worker's acknowledgement set until then); a worker that dies stops sending
heartbeats, and the next broker maintenance puts its unacknowledged messages back on the
queue. Failures are retried with exponential backoff while :func:`should_retry` says so;
then the message goes to Dramatiq's dead-letter queue and its run is recorded ``dead``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from exoimap.errors import ConfigError, ExoimapError, NetworkError
from exoimap.tenant.lease import LeaseBusy, TenantBusy

__all__ = [
    "ACTOR_NAME",
    "QUEUE_NAME",
    "QueueSettings",
    "backup_actor",
    "enqueue_backups",
    "make_broker",
    "redis_client",
    "should_retry",
]

ACTOR_NAME = "exoimap_backup_mailbox"
QUEUE_NAME = "exoimap-mailboxes"
#: A busy mailbox is tried again this many times (about half an hour with the backoff cap).
_BUSY_TRIES = 40


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """How the broker and the actor behave (the defaults suit production)."""

    #: A worker silent this long (ms) is taken for dead and its messages redelivered.
    heartbeat_timeout_ms: int = 60_000
    #: Out of a million broker commands, how many also run the maintenance that redelivers.
    maintenance_chance: int = 1_000
    #: Retries of a failure that may pass, with backoff between these bounds (ms).
    max_retries: int = 8
    min_backoff_ms: int = 15_000
    max_backoff_ms: int = 15 * 60_000
    #: Longest a mailbox's backup may run (ms).
    time_limit_ms: int = 24 * 3600_000


def redis_client(url: str | None) -> redis.Redis:
    """A client of the job queue's Redis, checked to answer (else a one-line error)."""
    if not url:
        raise ConfigError("no job queue given: pass --redis redis://... or set EXOIMAP_REDIS_URL")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=15)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise NetworkError(f"cannot reach the job queue at Redis: {exc}") from None
    return client


def make_broker(redis_url: str | None, settings: QueueSettings | None = None) -> RedisBroker:
    """The broker over the job queue's Redis (checked to answer)."""
    redis_client(redis_url).close()
    settings = settings or QueueSettings()
    broker = RedisBroker(
        url=redis_url,
        namespace="exoimap",
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
    broker.add_middleware(CurrentMessage())
    return broker


def should_retry(retries: int, error: BaseException, max_retries: int) -> bool:
    """Whether a failed job is tried again: transient errors until ``max_retries``, a busy
    mailbox or tenant for longer; a permanent error (mailbox gone, permission removed) never."""
    if isinstance(error, LeaseBusy | TenantBusy):
        return retries < _BUSY_TRIES
    if isinstance(error, ExoimapError) and not error.retryable:
        return False
    return retries < max_retries


def backup_actor(
    broker: RedisBroker,
    run: Callable[[str, str], None],
    settings: QueueSettings | None = None,
) -> dramatiq.Actor[[str, str], None]:
    """Declare the actor on ``broker``; ``run(tenant, upn)`` does the work (in a worker)."""
    settings = settings or QueueSettings()

    def retry_when(retries: int, error: BaseException) -> bool:
        return should_retry(retries, error, settings.max_retries)

    return dramatiq.Actor(
        run,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=QUEUE_NAME,
        priority=0,
        options={
            "retry_when": retry_when,
            "min_backoff": settings.min_backoff_ms,
            "max_backoff": settings.max_backoff_ms,
            "time_limit": settings.time_limit_ms,
        },
    )


def _never_here(tenant: str, upn: str) -> None:  # pragma: no cover - runs in workers only
    raise RuntimeError(f"the backup of {tenant}/{upn} runs in `exoimap worker`")


def enqueue_backups(broker: RedisBroker, tenant: str, upns: list[str]) -> list[str]:
    """One message per mailbox; returns the message ids."""
    actor = backup_actor(broker, _never_here)
    return [actor.send(tenant, upn).message_id for upn in upns]
