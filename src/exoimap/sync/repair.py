"""Repair what a verify found: fetch again every message whose stored copy differs from
the source's content, and whatever is missing.

Each differing copy is set aside first through the sync state
(:meth:`~exoimap.store.base.SyncState.content_replaced`: kept, marked gone, no longer
standing for its source message), then the one sync engine runs over the folders that had
differences and fetches every source message left without a copy. A crash in between
loses nothing: the next sync or repair fetches what is still unanchored.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable, Iterable

from exoimap.store.base import Store, SyncState
from exoimap.sync.engine import sync
from exoimap.sync.plan import SyncPolicy
from exoimap.sync.report import EventHook, SyncReport
from exoimap.sync.verify import VerifyReport

__all__ = ["needs_repair", "repair"]


def needs_repair(report: VerifyReport) -> list[str]:
    """Source folders a repair syncs: those with any difference (the sync also sets flags
    and gone marks right), and those missing from the target."""
    folders = [c.source for c in report.folders if not c.ok]
    return sorted({*folders, *report.folders_missing})


async def repair(
    source: Store,
    target: Store,
    state: SyncState,
    report: VerifyReport,
    policy: SyncPolicy | None = None,
    *,
    also: Iterable[str] = (),
    events: EventHook | None = None,
    clock: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC).replace(microsecond=0),
) -> SyncReport | None:
    """Fetch again what ``report`` found differing or missing (``None``: nothing to do).
    ``policy`` is the one the verify used (default: a backup's); ``also`` names more source
    folders to sync (where the target found damage of its own)."""
    policy = policy or SyncPolicy()
    folders = {*needs_repair(report), *also}
    if not folders:
        return None
    now = clock()
    for check in report.folders:
        if check.differing:
            await state.content_replaced(check.target, sorted(check.differing.values()), now)
    chosen = policy.include

    def include(name: str) -> bool:
        return name in folders and (chosen is None or chosen(name))

    narrowed = dataclasses.replace(policy, include=include)
    return await sync(source, target, state, narrowed, events=events, clock=clock)
