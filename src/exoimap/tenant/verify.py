"""Every catalogued mailbox's archive compared with its mailbox, a few at once: the same
check as ``exoimap verify`` (``deep``: the SHA-256 of every message on both sides)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from exoimap.app.checks import verify_account
from exoimap.app.operations import ArchiveCheck
from exoimap.auth.vault import Vault
from exoimap.config import Paths
from exoimap.errors import ExoimapError
from exoimap.tenant.model import TenantRecord
from exoimap.tenant.signin import mailbox_account, mailbox_provider

__all__ = ["MailboxCheck", "verify_mailboxes"]


@dataclass(frozen=True, slots=True)
class MailboxCheck:
    """One mailbox's verdict: ``problem`` is empty when its archive matches."""

    upn: str
    messages: int
    problem: str = ""


def _problem(check: ArchiveCheck) -> str:
    """What differs, counted, in one line (empty when nothing does)."""
    counts = {
        "missing": sum(len(f.missing) for f in check.folders) + len(check.files.missing),
        "duplicated": sum(len(f.duplicates) for f in check.folders),
        "different": sum(
            len(f.size_mismatch) + len(f.date_mismatch) + len(f.hash_mismatch)
            for f in check.folders
        )
        + len(check.files.corrupt),
        "flags differ": sum(len(f.flag_mismatch) for f in check.folders),
        "folders missing": len(check.folders_missing),
        "files outside the index": len(check.files.unindexed),
    }
    said = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    return said or ("" if check.ok else "differs")


async def _one(
    tenant: TenantRecord, upn: str, vault: Vault, paths: Paths, deep: bool
) -> MailboxCheck:
    if not (tenant.archive_root / upn.lower()).is_dir():
        return MailboxCheck(upn, 0, "no archive yet")
    try:
        check = await verify_account(
            mailbox_account(tenant, upn), mailbox_provider(tenant, upn, vault), paths, deep=deep
        )
    except ExoimapError as exc:
        return MailboxCheck(upn, 0, str(exc))
    return MailboxCheck(upn, check.files.checked, _problem(check))


async def verify_mailboxes(
    tenant: TenantRecord,
    upns: Sequence[str],
    vault: Vault,
    paths: Paths,
    *,
    deep: bool = False,
    parallel: int = 4,
) -> list[MailboxCheck]:
    """Verify each mailbox's archive, ``parallel`` at once; one verdict per mailbox, in
    the order given."""
    gate = asyncio.Semaphore(max(1, parallel))

    async def gated(upn: str) -> MailboxCheck:
        async with gate:
            return await _one(tenant, upn, vault, paths, deep)

    return list(await asyncio.gather(*(gated(upn) for upn in upns)))
