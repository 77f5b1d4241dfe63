"""One sync run's shared state: the two stores, the sync state, the policy, the report,
and the callbacks (progress, engine events)."""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field

from exoimap.store.base import Store, SyncState
from exoimap.sync.plan import SyncPolicy
from exoimap.sync.report import EventHook, ProgressCallback, SyncEvent, SyncReport

__all__ = ["Run"]


@dataclass(slots=True)
class Run:
    source: Store
    target: Store
    state: SyncState
    policy: SyncPolicy
    report: SyncReport
    progress: ProgressCallback | None
    events: EventHook | None
    clock: Callable[[], _dt.datetime]
    #: Set when an error that cannot heal (a full disk, an unreachable server) stops the run.
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    #: Why the run stopped (with ``abort``), for the folders it skips.
    stop_reason: str = ""
    total_done: int = 0
    total_planned: int = 0
    total_bytes: int = 0

    def emit(self, kind: str, folder: str | None = None, **detail: object) -> None:
        if self.events is not None:
            self.events(SyncEvent(kind=kind, folder=folder, detail=dict(detail)))
