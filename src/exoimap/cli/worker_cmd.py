"""``exoimap worker``: run tenant mailbox backups from the job queue (see
:mod:`exoimap.tenant.worker`)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from exoimap.cli.output import echo
from exoimap.cli.tenant_cmd import DATABASE_OPTION, REDIS_OPTION
from exoimap.config import Paths, load_config

__all__ = ["worker"]


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 256), default=2, help="Mailboxes at once.")
@click.option(
    "--lease-seconds",
    type=click.FloatRange(1, 3600),
    default=60.0,
    help="A mailbox held by a dead worker is free again after this.",
)
@click.option(
    "--heartbeat-seconds",
    type=click.FloatRange(1, 3600),
    default=60.0,
    help="A silent worker's jobs are redelivered after this.",
)
@click.option(
    "--retry-seconds",
    type=click.FloatRange(0.1, 3600),
    default=15.0,
    help="First wait before a failed mailbox is tried again (doubles each time).",
)
@DATABASE_OPTION
@REDIS_OPTION
def worker(
    *,
    concurrency: int,
    lease_seconds: float,
    heartbeat_seconds: float,
    retry_seconds: float,
    database: str | None,
    redis_url: str | None,
) -> None:
    """Back up tenant mailboxes from the job queue until stopped (SIGTERM or Ctrl-C)."""
    from exoimap.audit import auditing
    from exoimap.auth.audit_key import audit_key_for
    from exoimap.auth.vault import Vault
    from exoimap.tenant.catalog import open_catalog, require_database
    from exoimap.tenant.jobs import QueueSettings, redis_client
    from exoimap.tenant.run_mailbox import WorkerContext
    from exoimap.tenant.worker import run_worker

    database = require_database(database)
    vault = Vault.from_paths()
    vault.key_source  # noqa: B018 - opens the vault now: a worker must not need a prompt
    with open_catalog(database):
        pass  # reachable, and its schema is up to date before any job runs
    settings = QueueSettings(
        heartbeat_timeout_ms=int(heartbeat_seconds * 1000),
        min_backoff_ms=int(retry_seconds * 1000),
        # a short heartbeat is only worth it when dead workers are looked for often
        maintenance_chance=1_000_000 if heartbeat_seconds < 60 else 10_000,
    )
    context = WorkerContext(
        database_url=database,
        redis=redis_client(redis_url),
        vault=vault,
        paths=Paths.from_env(),
        settings=settings,
        lease_seconds=lease_seconds,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    paths = context.paths
    with auditing(paths, load_config(paths).audit, key=audit_key_for(paths)):
        echo(f"worker {context.worker_id}: {concurrency} at once; stop with Ctrl-C or SIGTERM")
        run_worker(context, redis_url, stop, concurrency=concurrency, settings=settings)
    echo(f"worker {context.worker_id}: stopped")
