"""The archive's group commit of appended messages (see :mod:`exoimap.store.archive`).

Each item streams into ``tmp/`` (written and hashed by a :class:`FileWriter` thread, so
the event loop keeps reading the source); then the whole batch is
flushed at once, described in a journal record, renamed into ``cur/`` and committed to the
index in one transaction (:func:`exoimap.store._archive_recovery.apply_append`, which
recovery runs again for records left by a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import os
from collections.abc import AsyncIterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from exoimap.errors import MessageError, StoreError
from exoimap.protocol.headers import parse_message_id
from exoimap.store import _archive_recovery as recovery
from exoimap.store._archive_index import FolderRow, Index, MessageRow
from exoimap.store._filewriter import FileWriter
from exoimap.store._maildir import file_base, fsync_paths, letters_for, map_os_error
from exoimap.store.base import AppendItem, normalize_flags

if TYPE_CHECKING:
    from exoimap.store.archive import ArchiveStore

__all__ = ["append_batch"]


@dataclass(slots=True)
class _Staged:
    row: MessageRow
    tmp: str  # a path (str: this is the hot path, pathlib costs)
    final_name: str
    token: int  # the FileWriter's handle
    adopt_uid: int | None = None  # matched an unanchored message: no new file


async def append_batch(
    store: ArchiveStore, folder_id: int, items: AsyncIterable[AppendItem], adopt_unanchored: bool
) -> list[int]:
    """Store ``items`` in folder ``folder_id`` as one group commit; return their UIDs."""
    store.check_usable()
    index = store.index
    row = index.folder_by_id(folder_id)
    tmp_dir = os.path.join(store.folder_dir(row), "tmp")
    next_uid = row.uidnext
    writer = FileWriter(store._write)
    staged: list[_Staged] = []
    failure: BaseException | None = None
    try:
        async for item in items:
            staged.append(await _stage(writer, tmp_dir, row, next_uid, item))
            next_uid += 1
    except (asyncio.CancelledError, KeyboardInterrupt, StoreError) as exc:
        if not isinstance(exc, MessageError):
            await _abandon(writer)
            raise
        failure = exc
    except Exception as exc:  # the source failed mid-batch: keep what arrived whole
        failure = exc
    try:
        await asyncio.to_thread(writer.finish)
    except BaseException:
        writer.remove_all()
        raise
    if writer.error is not None:
        writer.remove_all()
        raise map_os_error(writer.error, f"writing messages into {row.name!r}", folder=row.name)
    for done in staged:
        done.row = replace(done.row, sha256=writer.digests[done.token])
    if adopt_unanchored and staged:
        _match_unanchored(index, row.id, staged)
    try:
        await _commit(store, row, staged)
    except BaseException:
        if store._broken is None:  # failed before the journal: nothing references the files
            _discard(staged)
        raise
    if failure is not None:
        raise failure
    return [s.adopt_uid if s.adopt_uid is not None else s.row.uid for s in staged]


async def _abandon(writer: FileWriter) -> None:
    try:
        await asyncio.shield(asyncio.to_thread(writer.finish))
    finally:
        writer.remove_all()


def _match_unanchored(index: Index, folder_id: int, staged: list[_Staged]) -> None:
    """Items whose bytes equal a stored message whose origin is unknown or from another
    UIDVALIDITY adopt that message instead of being stored twice."""
    pool: dict[tuple[str, int], list[MessageRow]] = {}
    for existing in index.messages(folder_id):
        pool.setdefault((existing.sha256, existing.size), []).append(existing)
    for item in staged:
        if item.row.origin_uid is None:
            continue
        for candidate in pool.get((item.row.sha256, item.row.size), []):
            if candidate.origin_uidvalidity != item.row.origin_uidvalidity:
                item.adopt_uid = candidate.uid
                pool[(item.row.sha256, item.row.size)].remove(candidate)
                break


async def _stage(
    writer: FileWriter, tmp_dir: str, row: FolderRow, uid: int, item: AppendItem
) -> _Staged:
    date = item.internal_date or _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    if date.tzinfo is None:
        raise MessageError("internal date must be timezone-aware", folder=row.name)
    tmp = f"{tmp_dir}/{uid}.{os.getpid()}.exoimap"
    head = bytearray()
    size = 0
    origin_uid = item.origin.uid if item.origin else None
    token = writer.open(tmp)
    try:
        async for chunk in item.chunks:
            writer.write(token, chunk)
            if size < 65536:
                head += chunk[: 65536 - size]
            size += len(chunk)
            if writer.congested:
                await writer.wait_for_room()
            if writer.error is not None:
                raise map_os_error(
                    writer.error, f"writing a message into {row.name!r}", folder=row.name
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
    message_row = MessageRow(
        uid=uid,
        sha256="",  # filled in when the writer is done
        size=size,
        message_id=item.message_id or parse_message_id(bytes(head)),
        internal_date=date.isoformat(),
        flags=flags,
        file=base,
        origin_uidvalidity=item.origin.uidvalidity if item.origin else None,
        origin_uid=origin_uid,
        state="stored",
        gone_at=None,
    )
    return _Staged(
        row=message_row, tmp=tmp, final_name=f"{base}:2,{letters_for(flags)}", token=token
    )


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _discard(staged: list[_Staged]) -> None:
    for item in staged:
        _unlink(item.tmp)


async def _commit(store: ArchiveStore, row: FolderRow, staged: list[_Staged]) -> None:
    if not staged:
        return
    new_files = [s for s in staged if s.adopt_uid is None]
    for item in staged:
        if item.adopt_uid is not None:
            _unlink(item.tmp)
    store.crash_point("append.written")
    try:
        await asyncio.to_thread(fsync_paths, [s.tmp for s in new_files], mode=store.fsync_mode)
    except OSError as exc:
        raise map_os_error(exc, "flushing messages to disk", folder=row.name) from exc
    record = {
        "op": "append",
        "folder_id": row.id,
        "dir": row.dirname,
        "uidnext": max(s.row.uid for s in staged) + 1,
        "entries": [
            recovery.row_to_json(s.row, os.path.basename(s.tmp), s.final_name) for s in new_files
        ],
        "adopt": [
            [s.adopt_uid, s.row.origin_uidvalidity, s.row.origin_uid, sorted(s.row.flags)]
            for s in staged
            if s.adopt_uid is not None
        ],
    }
    store.check_usable()
    # the journal write and the renames are file system work: off the event loop
    journal = await asyncio.to_thread(store.write_journal, record)
    store.crash_point("append.journaled")
    try:
        await asyncio.to_thread(recovery.place_live, store, record)
        recovery.commit_append(store, record, [s.row for s in new_files])
    except BaseException as exc:
        store.mark_broken(exc)
        raise
    journal.unlink()
