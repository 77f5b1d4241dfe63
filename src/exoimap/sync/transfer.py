"""Moving message bodies: one large fetch from the source streams into one append on the
target per batch, and a failing message skips only itself.

The chunk streams pass through untouched (no extra generator per chunk), so a backup runs
at the speed of the source's connection and the target's disk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from exoimap.errors import AppendIncomplete, MessageError, StoreError
from exoimap.store.base import (
    AppendItem,
    ContentMatching,
    FetchedMessage,
    Folder,
    MessageListing,
    MessageRef,
)
from exoimap.sync.plan import MessagePlan
from exoimap.sync.report import FolderReport, Progress
from exoimap.sync.run import Run

__all__ = ["Transfer"]


@dataclass(slots=True)
class _Batch:
    """What one append consumed: source (UID, size) of each message read whole, and the
    flags each came with."""

    read: list[tuple[int, int]] = field(default_factory=list)
    flags: dict[int, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transfer:
    """Copies messages of one folder pair (source UIDs of one UIDVALIDITY)."""

    run: Run
    report: FolderReport
    source: Folder
    target: Folder
    uidvalidity: int
    #: The source listing the plan came from (sizes and Message-IDs for the state).
    listing: MessageListing
    #: The plan covers the rest of the folder (no more windows to come).
    final: bool = True

    async def copy(self, plan: MessagePlan) -> None:
        """Copy ``plan.fetch`` in batches of the policy's size."""
        size = self.run.policy.batch_messages
        for start in range(0, len(plan.fetch), size):
            if self.run.abort.is_set():
                raise StoreError(f"stopped: {self.run.stop_reason}")
            remaining = list(plan.fetch[start : start + size])
            while remaining:
                remaining = await self._append(remaining, matching=plan.adopt_unanchored)

    async def _append(self, uids: Sequence[int], *, matching: bool) -> list[int]:
        """Append what ``uids`` fetch to; returns the UIDs still to do after a message
        failed."""
        run, report, target = self.run, self.report, self.target
        if not run.target.capabilities.records_origin:
            await self._announce(uids)
        batch = _Batch()
        fetched = self.source.fetch(uids)
        items = _items(run, report, fetched, self.uidvalidity, batch, final=self.final)
        try:
            if matching and isinstance(target, ContentMatching):
                stored = await target.append_matching(items)
            else:
                stored = await target.append(items)
        except AppendIncomplete as exc:
            return await self._partly_stored(uids, exc, batch)
        except MessageError as exc:
            self._failed(exc)
            done = [(uid, size) for uid, size in batch.read if exc.uid is None or uid < exc.uid]
            # the target stored a prefix of the items, but did not say under which UIDs
            await self._count(done, [], batch)
            if exc.uid is None:
                return []
            return [uid for uid in uids if uid > exc.uid]
        await self._count(batch.read[: len(stored)], stored, batch)
        return []

    async def _partly_stored(
        self, uids: Sequence[int], exc: AppendIncomplete, batch: _Batch
    ) -> list[int]:
        """Record what the target stored (it said under which UIDs), report each message it
        did not, and return the UIDs it never got to."""
        pairs = list(zip(batch.read, exc.uids, strict=False))
        done = [read for read, uid in pairs if uid is not None]
        await self._count(done, [uid for _read, uid in pairs if uid is not None], batch)
        for failure in exc.failures:
            self._failed(failure)
        if any(failure.uid is None for failure in exc.failures):
            return []
        settled = {uid for (uid, _size), _new in pairs} | {f.uid for f in exc.failures}
        rest = [uid for uid in uids if uid not in settled]
        return rest if len(rest) < len(uids) else []  # never the same batch again

    def _failed(self, exc: MessageError) -> None:
        self.report.errors.append(exc)
        self.run.emit("folder_failed", self.report.source, error=str(exc), uid=exc.uid)

    async def _announce(self, uids: Sequence[int]) -> None:
        """Tell the state what this append is about to store, and where."""
        wanted = set(uids)
        messages = [m for m in self.listing.messages if m.uid in wanted]
        uidnext = (await self.target.state()).uidnext
        await self.run.state.will_append(self.report.target, uidnext, self.uidvalidity, messages)

    async def _count(
        self, done: list[tuple[int, int]], stored: Sequence[int], batch: _Batch
    ) -> None:
        if not done:
            return
        run, report = self.run, self.report
        caps = run.target.capabilities
        if stored and not caps.records_origin:
            origins = {
                target_uid: MessageRef(self.uidvalidity, source_uid)
                for (source_uid, _size), target_uid in zip(done, stored, strict=False)
            }
            await run.state.appended(report.target, origins)
        if stored and caps.append_drops_flags:
            # e.g. Exchange ignores \Flagged in APPEND; a STORE afterwards keeps it
            again = {
                target_uid: batch.flags[source_uid]
                for (source_uid, _size), target_uid in zip(done, stored, strict=False)
                if batch.flags.get(source_uid, frozenset()) & caps.append_drops_flags
            }
            if again:
                await self.target.set_flags(again)
        size = sum(s for _u, s in done)
        report.fetched += len(done)
        report.bytes += size
        run.emit("messages_stored", report.target, count=len(done), bytes=size)


async def _items(
    run: Run,
    report: FolderReport,
    fetched: AsyncIterator[FetchedMessage],
    uidvalidity: int,
    batch: _Batch,
    *,
    final: bool,
) -> AsyncIterator[AppendItem]:
    """Source messages as target items; a message counts as read when the target asks
    for the next one."""
    previous: FetchedMessage | None = None
    caps = run.target.capabilities
    keep = None if caps.custom_keywords else caps.permanent_flags | caps.append_drops_flags
    while True:
        try:
            message = await anext(fetched)
        except StopAsyncIteration:
            break
        except BaseException:
            # asking for the next message means the previous one was consumed whole
            if previous is not None:
                _read_one(run, report, previous, batch, final=final)
            raise
        if previous is not None:
            _read_one(run, report, previous, batch, final=final)
        previous = message
        if keep is not None and (dropped := message.flags - keep):
            report.keywords_dropped.append((message.uid, tuple(sorted(dropped))))
        yield AppendItem(
            chunks=message.chunks,
            size=message.size,
            flags=message.flags,
            internal_date=message.internal_date,
            origin=MessageRef(uidvalidity, message.uid),
        )
    if previous is not None:
        _read_one(run, report, previous, batch, final=final)


def _read_one(
    run: Run, report: FolderReport, message: FetchedMessage, batch: _Batch, *, final: bool
) -> None:
    batch.read.append((message.uid, message.size))
    batch.flags[message.uid] = message.flags
    run.total_done += 1
    run.total_bytes += message.size
    report.bytes_read += message.size
    if run.progress is not None:
        run.progress(
            Progress(
                folder=report.source,
                folder_done=report.fetched + len(batch.read),
                folder_planned=report.planned,
                folder_bytes=report.bytes_read,
                total_done=run.total_done,
                total_planned=run.total_planned,
                total_bytes=run.total_bytes,
                folder_plan_final=final,
            )
        )
