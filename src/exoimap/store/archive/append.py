"""The archive's group commit of appended messages.

Each item streams into ``tmp/`` (written and hashed by a :class:`FileWriter` thread, so
the event loop keeps reading the source); then the whole batch is flushed at once and
described in a journal record (beside the worker, so that several folders flush at once),
and on the archive's worker thread renamed into ``cur/`` and committed to the index in one
transaction (:meth:`exoimap.store.archive.journal.Journal.complete`, whose roll-forward
recovery runs again for records left by a crash).

With content matching (:meth:`GroupCommit.append` with ``adopt_unanchored``), an item whose
bytes equal a stored message whose origin is unknown or from another source UIDVALIDITY
re-points that message at the item's origin instead of being stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import os
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exoimap.errors import MessageError, StoreError
from exoimap.protocol.headers import HeaderCollector
from exoimap.store.archive.files import (
    Maildir,
    file_base,
    fsync_paths,
    letters_for,
    map_os_error,
)
from exoimap.store.archive.index import FolderRow, Index, MessageRow
from exoimap.store.archive.journal import Journal, row_to_json
from exoimap.store.archive.worker import Worker
from exoimap.store.archive.writer import FileWriter
from exoimap.store.base import AppendItem, normalize_flags

__all__ = ["GroupCommit", "Writer"]

#: ``os.write``-like function used for message bodies (tests inject ENOSPC).
Writer = Callable[[int, bytes | memoryview], int]


@dataclass(slots=True)
class _Staged:
    """A message streamed into ``tmp/``: the fields of the index row it becomes (its
    journal entry, :class:`~exoimap.store.archive.journal.EntryFields`), kept flat rather
    than as a frozen :class:`MessageRow`: the digest arrives after the message, and copying
    a frozen row to add it took about 5 % of the event loop's Python time in a backup."""

    uid: int
    size: int
    message_id: str | None
    internal_date: str
    flags: frozenset[str]
    file: str
    origin_uidvalidity: int | None
    origin_uid: int | None
    tmp: str  # a path (str: this is the hot path, pathlib costs)
    final_name: str
    token: int  # the FileWriter's handle
    sha256: str = ""  # filled in when the writer is done
    adopt_uid: int | None = None  # matched an unanchored message: no new file


class GroupCommit:
    """Appends batches of messages to the folders of one archive."""

    def __init__(
        self,
        worker: Worker,
        index: Index,
        journal: Journal,
        maildir: Maildir,
        *,
        write: Writer,
        fsync_mode: str,
    ) -> None:
        self._worker = worker
        self._index = index
        self._journal = journal
        self._maildir = maildir
        self._write = write
        self._fsync_mode = fsync_mode

    async def append(
        self, folder_id: int, items: AsyncIterable[AppendItem], *, adopt_unanchored: bool
    ) -> list[int]:
        """Store ``items`` in folder ``folder_id`` as one group commit; return their UIDs."""
        row = await self._worker.run("appending messages", None, self._start, folder_id)
        writer = FileWriter(self._write)
        staged, failure = await self._stream(writer, row, items)
        try:
            await asyncio.to_thread(writer.finish)
            if writer.error is not None:
                raise map_os_error(
                    writer.error,
                    f"writing messages into {row.name!r}",
                    folder=row.name,
                    path=self._maildir.root,
                )
        except BaseException:
            await self._worker.run("removing unfinished messages", row.name, writer.remove_all)
            raise
        digests = writer.digests
        for done in staged:
            done.sha256 = digests[done.token]
        if staged:
            try:
                await self._commit(row, staged, adopt_unanchored)
            except BaseException:
                if not self._journal.broken:  # no journal record references the files
                    await self._worker.run("removing unstored messages", row.name, _discard, staged)
                raise
        if failure is not None:
            raise failure
        return [s.adopt_uid if s.adopt_uid is not None else s.uid for s in staged]

    def _start(self, folder_id: int) -> FolderRow:
        self._journal.check_usable()
        return self._index.folder_by_id(folder_id)

    async def _stream(
        self, writer: FileWriter, row: FolderRow, items: AsyncIterable[AppendItem]
    ) -> tuple[list[_Staged], BaseException | None]:
        """Hand every item to the writer; a failing source ends the batch with what arrived
        whole (returned as the failure to raise after the commit)."""
        tmp_dir = self._maildir.tmp_dir(row.dirname)
        tmp_suffix = f".{os.getpid()}.exoimap"  # once per batch: getpid is a system call
        staged: list[_Staged] = []
        next_uid = row.uidnext
        try:
            async for item in items:
                staged.append(
                    await _stage(
                        writer, row, next_uid, item, tmp_dir=tmp_dir, tmp_suffix=tmp_suffix
                    )
                )
                next_uid += 1
        except (asyncio.CancelledError, KeyboardInterrupt, StoreError) as exc:
            if not isinstance(exc, MessageError):
                await self._abandon(writer, row)
                raise
            return staged, exc
        except Exception as exc:  # the source failed mid-batch: keep what arrived whole
            return staged, exc
        return staged, None

    async def _abandon(self, writer: FileWriter, row: FolderRow) -> None:
        try:
            await asyncio.shield(asyncio.to_thread(writer.finish))
        finally:
            await self._worker.run("removing unfinished messages", row.name, writer.remove_all)

    async def _commit(self, row: FolderRow, staged: list[_Staged], adopt_unanchored: bool) -> None:
        """Flush the batch's files, journal them, then place and index them (worker)."""
        what = f"storing messages in {row.name!r}"
        record = await self._worker.run(
            what, row.name, self._prepare, row, staged, adopt_unanchored
        )
        tmp_dir = self._maildir.tmp_dir(row.dirname)
        new_files = [os.path.join(tmp_dir, entry["tmp"]) for entry in record["entries"]]
        path = await self._worker.run_beside(what, row.name, self._flush, new_files, record)
        await self._worker.run(what, row.name, self._journal.complete, record, path)

    def _flush(self, paths: list[str], record: dict[str, Any]) -> Path:
        """Beside the worker: make the files durable, then write the journal record."""
        fsync_paths(paths, mode=self._fsync_mode)
        return self._journal.write(record)

    def _prepare(
        self, row: FolderRow, staged: list[_Staged], adopt_unanchored: bool
    ) -> dict[str, Any]:
        """On the worker: find the items that adopt stored messages, drop their files, and
        describe the batch as a journal record."""
        self._journal.check_usable()
        if adopt_unanchored:
            self._match_unanchored(row.id, staged)
        new_files = [s for s in staged if s.adopt_uid is None]
        for item in staged:
            if item.adopt_uid is not None:
                _unlink(item.tmp)
        self._journal.crash_point("append.written")
        return {
            "op": "append",
            "folder_id": row.id,
            "dir": row.dirname,
            "uidnext": max(s.uid for s in staged) + 1,
            "entries": [row_to_json(s, os.path.basename(s.tmp), s.final_name) for s in new_files],
            "adopt": [
                [s.adopt_uid, s.origin_uidvalidity, s.origin_uid, sorted(s.flags)]
                for s in staged
                if s.adopt_uid is not None
            ],
        }

    def _match_unanchored(self, folder_id: int, staged: list[_Staged]) -> None:
        """Items whose bytes equal a stored message whose origin is unknown or from another
        UIDVALIDITY adopt that message instead of being stored twice."""
        pool: dict[tuple[str, int], list[MessageRow]] = {}
        for existing in self._index.messages(folder_id):
            pool.setdefault((existing.sha256, existing.size), []).append(existing)
        for item in staged:
            if item.origin_uid is None:
                continue
            for candidate in pool.get((item.sha256, item.size), []):
                if candidate.origin_uidvalidity != item.origin_uidvalidity:
                    item.adopt_uid = candidate.uid
                    pool[(item.sha256, item.size)].remove(candidate)
                    break


async def _stage(
    writer: FileWriter,
    row: FolderRow,
    uid: int,
    item: AppendItem,
    *,
    tmp_dir: str,
    tmp_suffix: str,
) -> _Staged:
    """Stream ``item`` into ``<tmp_dir>/<uid><tmp_suffix>`` and describe it as the row the
    batch commits."""
    date = item.internal_date or _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    if date.tzinfo is None:
        raise MessageError("internal date must be timezone-aware", folder=row.name)
    tmp = f"{tmp_dir}/{uid}{tmp_suffix}"
    header = None if item.message_id else HeaderCollector()
    size = 0
    origin_uid = item.origin.uid if item.origin else None
    token = writer.open(tmp)
    try:
        async for chunk in item.chunks:
            writer.write(token, chunk)
            if header is not None:
                header.feed(chunk)
            size += len(chunk)
            if writer.congested:
                await writer.wait_for_room()
            if writer.error is not None:
                raise map_os_error(
                    writer.error,
                    f"writing a message into {row.name!r}",
                    folder=row.name,
                    path=Path(tmp_dir),
                )
    except BaseException:
        writer.discard(token)
        raise
    if size != item.size:
        writer.discard(token)
        raise MessageError(
            f"message body was {size} bytes but {item.size} were announced",
            folder=row.name,
            uid=origin_uid,
        )
    epoch = int(date.timestamp())
    writer.close(token, epoch)  # mtime = INTERNALDATE, as Maildir readers expect
    flags = normalize_flags(item.flags)
    base = file_base(epoch, row.uidvalidity, uid, size)
    return _Staged(
        uid=uid,
        size=size,
        message_id=item.message_id if header is None else header.message_id(),
        internal_date=date.isoformat(),
        flags=flags,
        file=base,
        origin_uidvalidity=item.origin.uidvalidity if item.origin else None,
        origin_uid=origin_uid,
        tmp=tmp,
        final_name=f"{base}:2,{letters_for(flags)}",
        token=token,
    )


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _discard(staged: list[_Staged]) -> None:
    for item in staged:
        _unlink(item.tmp)
