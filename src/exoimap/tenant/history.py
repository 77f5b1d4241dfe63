"""The runs of each mailbox's backup in the catalog, and each mailbox's status from them.

A run is written when a worker starts a mailbox (after it holds the mailbox's lease) and
finished when the job ends. A run left ``running`` by a worker that died is marked
``abandoned`` when the next run of that mailbox starts: only the lease holder may run it,
so nothing else can still be working on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from exoimap.tenant.catalog import Catalog
from exoimap.tenant.model import MailboxStatus, Run

__all__ = ["finish_run", "runs", "start_run", "tenant_status"]

_RUN_COLUMNS = (
    "id, upn, message_id, attempt, worker, started_at, finished_at, outcome, detail, copied, bytes"
)
#: Failures shown per mailbox (the newest).
_FAILURES_SHOWN = 3


def start_run(
    catalog: Catalog, tenant: str, upn: str, *, message_id: str, attempt: int, worker: str
) -> int:
    with catalog.conn.transaction():
        catalog.conn.execute(
            "UPDATE runs SET outcome = 'abandoned', finished_at = now(),"
            " detail = 'the worker stopped before finishing'"
            " WHERE tenant = %s AND upn = %s AND outcome = 'running'",
            (tenant, upn),
        )
        row = catalog.conn.execute(
            "INSERT INTO runs (tenant, upn, message_id, attempt, worker)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (tenant, upn, message_id, attempt, worker),
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


def finish_run(
    catalog: Catalog, run_id: int, outcome: str, *, detail: str = "", copied: int = 0, size: int = 0
) -> None:
    catalog.conn.execute(
        "UPDATE runs SET outcome = %s, finished_at = now(), detail = %s, copied = %s, bytes = %s"
        " WHERE id = %s",
        (outcome, detail, copied, size, run_id),
    )


def _run(row: Sequence[object]) -> Run:
    run_id, upn, message_id, attempt, worker, started, finished, outcome, detail, copied, size = row
    return Run(
        id=int(str(run_id)),
        upn=str(upn),
        message_id=str(message_id),
        attempt=int(str(attempt)),
        worker=str(worker),
        started_at=started,  # type: ignore[arg-type]
        finished_at=finished,  # type: ignore[arg-type]
        outcome=str(outcome),
        detail=str(detail),
        copied=int(str(copied)),
        bytes=int(str(size)),
    )


def runs(catalog: Catalog, tenant: str, upn: str | None = None) -> list[Run]:
    """Every run of the tenant (or of one mailbox), oldest first."""
    rows = catalog.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE tenant = %s"  # noqa: S608 - a constant list
        " AND (%s::text IS NULL OR upn = %s) ORDER BY id",
        (tenant, upn, upn),
    )
    return [_run(r) for r in rows]


def tenant_status(catalog: Catalog, tenant: str) -> list[MailboxStatus]:
    """Each active mailbox with its latest run, last success and failures since it."""
    by_upn = {m.upn: MailboxStatus(m) for m in catalog.mailboxes(tenant)}
    for run in runs(catalog, tenant):
        status = by_upn.get(run.upn)
        if status is None:
            continue
        status.latest = run
        if run.outcome == "ok":
            status.last_success, status.failures = run, []
        elif run.outcome in ("failed", "dead"):
            status.failures = [*status.failures, run][-_FAILURES_SHOWN:]
    return list(by_upn.values())
