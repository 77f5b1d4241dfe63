"""What a sync run reports: per-folder counts and errors, progress and engine events.

In plan-only mode (a dry run) the same report says what a real run would do: ``planned``
and ``planned_bytes`` instead of ``fetched`` and ``bytes``, and the other counts as
planned."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exoimap.errors import ExoimapError

__all__ = [
    "EventHook",
    "FolderReport",
    "Progress",
    "ProgressCallback",
    "SyncEvent",
    "SyncReport",
]


@dataclass(slots=True)
class FolderReport:
    """What happened to one folder."""

    source: str
    target: str
    #: The target folder is new (created by this run, or to be created).
    new_folder: bool = False
    fetched: int = 0
    bytes: int = 0
    flags_changed: int = 0
    rematched: int = 0
    gone: int = 0
    expunged: int = 0
    refetched_missing: int = 0
    #: Source UIDs whose content changed under the same UID (fetched again; the old copies
    #: are kept marked gone, or expunged when mirroring).
    content_changed: list[int] = field(default_factory=list)
    #: Fetched messages the target recognised as content it held (not stored twice).
    adopted: int = 0
    #: Unanchored target messages that are gone unless the fetch finds their content again.
    gone_unless_adopted: int = 0
    planned: int = 0
    #: Bytes of the planned messages (as the source lists them: an estimate on Exchange).
    planned_bytes: int = 0
    #: Source messages not copied, with the reason (larger than the target takes).
    skipped: list[tuple[int, str]] = field(default_factory=list)
    #: Source messages copied without some of their keywords, which the target cannot
    #: keep (no ``\\*`` in its PERMANENTFLAGS): UID and the keywords left behind.
    keywords_dropped: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    #: bytes read from the source (stored or not), for progress
    bytes_read: int = 0
    errors: list[ExoimapError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.errors or self.skipped)


@dataclass(slots=True)
class SyncReport:
    """The result of :func:`exoimap.sync.sync`; ``partial`` means some folders failed
    (the CLI turns that into exit code 4). ``plan_only``: a dry run's report."""

    started: _dt.datetime
    plan_only: bool = False
    finished: _dt.datetime | None = None
    folders: list[FolderReport] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    folders_gone: list[str] = field(default_factory=list)
    folders_deleted: list[str] = field(default_factory=list)
    recovery_notes: list[str] = field(default_factory=list)
    errors: list[ExoimapError] = field(default_factory=list)
    #: The error that stopped the folders not yet done (a full disk, an unreachable server).
    stopped_by: ExoimapError | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and all(f.ok for f in self.folders)

    @property
    def partial(self) -> bool:
        return not self.ok

    @property
    def fetched(self) -> int:
        return sum(f.fetched for f in self.folders)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders)

    def summary(self) -> dict[str, Any]:
        """Plain numbers, for logs and the audit trail."""
        return {
            "folders": len(self.folders),
            "failed_folders": sum(1 for f in self.folders if not f.ok),
            "fetched": self.fetched,
            "bytes": self.bytes,
            "flags_changed": sum(f.flags_changed for f in self.folders),
            "rematched": sum(f.rematched for f in self.folders),
            "gone": sum(f.gone for f in self.folders),
            "expunged": sum(f.expunged for f in self.folders),
            "refetched_missing": sum(f.refetched_missing for f in self.folders),
            "content_changed": sum(len(f.content_changed) for f in self.folders),
            "adopted": sum(f.adopted for f in self.folders),
            "skipped": sum(len(f.skipped) for f in self.folders),
            "keywords_dropped": sum(len(f.keywords_dropped) for f in self.folders),
            "planned": sum(f.planned for f in self.folders),
            "created": len(self.created),
            "renamed": len(self.renamed),
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress update: the current folder's and the whole run's numbers so far.

    ``total_planned`` grows while folders are planned; a bar can use it as its total. A
    large folder is planned one window of UIDs at a time: ``folder_planned`` grows too, and
    is final once ``folder_plan_final``."""

    folder: str
    folder_done: int
    folder_planned: int
    folder_bytes: int
    total_done: int
    total_planned: int
    total_bytes: int
    folder_plan_final: bool = True


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class SyncEvent:
    """One thing the engine did (``kind`` names it; ``detail`` has plain values).

    Kinds: ``sync_started``, ``sync_finished``, ``state_notes``, ``folder_created``,
    ``folder_renamed``, ``folder_gone``, ``folder_deleted``, ``messages_stored``,
    ``flags_changed``, ``messages_rematched``, ``messages_gone``, ``messages_expunged``,
    ``lost_content_refetched``, ``content_changed`` (source UIDs in ``uids``),
    ``folder_failed``, ``content_check_skipped``."""

    kind: str
    folder: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


EventHook = Callable[[SyncEvent], None]
