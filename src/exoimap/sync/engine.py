"""The sync engine: carries out plans between a source store and the archive.

It knows nothing about IMAP or files: it sees the :class:`~exoimap.store.base.Store`
protocol on the source side and the archive's extra operations (origins, gone markers,
source state) on the target side.

Folders are synced concurrently (an :class:`asyncio.TaskGroup`, at most
``min(policy.max_parallel_folders, source and archive connection limits)`` at once); one
failing folder is recorded in the report and does not stop the others, except that a
store-wide error that cannot heal (a full disk) stops the folders not yet started. Messages
move in batches: one large fetch from the source streams straight into one group commit in
the archive.

A crash at any point is safe: the archive commits each batch atomically together with the
origin of every message, so the next run plans again from what is actually stored and
fetches exactly what is still missing.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from exoimap.errors import ErrorScope, ExoimapError, MessageError, StoreError
from exoimap.store.archive import ArchiveFolder, ArchiveStore, FolderRow
from exoimap.store.base import AppendItem, FetchedMessage, Folder, MessageRef, Store
from exoimap.sync.plan import (
    ArchivedFolder,
    BackupPolicy,
    FolderPlan,
    MessagePlan,
    apply_content_renames,
    archive_name,
    match_by_content,
    needs_rematch,
    plan_folders,
    plan_messages,
)
from exoimap.sync.report import (
    AuditEvent,
    AuditHook,
    FolderReport,
    Progress,
    ProgressCallback,
    SyncReport,
)

__all__ = ["backup"]

Clock = Callable[[], _dt.datetime]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


@dataclass(slots=True)
class _Run:
    source: Store
    archive: ArchiveStore
    policy: BackupPolicy
    report: SyncReport
    progress: ProgressCallback | None
    audit: AuditHook | None
    clock: Clock
    abort: asyncio.Event
    total_done: int = 0
    total_planned: int = 0
    total_bytes: int = 0

    def emit(self, kind: str, folder: str | None = None, **detail: object) -> None:
        if self.audit is not None:
            self.audit(AuditEvent(kind=kind, folder=folder, detail=dict(detail)))


async def backup(
    source: Store,
    archive: ArchiveStore,
    policy: BackupPolicy | None = None,
    progress: ProgressCallback | None = None,
    audit: AuditHook | None = None,
    *,
    clock: Clock = _utcnow,
) -> SyncReport:
    """Back up every folder of ``source`` into ``archive``; see :mod:`exoimap.sync.plan`.

    Returns a :class:`SyncReport`; ``report.partial`` is true when some folder failed.
    Raises only when the run cannot start or the folder list cannot be read.
    """
    policy = policy or BackupPolicy()
    run = _Run(
        source=source,
        archive=archive,
        policy=policy,
        report=SyncReport(started=clock()),
        progress=progress,
        audit=audit,
        clock=clock,
        abort=asyncio.Event(),
    )
    for earlier in await archive.begin_run({"mode": "backup", "mirror": policy.mirror}):
        run.emit("previous_run_interrupted", run=earlier.get("run"), pid=earlier.get("pid"))
    if archive.recovery_notes:
        run.report.recovery_notes = list(archive.recovery_notes)
        run.emit("recovered", notes=list(archive.recovery_notes))
    run.emit("backup_started", mirror=policy.mirror)
    pairs = await _sync_folder_list(run)
    limit = max(
        1,
        min(
            policy.max_parallel_folders,
            source.capabilities.max_connections,
            archive.capabilities.max_connections,
        ),
    )
    gate = asyncio.Semaphore(limit)
    unchanged = await _unchanged_folders(run, pairs)
    async with asyncio.TaskGroup() as group:
        for source_name, archive_name_ in pairs:
            folder_report = FolderReport(source=source_name, archive=archive_name_)
            run.report.folders.append(folder_report)
            if source_name not in unchanged:
                group.create_task(_folder_task(run, gate, folder_report))
    if not run.abort.is_set():
        try:
            await archive.record_files_checked([a for s, a in pairs if s not in unchanged])
        except StoreError as exc:  # only an optimisation for the next run: never fatal
            run.emit("files_stamps_skipped", error=str(exc), type=type(exc).__name__)
    run.report.finished = clock()
    await archive.end_run(run.report.summary())
    run.emit("backup_finished", **run.report.summary())
    return run.report


async def _sync_folder_list(run: _Run) -> list[tuple[str, str]]:
    source, archive = run.source, run.archive
    listed = await source.list_folders()
    records = await archive.folder_records()
    known = {r.name for r in records}
    new_folders = [
        info.name
        for info in listed
        if info.selectable and archive_name(info.name, info.delimiter) not in known
    ]
    uidvalidity = {
        name: state.uidvalidity for name, state in (await source.folder_states(new_folders)).items()
    }
    plan = plan_folders(
        listed,
        uidvalidity,
        [ArchivedFolder(r.name, r.source_uidvalidity, r.gone_at is not None) for r in records],
        run.policy,
    )
    if plan.creates and (plan.gone or plan.deletes):
        await _renames_by_content(run, plan)
    for old, new in plan.renames:
        await archive.rename_folder(old, new)
        run.report.renamed.append((old, new))
        run.emit("folder_renamed", old, new_name=new)
    for name, role in plan.creates:
        if await archive.folder_record(name) is None:
            await archive.create_folder(name, role=role)
            run.report.created.append(name)
            run.emit("folder_created", name)
    for name in plan.gone:
        await archive.mark_folder_gone(name, run.clock())
        run.report.folders_gone.append(name)
        run.emit("folder_gone", name)
    for name in plan.deletes:
        await archive.delete_folder(name)
        run.report.folders_deleted.append(name)
        run.emit("folder_deleted", name)
    return plan.pairs


async def _unchanged_folders(run: _Run, pairs: list[tuple[str, str]]) -> set[str]:
    """Source folders that need no work at all, found without opening any: the server's
    ``(UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ)`` equals what the last sync of the folder
    recorded (with QRESYNC every new, changed or expunged message raises HIGHESTMODSEQ) and
    no file of the archive folder was added, removed or renamed since its files were last
    found complete. One pipelined STATUS for all folders: a no-change resync costs one
    round trip instead of a SELECT and a listing per folder."""
    caps = run.source.capabilities
    if not (caps.condstore and caps.qresync):
        return set()  # Exchange: flag changes are only seen by listing every folder
    records = {r.name: r for r in await run.archive.folder_records()}
    recorded: dict[str, FolderRow] = {}
    for source_name, archive_name_ in pairs:
        record = records.get(archive_name_)
        if (
            record is not None
            and record.source_modseq is not None
            and record.gone_at is None
            and await run.archive.files_unchanged(record.name)
        ):
            recorded[source_name] = record
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


async def _renames_by_content(run: _Run, plan: FolderPlan) -> None:
    """New and vanished folders at once: compare their Message-IDs (a rename that also
    changed UIDVALIDITY). Costs a detailed listing of those folders only."""
    source_of = {archive: source for source, archive in plan.pairs}
    new_ids: dict[str, set[str]] = {}
    for name, _role in plan.creates:
        if name not in source_of:
            continue
        async with run.source.open_folder(source_of[name]) as folder:
            listing = await folder.list_messages(detail=True)
        new_ids[name] = {m.message_id for m in listing.messages if m.message_id}
    old_ids: dict[str, set[str]] = {}
    for name in [*plan.gone, *plan.deletes]:
        async with run.archive.open_folder(name) as archived:
            stored = (await archived.list_messages(detail=True)).messages
        old_ids[name] = {m.message_id for m in stored if m.message_id and m.gone_at is None}
    apply_content_renames(plan, match_by_content(new_ids, old_ids))


async def _folder_task(run: _Run, gate: asyncio.Semaphore, report: FolderReport) -> None:
    async with gate:
        if run.abort.is_set():
            report.errors.append(
                StoreError("skipped: the archive cannot take more data", folder=report.source)
            )
            return
        try:
            await _sync_folder(run, report)
        except ExoimapError as exc:
            report.errors.append(exc)
            run.emit("folder_failed", report.source, error=str(exc), type=type(exc).__name__)
            if isinstance(exc, StoreError) and exc.scope is ErrorScope.STORE and not exc.retryable:
                run.abort.set()


async def _sync_folder(run: _Run, report: FolderReport) -> None:
    source, archive = run.source, run.archive
    async with (
        source.open_folder(report.source) as source_folder,
        archive.open_folder(report.archive) as archive_folder,
    ):
        missing = await archive_folder.missing_files()
        if missing:
            await archive_folder.forget(missing)
            report.refetched_missing = len(missing)
            run.emit("missing_files_refetched", report.archive, count=len(missing))
        stored = (await archive_folder.list_messages()).messages
        record = await archive.folder_record(report.archive)
        state = await source_folder.state()
        rematch = needs_rematch(stored, state.uidvalidity)
        if rematch:  # matching needs Message-IDs, sizes and dates
            stored = (await archive_folder.list_messages(detail=True)).messages
        since: int | None = None
        if (
            source.capabilities.condstore
            and source.capabilities.qresync  # without VANISHED, expunges would go unseen
            and not rematch
            and not missing
            and record is not None
            and record.source_uidvalidity == state.uidvalidity
            and record.source_modseq is not None
            and state.highest_modseq is not None
        ):
            if state.highest_modseq == record.source_modseq:
                return
            since = record.source_modseq
        listing = await source_folder.list_messages(changed_since=since, detail=rematch)
        uidvalidity = listing.state.uidvalidity
        plan = plan_messages(
            uidvalidity, listing, stored, exact_sizes=source.capabilities.exact_sizes
        )
        report.planned = len(plan.fetch)
        run.total_planned += len(plan.fetch)
        await _apply_metadata(run, report, archive_folder, plan)
        for start in range(0, len(plan.fetch), run.policy.batch_messages):
            if run.abort.is_set():
                raise StoreError("stopped: the archive cannot take more data")
            batch = plan.fetch[start : start + run.policy.batch_messages]
            await _fetch_batch(
                run,
                report,
                source_folder,
                archive_folder,
                plan=plan,
                batch=batch,
                uidvalidity=uidvalidity,
            )
            archive.crash_point("engine.batch")
        gone = list(plan.gone)
        if plan.gone_unless_adopted:
            after = {m.uid: m for m in (await archive_folder.list_messages()).messages}
            for uid in plan.gone_unless_adopted:
                message = after.get(uid)
                if message is not None and (
                    message.origin is None or message.origin.uidvalidity != uidvalidity
                ):
                    gone.append(uid)
        if gone:
            if run.policy.mirror:
                await archive_folder.expunge(gone)
                report.expunged = len(gone)
                run.emit("messages_expunged", report.archive, count=len(gone))
            else:
                await archive_folder.mark_gone(gone, run.clock())
                report.gone = len(gone)
                run.emit("messages_gone", report.archive, count=len(gone))
        await archive.set_folder_source(
            report.archive,
            uidvalidity=uidvalidity,
            uidnext=listing.state.uidnext,
            # after a failed message, the next run must list everything again to retry it
            modseq=listing.state.highest_modseq if report.ok else None,
        )


async def _apply_metadata(
    run: _Run, report: FolderReport, folder: ArchiveFolder, plan: MessagePlan
) -> None:
    if plan.origins:
        await folder.set_origins(plan.origins)
        report.rematched = len(plan.origins)
        run.emit("messages_rematched", report.archive, count=len(plan.origins))
    if plan.flags:
        await folder.set_flags(plan.flags)
        report.flags_changed = len(plan.flags)
        run.emit("flags_changed", report.archive, count=len(plan.flags))


async def _fetch_batch(
    run: _Run,
    report: FolderReport,
    source_folder: Folder,
    archive_folder: ArchiveFolder,
    *,
    plan: MessagePlan,
    batch: Sequence[int],
    uidvalidity: int,
) -> None:
    remaining = list(batch)
    while remaining:
        read: list[tuple[int, int]] = []
        try:
            items = _items(run, report, source_folder.fetch(remaining), uidvalidity, read)
            if plan.adopt_unanchored:
                stored = await archive_folder.append_matching(items)
            else:
                stored = await archive_folder.append(items)
        except MessageError as exc:
            report.errors.append(exc)
            run.emit("folder_failed", report.source, error=str(exc), uid=exc.uid)
            done = [(uid, size) for uid, size in read if exc.uid is None or uid < exc.uid]
            _count(run, report, done)
            if exc.uid is None:
                return
            remaining = [uid for uid in remaining if uid > exc.uid]
            continue
        _count(run, report, read[: len(stored)])
        remaining = []


def _count(run: _Run, report: FolderReport, done: list[tuple[int, int]]) -> None:
    if not done:
        return
    size = sum(s for _u, s in done)
    report.fetched += len(done)
    report.bytes += size
    run.emit("messages_stored", report.archive, count=len(done), bytes=size)


async def _items(
    run: _Run,
    report: FolderReport,
    fetched: AsyncIterator[FetchedMessage],
    uidvalidity: int,
    read: list[tuple[int, int]],
) -> AsyncIterator[AppendItem]:
    """Source messages as archive items. The chunk streams pass through untouched (no
    extra generator per chunk); a message counts as read when the archive asks for the
    next one."""
    previous: FetchedMessage | None = None
    while True:
        try:
            message = await anext(fetched)
        except StopAsyncIteration:
            break
        except BaseException:
            # asking for the next message means the previous one was consumed whole
            if previous is not None:
                _read_one(run, report, previous, read)
            raise
        if previous is not None:
            _read_one(run, report, previous, read)
        previous = message
        yield AppendItem(
            chunks=message.chunks,
            size=message.size,
            flags=message.flags,
            internal_date=message.internal_date,
            origin=MessageRef(uidvalidity, message.uid),
        )
    if previous is not None:
        _read_one(run, report, previous, read)


def _read_one(
    run: _Run, report: FolderReport, message: FetchedMessage, read: list[tuple[int, int]]
) -> None:
    read.append((message.uid, message.size))
    run.total_done += 1
    run.total_bytes += message.size
    report.bytes_read += message.size
    if run.progress is not None:
        run.progress(
            Progress(
                folder=report.source,
                folder_done=report.fetched + len(read),
                folder_planned=report.planned,
                folder_bytes=report.bytes_read,
                total_done=run.total_done,
                total_planned=run.total_planned,
                total_bytes=run.total_bytes,
            )
        )
