"""The archive's group commit of appended messages (see :mod:`exoimap.store.archive`).

Each item streams into ``tmp/`` while its SHA-256 is computed; then the whole batch is
flushed at once, described in a journal record, renamed into ``cur/`` and committed to the
index in one transaction (:func:`exoimap.store._archive_recovery.apply_append`, which
recovery runs again for records left by a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hashlib
import os
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exoimap.errors import MessageError, StoreError
from exoimap.store import _archive_recovery as recovery
from exoimap.store._archive_index import FolderRow, Index, MessageRow
from exoimap.store._maildir import file_base, fsync_paths, letters_for, map_os_error
from exoimap.store.base import AppendItem, normalize_flags
from exoimap.store.memory import parse_message_id

if TYPE_CHECKING:
    from exoimap.store.archive import ArchiveStore

__all__ = ["append_batch"]


@dataclass(slots=True)
class _Staged:
    row: MessageRow
    tmp: str  # a path (str: this is the hot path, pathlib costs)
    final_name: str
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
    unanchored: dict[tuple[str, int], list[int]] = {}
    if adopt_unanchored:
        for existing in index.messages(row.id):
            unanchored.setdefault((existing.sha256, existing.size), []).append(existing.uid)
    staged: list[_Staged] = []
    failure: BaseException | None = None
    try:
        async for item in items:
            staged.append(await _stage(store, tmp_dir, row, next_uid, item))
            next_uid += 1
            last = staged[-1]
            candidates = unanchored.get((last.row.sha256, last.row.size))
            if candidates and item.origin is not None:
                last.adopt_uid = candidates.pop(0)
    except (asyncio.CancelledError, KeyboardInterrupt, StoreError) as exc:
        if not isinstance(exc, MessageError):
            _discard(staged)
            raise
        failure = exc
    except Exception as exc:  # the source failed mid-batch: keep what arrived whole
        failure = exc
    if adopt_unanchored and staged:
        _restrict_adoptions(index, row.id, staged)
    try:
        await _commit(store, row, staged)
    except BaseException:
        if store._broken is None:  # failed before the journal: nothing references the files
            _discard(staged)
        raise
    if failure is not None:
        raise failure
    return [s.adopt_uid if s.adopt_uid is not None else s.row.uid for s in staged]


def _restrict_adoptions(index: Index, folder_id: int, staged: list[_Staged]) -> None:
    """Only messages whose origin is unknown or from another UIDVALIDITY may be adopted."""
    wanted = [s.adopt_uid for s in staged if s.adopt_uid is not None]
    rows = {r.uid: r for r in index.messages(folder_id, wanted)}
    for item in staged:
        if item.adopt_uid is None:
            continue
        existing = rows.get(item.adopt_uid)
        stale = existing is not None and (
            existing.origin_uidvalidity is None
            or existing.origin_uidvalidity != item.row.origin_uidvalidity
        )
        if not stale:
            item.adopt_uid = None


async def _stage(
    store: ArchiveStore, tmp_dir: str, row: FolderRow, uid: int, item: AppendItem
) -> _Staged:
    date = item.internal_date or _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    if date.tzinfo is None:
        raise MessageError("internal date must be timezone-aware", folder=row.name)
    tmp = f"{tmp_dir}/{uid}.{os.getpid()}.exoimap"
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    origin_uid = item.origin.uid if item.origin else None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise map_os_error(exc, f"writing a message into {row.name!r}", folder=row.name) from exc
    try:
        write = store._write
        async for chunk in item.chunks:
            length = len(chunk)
            written = write(fd, chunk)
            if written != length:  # short write: finish it
                view = memoryview(chunk)[written:]
                while view:
                    view = view[write(fd, view) :]
            digest.update(chunk)
            if size < 65536:
                head += chunk[: 65536 - size]
            size += length
    except OSError as exc:
        os.close(fd)
        _unlink(tmp)
        raise map_os_error(exc, f"writing a message into {row.name!r}", folder=row.name) from exc
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    epoch = int(date.timestamp())
    try:
        os.utime(fd, (epoch, epoch))  # mtime = INTERNALDATE, as Maildir readers expect
    finally:
        os.close(fd)
    if size != item.size:
        _unlink(tmp)
        raise MessageError(
            f"message body was {size} bytes but {item.size} were announced",
            folder=row.name,
            uid=origin_uid,
        )
    flags = normalize_flags(item.flags)
    base = file_base(epoch, row.uidvalidity, uid, size)
    message_row = MessageRow(
        uid=uid,
        sha256=digest.hexdigest(),
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
    return _Staged(row=message_row, tmp=tmp, final_name=f"{base}:2,{letters_for(flags)}")


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
    with store.journaled(record):
        recovery.apply_append(store, record, live_rows=[s.row for s in new_files])
