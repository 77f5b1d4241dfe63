"""The sync engine: makes a target store match a source store, in any direction.

It sees two :class:`~exoimap.store.base.Store` objects and a
:class:`~exoimap.store.base.SyncState` (what it remembers about the pair), nothing else:
no IMAP, no files, no SQL. The same code runs a backup (mailbox -> archive), a restore
(archive -> mailbox), a migration (mailbox -> mailbox) and anything with the in-memory
store. The planning is pure (:mod:`exoimap.sync.plan`); this module gathers its inputs and
carries out its actions, or with ``plan_only`` only reports them (a dry run is this code
with its hands tied, so it cannot disagree with a real run).

Folders are synced concurrently (an :class:`asyncio.TaskGroup`, at most
``min(policy.max_parallel_folders, both stores' connection limits)`` at once); one failing
folder is recorded in the report and does not stop the others, except that an error that
cannot heal (a full disk, a server unreachable past its deadline) stops the folders not yet
started. A folder is
listed, planned and carried out one window of source UIDs at a time
(:mod:`exoimap.sync.listings`), so memory stays flat however large it is. Messages move in
batches: one large fetch from the source streams straight into one append on the target
(:mod:`exoimap.sync.transfer`).

Crash safety is the target's and the state's business: the archive commits each batch
atomically together with the origin of every message, so the next run plans again from
what is actually stored and fetches exactly what is still missing.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Callable, Mapping

from exoimap.errors import ErrorScope, ExoimapError, NetworkError, StoreError
from exoimap.store.base import (
    Folder,
    FolderState,
    FolderSyncRecord,
    Store,
    SyncState,
)
from exoimap.sync.folders import FolderPlanner
from exoimap.sync.listings import TargetSide, WindowPlan, plan_windows
from exoimap.sync.plan import MessagePlan, SyncPolicy
from exoimap.sync.report import EventHook, FolderReport, ProgressCallback, SyncReport
from exoimap.sync.run import Run
from exoimap.sync.transfer import Transfer

__all__ = ["sync"]

Clock = Callable[[], _dt.datetime]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


async def sync(
    source: Store,
    target: Store,
    state: SyncState,
    policy: SyncPolicy | None = None,
    *,
    progress: ProgressCallback | None = None,
    events: EventHook | None = None,
    clock: Clock = _utcnow,
    plan_only: bool = False,
) -> SyncReport:
    """Make ``target`` match ``source``; see :mod:`exoimap.sync.plan` for the rules.

    With ``plan_only`` nothing is changed anywhere (neither store nor the state) and the
    report says what a real run would do. Returns a :class:`SyncReport`;
    ``report.partial`` is true when some folder failed. Raises only when the run cannot
    start or a folder list cannot be read.
    """
    policy = policy or SyncPolicy()
    run = Run(
        source=source,
        target=target,
        state=state,
        policy=policy,
        report=SyncReport(started=clock(), plan_only=plan_only),
        progress=progress,
        events=events,
        clock=clock,
    )
    if not plan_only:
        await _begin(run)
    planner = FolderPlanner(run)
    pairs = await planner.plan()
    known = planner.records
    if planner.changes and not plan_only:
        await planner.apply()
        known = await state.folders()
    records = {r.name: r for r in known}
    unchanged = await _unchanged_folders(run, pairs, records)
    await _sync_folders(run, planner, pairs, records, unchanged)
    run.report.finished = clock()
    if not plan_only:
        await _finish(run, [t for s, t in pairs if s not in unchanged])
    return run.report


async def _begin(run: Run) -> None:
    notes = await run.state.begin_run({"mirror": run.policy.mirror})
    if notes:
        run.report.recovery_notes = list(notes)
        run.emit("state_notes", notes=list(notes))
    run.emit("sync_started", mirror=run.policy.mirror)


async def _sync_folders(
    run: Run,
    planner: FolderPlanner,
    pairs: list[tuple[str, str]],
    records: Mapping[str, FolderSyncRecord],
    unchanged: set[str],
) -> None:
    """Every folder pair at once, within the stores' connection limits."""
    caps = (run.source.capabilities, run.target.capabilities)
    limit = min(run.policy.max_parallel_folders, *(c.max_connections for c in caps))
    gate = asyncio.Semaphore(max(1, limit))  # first come, first served
    reports = [
        FolderReport(source=source, target=target, new_folder=planner.is_new(target))
        for source, target in pairs
    ]
    run.report.folders.extend(reports)  # the report keeps the listed order
    async with asyncio.TaskGroup() as group:
        for report in sorted(reports, key=lambda r: planner.start_rank(r.source)):
            if report.source not in unchanged:
                record = records.get(report.target)
                group.create_task(_folder_task(run, gate, report, record, planner))


async def _finish(run: Run, synced: list[str]) -> None:
    if not run.abort.is_set():
        try:
            await run.state.content_checked(synced)
        except StoreError as exc:  # only an optimisation for the next run: never fatal
            run.emit("content_check_skipped", error=str(exc), type=type(exc).__name__)
    await run.state.end_run(run.report.summary())
    run.emit("sync_finished", **run.report.summary())


async def _unchanged_folders(
    run: Run, pairs: list[tuple[str, str]], records: Mapping[str, FolderSyncRecord]
) -> set[str]:
    """Source folders that need no work at all, found without opening any: the server's
    ``(UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ)`` equals what the last sync of the folder
    recorded (with QRESYNC every new, changed or expunged message raises HIGHESTMODSEQ) and
    the state knows that nothing touched the target folder's content since. One pipelined
    STATUS for all folders: a no-change resync costs one round trip instead of a SELECT
    and a listing per folder."""
    caps = run.source.capabilities
    if not (caps.condstore and caps.qresync):
        return set()  # Exchange: flag changes are only seen by listing every folder
    candidates = {
        source_name: record
        for source_name, target_name_ in pairs
        if (record := records.get(target_name_)) is not None
        and record.source_modseq is not None
        and record.gone_at is None
    }
    untouched = await run.state.content_unchanged([r.name for r in candidates.values()])
    recorded = {name: r for name, r in candidates.items() if r.name in untouched}
    if not recorded:
        return set()
    try:
        states = await run.source.folder_states(list(recorded))
    except ExoimapError:
        return set()  # each folder's own sync meets the problem and reports it
    return {
        name
        for name, record in recorded.items()
        if (state := states.get(name)) is not None
        and (state.uidvalidity, state.uidnext, state.highest_modseq)
        == (record.source_uidvalidity, record.source_uidnext, record.source_modseq)
    }


async def _folder_task(
    run: Run,
    gate: asyncio.Semaphore,
    report: FolderReport,
    record: FolderSyncRecord | None,
    planner: FolderPlanner,
) -> None:
    async with gate:
        if run.abort.is_set():
            report.errors.append(StoreError(f"skipped: {run.stop_reason}", folder=report.source))
            return
        try:
            if (failed := planner.failed.get(report.target)) is not None:
                raise failed  # the target folder could not be created
            if run.report.plan_only:
                await _plan_folder(run, report, planner)
            else:
                await _sync_folder(run, report, record)
        except ExoimapError as exc:
            report.errors.append(exc)
            run.emit("folder_failed", report.source, error=str(exc), type=type(exc).__name__)
            if (reason := _stops_the_run(exc)) is not None and not run.abort.is_set():
                run.stop_reason = reason
                run.report.stopped_by = exc
                run.abort.set()


def _stops_the_run(exc: ExoimapError) -> str | None:
    """Why ``exc`` stops the folders not yet done, or None when only its folder failed."""
    if isinstance(exc, StoreError) and exc.scope is ErrorScope.STORE and not exc.retryable:
        return "the target cannot take more data"
    if isinstance(exc, NetworkError) and not exc.retryable:
        return "the server cannot be reached"
    return None


async def _plan_folder(run: Run, report: FolderReport, planner: FolderPlanner) -> None:
    """Plan-only: what :func:`_sync_folder` would do, reading but changing nothing."""
    current = planner.current_name(report.target)
    if current is None:
        async with run.source.open_folder(report.source) as source_folder:
            await _plan_windows_only(run, report, source_folder, None)
        return
    async with (
        run.source.open_folder(report.source) as source_folder,
        run.target.open_folder(current) as target_folder,
    ):
        lost = await run.state.content_lost(current)
        report.refetched_missing = len(lost)
        await _plan_windows_only(run, report, source_folder, (target_folder, frozenset(lost)))


async def _plan_windows_only(
    run: Run, report: FolderReport, source: Folder, target: tuple[Folder, frozenset[int]] | None
) -> None:
    """Add up each window's plan into ``report`` (``target``: the open target folder and
    the UIDs to leave out, ``None`` when the folder is still to be created)."""
    folder_state = await source.state()
    if target is None:
        side = TargetSide.empty(run.state, folder_state.uidvalidity)
    else:
        side = await TargetSide.read(
            run.state,
            target[0],
            folder_state.uidvalidity,
            per_window=run.policy.window_messages,
            detail=True,
            sized=run.policy.follow_content,
            left_out=target[1],
        )
    async for window in plan_windows(run, source, side, folder_state, since=None, detail=True):
        listing, plan = window.listing, window.plan
        sizes = {m.uid: m.size or 0 for m in listing.messages}
        report.planned += len(plan.fetch)
        report.planned_bytes += sum(sizes.get(uid, 0) for uid in plan.fetch)
        report.flags_changed += len(plan.flags)
        report.rematched += len(plan.origins)
        report.content_changed += sorted(plan.replaced.values())
        if run.policy.mirror:
            report.expunged += len(plan.gone)
        else:
            report.gone += len(plan.gone)
        report.gone_unless_adopted += len(plan.gone_unless_adopted)
        report.skipped += sorted(plan.skipped.items())


async def _sync_folder(run: Run, report: FolderReport, record: FolderSyncRecord | None) -> None:
    source, target, state = run.source, run.target, run.state
    async with (
        source.open_folder(report.source) as source_folder,
        target.open_folder(report.target) as target_folder,
    ):
        lost = await state.content_lost(report.target)
        if lost:
            await state.forget(report.target, lost)
            report.refetched_missing = len(lost)
            run.emit("lost_content_refetched", report.target, count=len(lost))
        folder_state = await source_folder.state()
        side = await TargetSide.read(
            state,
            target_folder,
            folder_state.uidvalidity,
            per_window=run.policy.window_messages,
            sized=run.policy.follow_content,
        )
        since: int | None = None
        if _incremental(run, record, folder_state.uidvalidity) and not (side.rematch or lost):
            assert record is not None  # checked by _incremental
            if folder_state.highest_modseq == record.source_modseq:
                return
            since = record.source_modseq
        first: FolderState | None = None
        windows = plan_windows(
            run,
            source_folder,
            side,
            folder_state,
            since=since,
            detail=side.rematch or _needs_detail(run),
        )
        async for window in windows:
            # the first window's counters: every change after them is seen by the next run
            first = first or window.listing.state
            await _apply(run, report, window, source=source_folder, target=target_folder)
        assert first is not None  # there is always a window
        await state.folder_synced(
            report.target,
            uidvalidity=first.uidvalidity,
            uidnext=first.uidnext,
            # after a failed message, the next run must list everything again to retry it
            modseq=first.highest_modseq if report.ok else None,
        )


async def _apply(
    run: Run, report: FolderReport, window: WindowPlan, *, source: Folder, target: Folder
) -> None:
    """Carry out one window's plan."""
    listing, plan = window.listing, window.plan
    report.planned += len(plan.fetch)
    report.skipped += sorted(plan.skipped.items())
    run.total_planned += len(plan.fetch)
    await _apply_metadata(run, report, target, plan)
    await _set_aside_replaced(run, report, plan)
    uidvalidity = listing.state.uidvalidity
    await Transfer(run, report, source, target, uidvalidity, listing, window.final).copy(plan)
    await _apply_gone(run, report, target, plan, uidvalidity)
    if run.policy.mirror and plan.replaced:
        await target.expunge(list(plan.replaced))
        await run.state.forget(report.target, list(plan.replaced))


def _incremental(run: Run, record: FolderSyncRecord | None, uidvalidity: int) -> bool:
    """Whether a CONDSTORE listing of changes since the recorded modseq is enough."""
    caps = run.source.capabilities
    return (
        caps.condstore
        and caps.qresync  # without VANISHED, expunges would go unseen
        and record is not None
        and record.source_uidvalidity == uidvalidity
        and record.source_modseq is not None
    )


def _needs_detail(run: Run) -> bool:
    """Whether the plan needs the source's sizes, dates and Message-IDs: to select or
    size-check messages, or to note what an append is about to store (a target that does
    not record origins itself)."""
    policy, caps = run.policy, run.target.capabilities
    return (
        policy.select is not None
        or (policy.max_message_size or caps.max_message_size) is not None
        or not caps.records_origin
    )


async def _apply_metadata(
    run: Run, report: FolderReport, folder: Folder, plan: MessagePlan
) -> None:
    if plan.origins:
        await run.state.set_origins(report.target, plan.origins)
        report.rematched += len(plan.origins)
        run.emit("messages_rematched", report.target, count=len(plan.origins))
    if plan.flags:
        await folder.set_flags(plan.flags)
        report.flags_changed += len(plan.flags)
        run.emit("flags_changed", report.target, count=len(plan.flags))


async def _set_aside_replaced(run: Run, report: FolderReport, plan: MessagePlan) -> None:
    """Before the new content is fetched: the old copies stop standing for their source
    message (kept as gone), so a crash in between leaves the source message unanchored,
    to be fetched by the next run, and never two copies claiming one source UID."""
    if not plan.replaced:
        return
    changed = sorted(plan.replaced.values())
    report.content_changed += changed
    run.emit("content_changed", report.target, count=len(changed), uids=changed)
    await run.state.content_replaced(report.target, list(plan.replaced), run.clock())


async def _apply_gone(
    run: Run, report: FolderReport, folder: Folder, plan: MessagePlan, uidvalidity: int
) -> None:
    gone = list(plan.gone)
    if plan.gone_unless_adopted:
        after = {m.uid: m for m in await run.state.messages(folder)}
        for uid in plan.gone_unless_adopted:
            message = after.get(uid)
            if message is not None and (
                message.origin is None or message.origin.uidvalidity != uidvalidity
            ):
                gone.append(uid)
        report.adopted += len(plan.gone_unless_adopted) - (len(gone) - len(plan.gone))
    if not gone:
        return
    if run.policy.mirror:
        await folder.expunge(gone)
        await run.state.forget(report.target, gone)
        report.expunged += len(gone)
        run.emit("messages_expunged", report.target, count=len(gone))
    else:
        await run.state.mark_gone(report.target, gone, run.clock())
        report.gone += len(gone)
        run.emit("messages_gone", report.target, count=len(gone))
