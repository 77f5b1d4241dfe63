"""The engine's events in the audit log: what a sync changed besides copying messages
(copies and flag updates are counted per folder in ``sync.folder``)."""

from __future__ import annotations

from exoimap import audit
from exoimap.sync.report import EventHook, SyncEvent

__all__ = ["sync_event_recorder"]

#: Engine event kinds that become a ``sync.change`` audit record.
_AUDITED = frozenset(
    {
        "folder_created",
        "folder_renamed",
        "folder_gone",
        "folder_deleted",
        "messages_gone",
        "messages_expunged",
        "messages_rematched",
        "lost_content_refetched",
        "content_changed",
        "state_notes",
    }
)


def sync_event_recorder(account: str) -> EventHook:
    """An engine event hook that records the auditable events for ``account``."""

    def record(event: SyncEvent) -> None:
        if event.kind not in _AUDITED:
            return
        # a content change names the server UIDs concerned
        notes = event.detail.get("notes", event.detail.get("uids", ()))
        new_name = event.detail.get("new_name")
        count = event.detail.get("count", 0)
        audit.emit(
            audit.SyncChange(
                account=account,
                change=event.kind,
                folder=event.folder,
                new_name=new_name if isinstance(new_name, str) else None,
                count=count if isinstance(count, int) else 0,
                notes=tuple(str(n) for n in notes) if isinstance(notes, list | tuple) else (),
            )
        )

    return record
