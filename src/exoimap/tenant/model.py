"""What the tenant catalog holds: tenants, their mailboxes, and the runs of each mailbox."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_GRAPH_URL", "Mailbox", "MailboxStatus", "Run", "TenantRecord"]

DEFAULT_GRAPH_URL = "https://graph.microsoft.com"


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant backed up with one app-only (certificate) registration."""

    name: str
    #: The directory (tenant) id or verified domain, as for ``account add --tenant``.
    tenant: str
    client_id: str
    certificate: Path
    #: Where the archives go: one folder per mailbox, named by its UPN, on a path every
    #: worker reaches.
    archive_root: Path
    cloud: str = "worldwide"
    authority: str | None = None
    imap_host: str | None = None
    imap_port: int = 993
    ca_file: Path | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    #: Discovery filters: glob patterns or ``@domain`` entries (see :mod:`.discover`).
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: At most this many of its mailboxes at once across all workers (0: no limit):
    #: Exchange throttles an application across the whole tenant.
    max_parallel: int = 0
    #: Requests (IMAP commands) per ``budget_window`` seconds for the whole tenant and for
    #: each mailbox, across all workers (0: no limit); see :mod:`.budget`.
    tenant_requests: int = 0
    mailbox_requests: int = 0
    budget_window: float = 60.0


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A catalogued mailbox (``active`` False: no longer found by discovery)."""

    tenant: str
    upn: str
    object_id: str
    display_name: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class Run:
    """One attempt at one mailbox's backup."""

    id: int
    upn: str
    message_id: str
    attempt: int
    worker: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str
    detail: str = ""
    copied: int = 0
    bytes: int = 0


@dataclass(slots=True)
class MailboxStatus:
    """A mailbox's standing: its latest run, its last success, its failures since."""

    mailbox: Mailbox
    latest: Run | None = None
    last_success: Run | None = None
    failures: list[Run] = field(default_factory=list)
