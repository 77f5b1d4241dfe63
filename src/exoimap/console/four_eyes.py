"""What a four-eyes request may be filed for, by whom, and carrying one out once approved.

Who may file (checked again when it is carried out, with the person's roles then):

``restore_elsewhere``
    a message of mailbox A into mailbox B: restoring in both (``restore_operator`` with both
    in scope, or ``self`` for neither: a person's own mailbox is the only one they have).
``export``
    a folder, as mbox: exporting in that mailbox (``auditor`` within scope).
``delete``
    a message from the archive: ``compliance_officer``; refused while a legal hold is on.
``release_hold``
    a legal hold: ``compliance_officer``.

Approving is ``compliance_officer``'s, and never for one's own request
(:class:`~exoimap.console.approvals.ApprovalBook`).
"""

from __future__ import annotations

import datetime as _dt
import glob
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from exoimap.app.export import ExportOptions, export_account
from exoimap.config import load_config
from exoimap.console.approvals import ApprovalError, ApprovalRequest
from exoimap.console.archives import Mailbox, Mailboxes
from exoimap.console.policy import Action, Principal, decide
from exoimap.console.restoring import ProviderFactory, restore_message
from exoimap.errors import StoreError
from exoimap.store.archive import ArchiveStore, active_holds, release_hold
from exoimap.store.search import update_search

__all__ = ["Carried", "carry_out", "may_file"]


@dataclass(frozen=True)
class Carried:
    """What carrying out a request did; ``download``: a file to hand over (name, bytes)."""

    message: str
    download: tuple[str, bytes] | None = None


def may_file(
    principal: Principal,
    request: ApprovalRequest | Mapping[str, str],
    mailboxes: Mailboxes,
    scopes: Mapping[str, tuple[str, ...]],
) -> str:
    """Why ``principal`` may not file (or carry out) this request ("" when they may)."""
    fields = _fields(request)
    kind, source = fields.get("kind", ""), mailboxes.find(fields.get("account", ""))
    if source is None:
        return "there is no such mailbox"
    if kind == "restore_elsewhere":
        target = mailboxes.configured(fields.get("target", ""))
        if target is None or target.account == source.account:
            return "name another mailbox to restore into"
        for mailbox in (source, target):
            if not decide(principal, Action.RESTORE_MESSAGE, mailbox.email, scopes).allowed:
                return "restoring in both mailboxes is not within your roles"
        return ""
    if kind == "export":
        allowed = decide(principal, Action.EXPORT_FOLDER, source.email, scopes).allowed
        return "" if allowed else "exporting from this mailbox is not within your roles"
    if kind == "delete":
        if not decide(principal, Action.DELETE_MESSAGE).allowed:
            return "deleting from the archive is not within your roles"
        held = active_holds(source.archive)
        return f"the mailbox is under legal hold {held[0].id}" if held else ""
    if kind == "release_hold":
        return "" if decide(principal, Action.MANAGE_HOLDS).allowed else "holds are not yours"
    return "unknown kind of request"


def _fields(request: ApprovalRequest | Mapping[str, str]) -> dict[str, str]:
    if isinstance(request, ApprovalRequest):
        return {"kind": request.kind, "account": request.account, **request.scope}
    return dict(request)


async def carry_out(
    request: ApprovalRequest,
    mailboxes: Mailboxes,
    providers: ProviderFactory,
    days: tuple[_dt.date | None, _dt.date | None] = (None, None),
) -> Carried:
    """Do what the (approved, taken) request says; an export or restore selects only
    messages archived within ``days`` (both included: the date window of the scope)."""
    source = mailboxes.find(request.account)
    if source is None:
        raise ApprovalError("the mailbox of this request no longer exists")
    scope = request.scope
    if request.kind == "release_hold":
        released = release_hold(source.archive, scope.get("hold", ""), request.requester)
        if released is None:
            raise ApprovalError("that hold is not active any more")
        return Carried(f"hold {released.id} on {source.email} released")
    if request.kind == "delete":
        return await _delete(mailboxes, source, scope.get("folder", ""), _uid(scope))
    if request.kind == "restore_elsewhere":
        outcome = await restore_message(
            mailboxes.paths,
            source.account,
            scope.get("folder", ""),
            scope.get("message_id", ""),
            providers,
            target=scope.get("target"),
            days=days,
        )
        if outcome.error:
            raise ApprovalError(f"the restore failed: {outcome.error}")
        return Carried(f"restored into {scope.get('target')}, folder {outcome.folder}")
    return await _export(mailboxes, source, scope.get("folder", ""), days)


def _uid(scope: Mapping[str, str]) -> int:
    text = scope.get("uid", "")
    if not text.isdigit():
        raise ApprovalError("the request names no message")
    return int(text)


async def _delete(mailboxes: Mailboxes, source: Mailbox, folder: str, uid: int) -> Carried:
    store = ArchiveStore.open(source.archive, create=False)
    try:
        names = {i.name for i in await store.list_folders() if i.selectable}
        if folder not in names:
            raise ApprovalError("there is no such folder")
        async with store.open_folder(folder) as opened:
            await opened.expunge([uid])  # ArchiveHeld under a legal hold
        await update_search(store, mailboxes.search, account=source.account, mailbox=source.email)
    finally:
        await store.close()
    return Carried(f"message {uid} of {folder} deleted from the archive of {source.email}")


async def _export(
    mailboxes: Mailboxes,
    source: Mailbox,
    folder: str,
    days: tuple[_dt.date | None, _dt.date | None],
) -> Carried:
    account = load_config(mailboxes.paths).account(source.account)
    options = ExportOptions(
        format="mbox", folders=(glob.escape(folder),), since=days[0], until=days[1]
    )
    with tempfile.TemporaryDirectory(prefix="exoimap-console-export-") as scratch:
        result = await export_account(account, mailboxes.paths, Path(scratch) / "out", options)
        files = sorted(Path(result.out).rglob("*.mbox")) if result.messages else []
        if not files:
            raise StoreError(f"the folder {folder!r} has nothing to export")
        data = files[0].read_bytes()
    return Carried(f"{result.messages} messages exported", (f"{source.account}.mbox", data))
