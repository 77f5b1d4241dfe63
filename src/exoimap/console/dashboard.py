"""The administrator's dashboard: every configured account with its archive's message
count, its last successful sync and its last failure (from the audit log's
``sync.account`` records). No mail: counts and times only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exoimap.audit.query import AuditFilter, query
from exoimap.config import Paths, load_config
from exoimap.console.archives import Mailboxes

__all__ = ["AccountRow", "account_rows"]


@dataclass
class AccountRow:
    account: str
    email: str
    messages: int | None = None  # None: no archive yet
    last_success: str = ""
    last_failure: str = ""
    failure: str = ""
    copied_last: int = 0


def _sync_history(audit_dir: Path, rows: dict[str, AccountRow]) -> None:
    for record in query(audit_dir, AuditFilter(event="sync.account")):
        row = rows.get(record.account or "")
        if row is None or record.data.get("dry_run"):
            continue
        if record.outcome == "success":
            row.last_success = record.time
            row.copied_last = int(record.data.get("copied") or 0)
        else:
            row.last_failure = record.time
            row.failure = str(record.data.get("error") or record.data.get("error_kind") or "")


async def account_rows(paths: Paths, mailboxes: Mailboxes, audit_dir: Path) -> list[AccountRow]:
    config = load_config(paths)
    rows = {name: AccountRow(name, account.email) for name, account in config.accounts.items()}
    for mailbox in mailboxes.all():
        folders = await mailboxes.folders(mailbox)
        rows[mailbox.account].messages = sum(f.messages for f in folders)
    _sync_history(audit_dir, rows)
    return [rows[name] for name in sorted(rows)]
