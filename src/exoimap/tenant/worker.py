"""A worker process: Dramatiq worker threads running mailbox backups until told to stop.

Run as many as wanted, on as many machines as reach the same Redis, PostgreSQL and archive
root. Stopping (SIGTERM, Ctrl-C) lets the jobs in hand finish; messages fetched but not
started go back to the queue.
"""

from __future__ import annotations

import threading

import dramatiq

from exoimap.tenant.jobs import QueueSettings, backup_actor, make_broker
from exoimap.tenant.run_mailbox import WorkerContext, run_mailbox

__all__ = ["run_worker"]

#: How long a stopping worker waits for the jobs in hand (ms).
_STOP_TIMEOUT_MS = 10 * 60_000


def run_worker(
    context: WorkerContext,
    redis_url: str | None,
    stop: threading.Event,
    *,
    concurrency: int = 1,
    settings: QueueSettings | None = None,
) -> None:
    """Work until ``stop`` is set."""
    settings = settings or context.settings
    broker = make_broker(redis_url, settings)

    def backup_mailbox(tenant: str, upn: str) -> None:
        run_mailbox(context, tenant, upn)

    backup_actor(broker, backup_mailbox, settings)
    worker = dramatiq.Worker(broker, worker_threads=concurrency, worker_timeout=500)
    # Hold no more messages than can run: a mailbox's backup may take hours, and a message
    # waiting behind it here would wait though another worker is free.
    worker.queue_prefetch = concurrency
    worker.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        worker.stop(timeout=_STOP_TIMEOUT_MS)
        broker.close()
