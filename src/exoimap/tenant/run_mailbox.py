"""One mailbox's backup as a job: take the mailbox's lease, record the run, run the one
sync engine through :func:`exoimap.app.accounts.sync_account`, record how it ended.

A redelivered job starts over on the same archive, which knows what it holds (its index is
written only after the message file is on disk), so nothing is fetched twice or lost.
Errors are raised again after they are recorded, so Dramatiq retries or dead-letters them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field

import redis
from dramatiq.middleware import CurrentMessage

from exoimap import audit
from exoimap.app.accounts import AccountResult, sync_account
from exoimap.auth.vault import Vault
from exoimap.config import Paths
from exoimap.errors import ConfigError, ExoimapError
from exoimap.net.pacing import paced_by
from exoimap.tenant.budget import Budget, RequestBudget
from exoimap.tenant.catalog import open_catalog
from exoimap.tenant.history import finish_run, start_run
from exoimap.tenant.jobs import QueueSettings, should_retry
from exoimap.tenant.lease import LeaseLost, mailbox_lease, tenant_slot
from exoimap.tenant.model import TenantRecord
from exoimap.tenant.signin import mailbox_account, mailbox_provider

__all__ = ["PartialBackup", "WorkerContext", "run_mailbox"]

#: How often a running backup looks whether its lease was lost (seconds).
_LEASE_CHECK_SECONDS = 0.5


class PartialBackup(ExoimapError):
    """The backup ended with some folders or messages failing (tried again later)."""

    retryable = True


@dataclass(frozen=True)
class WorkerContext:
    """What every job of one worker process shares."""

    database_url: str
    redis: redis.Redis
    vault: Vault
    paths: Paths
    settings: QueueSettings = field(default_factory=QueueSettings)
    #: The mailbox lease lapses this long after its holder stopped renewing it.
    lease_seconds: float = 60.0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def _failure(result: AccountResult) -> ExoimapError | None:
    if result.error is not None:
        return result.error
    if not result.ok:
        lines = result.failures()
        more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
        return PartialBackup("; ".join(lines[:3]) + more)
    return None


def _message_state() -> tuple[str, int]:
    """The current message's id and how many times it was retried before."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return "direct", 0
    return message.message_id, int(message.options.get("retries", 0))


async def _while_held(
    lost: tuple[threading.Event, ...], work: Coroutine[None, None, AccountResult]
) -> AccountResult:
    """Run ``work``, cancelled as soon as the lease is lost (the archive is crash-safe, so
    stopping anywhere loses nothing)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=_LEASE_CHECK_SECONDS)
        if any(event.is_set() for event in lost) and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise LeaseLost("the mailbox lease was lost while the backup ran; it stopped")
    return task.result()


@dataclass(frozen=True, slots=True)
class _Job:
    """One delivery of one mailbox's backup message, for the catalog and the audit log."""

    context: WorkerContext
    tenant: str
    upn: str
    message_id: str
    retries: int

    def audit(self, state: str, *, copied: int = 0, size: int = 0, error: str = "") -> None:
        audit.emit(
            audit.WorkerJob(
                account=f"tenant-{self.tenant}",
                outcome="success" if state in ("started", "finished") else "failure",
                state=state,
                tenant=self.tenant,
                mailbox=self.upn,
                message_id=self.message_id,
                attempt=self.retries + 1,
                worker=self.context.worker_id,
                copied=copied,
                bytes=size,
                error=error,
            )
        )

    def failed(self, run_id: int | None, error: BaseException) -> None:
        """Record ``error``: ``failed`` when Dramatiq will try again, ``dead`` (and
        dead-lettered) when not; a lost lease is its own audit event too."""
        final = not should_retry(self.retries, error, self.context.settings.max_retries)
        if run_id is not None:
            with open_catalog(self.context.database_url) as catalog:
                finish_run(catalog, run_id, "dead" if final else "failed", detail=str(error))
        if isinstance(error, LeaseLost):
            audit.emit(
                audit.WorkerLeaseLost(
                    account=f"tenant-{self.tenant}",
                    tenant=self.tenant,
                    mailbox=self.upn,
                    message_id=self.message_id,
                    worker=self.context.worker_id,
                )
            )
        self.audit("dead_lettered" if final else "failed", error=str(error))


def run_mailbox(context: WorkerContext, tenant_name: str, upn: str) -> None:
    """Back up ``upn`` of ``tenant_name`` (the actor's body)."""
    job = _Job(context, tenant_name, upn, *_message_state())
    with open_catalog(context.database_url) as catalog:
        tenant = catalog.tenant(tenant_name)
        if upn not in {m.upn for m in catalog.mailboxes(tenant_name)}:
            gone = ConfigError(f"{upn} is no longer a mailbox of tenant {tenant_name!r}")
            job.failed(None, gone)
            raise gone
    seconds = context.lease_seconds
    with (
        mailbox_lease(context.redis, tenant_name, upn, seconds) as lost_mailbox,
        tenant_slot(context.redis, tenant_name, tenant.max_parallel, seconds) as lost_slot,
    ):
        with open_catalog(context.database_url) as catalog:
            run_id = start_run(
                catalog,
                tenant_name,
                upn,
                message_id=job.message_id,
                attempt=job.retries + 1,
                worker=context.worker_id,
            )
        job.audit("started")
        try:
            account = mailbox_account(tenant, upn)
            provider = mailbox_provider(tenant, upn, context.vault)
            budget = RequestBudget(context.redis, tenant_name, upn, _budget(tenant))
            work = sync_account(account, provider, context.paths, on_net_event=budget.heard)
            with paced_by(budget):
                result = asyncio.run(_while_held((lost_mailbox, lost_slot), work))
        except Exception as exc:  # recorded, then raised again for Dramatiq
            job.failed(run_id, exc)
            raise
        error = _failure(result)
        if error is not None:
            job.failed(run_id, error)
            raise error
        folders = result.report.folders if result.report is not None else []
        copied, size = sum(f.fetched for f in folders), sum(f.bytes for f in folders)
        with open_catalog(context.database_url) as catalog:
            finish_run(catalog, run_id, "ok", copied=copied, size=size)
        job.audit("finished", copied=copied, size=size)


def _budget(tenant: TenantRecord) -> Budget:
    return Budget(tenant.tenant_requests, tenant.mailbox_requests, tenant.budget_window)
