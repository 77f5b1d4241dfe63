"""The archive as a store: :class:`ArchiveStore` and its open folders, :class:`ArchiveFolder`.

Every operation is a coroutine that hands its SQLite and file work to the archive's worker
thread in one piece (:mod:`exoimap.store.archive.worker`): listing a folder, with every
message's flags, is one hop to that thread, not one per message. See
:mod:`exoimap.store.archive` for the layout and the crash safety.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from exoimap.errors import FolderError, FolderNotFound, MessageError, StoreError
from exoimap.store.archive.append import GroupCommit, Writer
from exoimap.store.archive.files import (
    Maildir,
    encode_folder_dir,
    fsync_dir,
    letters_for,
    make_private_dirs,
    map_os_error,
    release_lock,
    take_lock,
)
from exoimap.store.archive.holds import refuse_if_held
from exoimap.store.archive.index import (
    FolderRow,
    Index,
    IndexStamp,
    MessageRow,
    Rows,
    index_stamp,
    leave_trusted_stamp,
    storable,
    take_trusted_stamp,
)
from exoimap.store.archive.journal import CrashHook, Journal
from exoimap.store.archive.repair import FileReport, open_index, verify_files
from exoimap.store.archive.runs import RunJournal
from exoimap.store.archive.stamps import candidates, confirmed, files_unchanged, settle_wait
from exoimap.store.archive.state import ArchiveSyncState
from exoimap.store.archive.worker import Worker
from exoimap.store.base import (
    AppendItem,
    Capabilities,
    FetchedMessage,
    FolderInfo,
    FolderState,
    MessageInfo,
    MessageListing,
    MessageRef,
    SpecialUse,
    UidRange,
    is_inbox,
    normalize_flags,
)

__all__ = ["ArchiveFolder", "ArchiveStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_READ_CHUNK = 256 * 1024
#: Bytes a fetch reads ahead in one hop to the worker thread (first chunks of messages).
_READ_AHEAD = 4 * 1024 * 1024
_FSYNC_MODES = ("auto", "pool", "syncfs", "serial", "none")


@dataclass(frozen=True, slots=True)
class _Parts:
    """What an open archive is made of; its folders get the same parts."""

    root: Path
    worker: Worker
    index: Index
    maildir: Maildir
    journal: Journal
    commit: GroupCommit


class ArchiveStore:
    """The local archive. Open it with :meth:`open`; one process at a time."""

    def __init__(self, parts: _Parts, lock_fd: int, *, fsync_mode: str, notes: list[str]) -> None:
        self.root = parts.root
        self.fsync_mode = fsync_mode
        self._parts = parts
        self._worker = parts.worker
        self._index = parts.index
        self._maildir = parts.maildir
        self._journal = parts.journal
        self._lock_fd: int | None = lock_fd
        self._run: RunJournal | None = None
        #: Human-readable notes about what recovery did when the archive was opened.
        self.recovery_notes: list[str] = notes
        #: The index file's stamp after :meth:`close` (None before, or if it has no stamp).
        self.closed_index_stamp: IndexStamp | None = None
        self._trust_at_close = False
        self._caps = Capabilities(
            condstore=False,
            uidplus=True,
            move=False,
            custom_keywords=True,
            exact_sizes=True,
            records_origin=True,
            max_connections=8,
        )

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        create: bool = True,
        fsync_mode: str = "auto",
        crash_hook: CrashHook | None = None,
        writer: Writer = os.write,
        trusted_index: IndexStamp | None = None,
        lock_wait: float = 0.0,
    ) -> ArchiveStore:
        """Lock, recover and open the archive at ``root`` (created when missing). This
        blocks while recovery runs (on the archive's worker thread). ``lock_wait``: how
        long to wait for another holder of the lock (the console holds it for one page).

        ``trusted_index``: the :attr:`closed_index_stamp` a clean session of this process left;
        while the index file still has it, its integrity check is skipped (a resident
        process's next sync; any write to the file by anyone changes the stamp).

        ``fsync_mode`` is ``auto`` (one ``syncfs(2)`` per batch where the kernel reports
        its write errors, Linux 5.8 and later; else ``pool``), ``pool`` (fsync each file
        from a thread pool), ``syncfs`` (one ``syncfs(2)`` per batch wherever it exists),
        ``serial``, or ``none``: no fsync at all and SQLite ``synchronous=OFF``, which
        survives a killed process but NOT a power loss or kernel crash (for tests and
        scratch archives only). See docs/architecture.md, "Durability".
        """
        if fsync_mode not in _FSYNC_MODES:
            raise StoreError(f"unknown fsync mode {fsync_mode!r}")
        base = Path(root)
        if not base.exists() and not create:
            raise StoreError(f"no archive at {base}")
        try:
            for sub in ("journal", "damaged", "maildir/cur", "maildir/new", "maildir/tmp"):
                make_private_dirs(base / sub)
            lock_fd = take_lock(base / "lock", wait=lock_wait)
            left = take_trusted_stamp(base / "index.sqlite")
        except OSError as exc:
            raise map_os_error(
                exc, f"opening the archive at {base} (it must be writable)", path=base
            ) from exc
        worker = Worker(base)
        try:
            parts, notes = worker.call(
                f"opening the archive at {base}",
                _recover,
                base,
                worker,
                fsync_mode=fsync_mode,
                crash_hook=crash_hook,
                writer=writer,
                trusted=trusted_index or left,
            )
        except BaseException:
            worker.close()
            release_lock(lock_fd)
            raise
        return cls(parts, lock_fd, fsync_mode=fsync_mode, notes=notes)

    # --- for the engine and the tests --------------------------------------------------

    def crash_point(self, name: str) -> None:
        """Pass the crash point ``name`` (the crash hook given to :meth:`open` sees it)."""
        self._journal.crash_point(name)

    def sync_state(self) -> ArchiveSyncState:
        """What syncs into this archive remember, kept in its index (see
        :class:`~exoimap.store.base.SyncState`)."""
        return ArchiveSyncState(self)

    # --- Store protocol ------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def delimiter(self) -> str:
        return "/"

    async def list_folders(self) -> list[FolderInfo]:
        rows = await self._worker.run("listing folders", None, self._index.folders)
        return [
            FolderInfo(
                name=row.name,
                delimiter="/",
                role=SpecialUse(row.role) if row.role else None,
                gone_at=_dt.datetime.fromisoformat(row.gone_at) if row.gone_at else None,
            )
            for row in rows
        ]

    async def folder_state(self, name: str) -> FolderState:
        return await self._worker.run("reading a folder", name, self._state, name)

    def _state(self, name: str) -> FolderState:
        row = self._row(name)
        return _state_of(row, self._index.count(row.id))

    async def folder_states(self, names: Sequence[str]) -> dict[str, FolderState]:
        return await self._worker.run("reading folders", None, self._states, names)

    def _states(self, names: Sequence[str]) -> dict[str, FolderState]:
        states: dict[str, FolderState] = {}
        for name in names:
            row = self._index.folder(name)
            if row is not None:
                states[name] = _state_of(row, self._index.count(row.id))
        return states

    @asynccontextmanager
    async def _open(self, name: str) -> AsyncIterator[ArchiveFolder]:
        row = await self._worker.run("opening a folder", name, self._row, name)
        yield ArchiveFolder(self._parts, row.id, row.name)

    def open_folder(self, name: str) -> AbstractAsyncContextManager[ArchiveFolder]:
        return self._open(name)

    async def create_folder(self, name: str, *, role: SpecialUse | None = None) -> None:
        await self._worker.run(
            f"creating folder {name!r}", name, self._create_folder, name, role, exists_ok=False
        )

    def _create_folder(self, name: str, role: SpecialUse | None, *, exists_ok: bool) -> None:
        self._journal.check_usable()
        _check_storable(name)
        if self._index.folder(name) is not None:
            if exists_ok:
                return
            raise FolderError(f"folder {name!r} already exists in the archive", folder=name)
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            partial = "/".join(parts[:depth])
            if self._index.folder(partial) is not None:
                continue
            dirname = encode_folder_dir(partial)
            self._maildir.make_folder(dirname, partial)
            self._journal.crash_point("create.dirs")
            own_role = role.value if role and depth == len(parts) else None
            self._index.add_folder(partial, dirname, own_role)

    async def rename_folder(self, old: str, new: str) -> None:
        await self._worker.run(f"renaming folder {old!r}", old, self._rename_folder, old, new)

    def _rename_folder(self, old: str, new: str) -> None:
        row = self._row(old)
        if is_inbox(old):
            raise FolderError("INBOX cannot be renamed", folder=old)
        _check_storable(new)
        if self._index.folder(new) is not None:
            raise FolderError(f"cannot rename {old!r}: {new!r} already exists", folder=old)
        moves: list[list[Any]] = []
        for other in self._index.folders():
            if other.id == row.id or other.name.startswith(row.name + "/"):
                target = new + other.name[len(row.name) :]
                moves.append([other.id, target, other.dirname, encode_folder_dir(target)])
        parent = new.rpartition("/")[0]
        if parent:
            self._create_folder(parent, None, exists_ok=True)
        self._journal.run({"op": "rename", "moves": moves})

    async def delete_folder(self, name: str) -> None:
        await self._worker.run(f"deleting folder {name!r}", name, self._delete_folder, name)

    def _delete_folder(self, name: str) -> None:
        refuse_if_held(self.root, f"deleting folder {name!r}")
        row = self._row(name)
        if is_inbox(name):
            raise FolderError("INBOX cannot be deleted", folder=name)
        self._journal.run({"op": "delete", "folder_id": row.id, "dir": row.dirname})

    async def close(self) -> None:
        if self._lock_fd is None:
            return
        try:
            self.closed_index_stamp = await self._worker.run(
                "closing the archive", None, self._close_index
            )
        finally:
            self._worker.close()
            release_lock(self._lock_fd)
            self._lock_fd = None

    def trust_index_when_closed(self) -> None:
        """After a session without errors: the next open of this archive, by any process,
        skips the index's integrity check (``PRAGMA quick_check``, which reads the whole
        file) while the file still has the stamp this close leaves. Any write to it, by
        anyone, changes the stamp; a crash leaves no stamp (it is taken at open)."""
        self._trust_at_close = True

    def _close_index(self) -> IndexStamp | None:
        self._index.close()
        # taken while the lock is still held: nobody can have written since the close
        path = self.root / "index.sqlite"
        stamp = index_stamp(path)
        if stamp is not None and self._trust_at_close:
            with suppress(OSError):  # only saves the next open some reading
                leave_trusted_stamp(path, stamp)
        return stamp

    def _row(self, name: str) -> FolderRow:
        row = self._index.folder(name)
        if row is None:
            raise FolderNotFound(f"folder {name!r} does not exist in the archive", folder=name)
        return row

    # --- archive-only operations (what ArchiveSyncState is built on) ---------------------

    async def folder_records(self) -> list[FolderRow]:
        """Every folder's index row (with the source state recorded by the engine)."""
        return await self._worker.run("listing folders", None, self._index.folders)

    async def folder_record(self, name: str) -> FolderRow | None:
        """The index row of a folder (with the source state recorded by the engine)."""
        return await self._worker.run("reading a folder", name, self._index.folder, name)

    async def set_folder_source(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        """Record the source folder's state after a successful sync (and clear ``gone``);
        commits nothing when nothing changed."""
        await self._worker.run(
            f"recording the source state of {name!r}",
            name,
            self._set_folder_source,
            name,
            (uidvalidity, uidnext, modseq),
        )

    def _set_folder_source(self, name: str, source: tuple[int, int, int | None]) -> None:
        row = self._row(name)
        self._journal.check_usable()
        recorded = (row.source_uidvalidity, row.source_uidnext, row.source_modseq)
        if recorded == source and row.gone_at is None:
            return  # a no-change resync commits nothing
        self._index.set_folder_source(row.id, *source)
        self._journal.crash_point("source.committed")

    async def mark_folder_gone(self, name: str, when: _dt.datetime) -> None:
        """Record that the source folder was seen deleted (its messages stay)."""
        await self._worker.run(
            f"marking {name!r} gone", name, self._mark_folder_gone, name, when.isoformat()
        )

    def _mark_folder_gone(self, name: str, when: str) -> None:
        row = self._row(name)
        self._journal.check_usable()
        self._index.mark_folder_gone(row.id, when)
        self._journal.crash_point("folder_gone.committed")

    async def files_unchanged(self, names: Sequence[str]) -> set[str]:
        """Those of ``names`` whose files nobody added, removed or renamed since they were
        last found complete (see :mod:`exoimap.store.archive.stamps`): a resync may skip
        looking for hand-deleted files there. One worker hop for all of them."""
        return await self._worker.run("reading folders", None, self._files_unchanged, names)

    def _files_unchanged(self, names: Sequence[str]) -> set[str]:
        rows = {row.name: row for row in self._index.folders()}
        return {
            name
            for name in names
            if (row := rows.get(name)) is not None
            and files_unchanged(self._maildir.folder_dir(row.dirname), row)
        }

    async def record_files_checked(self, names: Sequence[str]) -> int:
        """After a sync: remember, for each folder whose files are all present, the
        directory stamps that let the next run trust them unlooked. Returns how many."""
        todo, newest = await self._worker.run(
            "reading the folders' files stamps", None, self._stamp_candidates, names
        )
        if not todo:
            return 0
        await asyncio.sleep(settle_wait(newest))
        return await self._worker.run(
            "recording the folders' files stamps", None, self._record_stamps, todo
        )

    def _stamp_candidates(self, names: Sequence[str]) -> tuple[list[tuple[FolderRow, str]], float]:
        self._journal.check_usable()
        wanted = set(names)
        rows = [row for row in self._index.folders() if row.name in wanted]
        return candidates(rows, self._folder_dir)

    def _record_stamps(self, todo: list[tuple[FolderRow, str]]) -> int:
        fresh = confirmed(
            todo, self._folder_dir, lambda row: not _missing_files(self._index, self._maildir, row)
        )
        if fresh:
            self._index.set_files_stamps(fresh)
        return len(fresh)

    def _folder_dir(self, row: FolderRow) -> Path:
        return self._maildir.folder_dir(row.dirname)

    async def verify_files(self, *, deep: bool = False) -> FileReport:
        """Compare the files with the index (``deep``: re-hash every file)."""
        return await self._worker.run(
            "checking the archive's files",
            None,
            verify_files,
            self._index,
            self._maildir,
            deep=deep,
        )

    async def begin_run(self, detail: Mapping[str, object]) -> list[dict[str, Any]]:
        """Record that a sync run starts (in ``<root>/runs/``); return the earlier runs
        that never finished (each reported once)."""
        # run records are informational: atomic (write-new + rename) but not worth an fsync
        run = RunJournal(self.root / "runs", durable=False)
        earlier = await self._worker.run("writing the run journal", None, run.begin, dict(detail))
        self._run = run
        return earlier

    async def end_run(self, summary: Mapping[str, object]) -> None:
        """Record that the run :meth:`begin_run` started finished, with its summary."""
        run, self._run = self._run, None
        if run is not None:
            await self._worker.run("writing the run journal", None, run.finish, dict(summary))


class ArchiveFolder:
    """An open folder of the archive (implements Folder and ContentMatching)."""

    def __init__(self, parts: _Parts, folder_id: int, name: str) -> None:
        self._worker = parts.worker
        self._index = parts.index
        self._maildir = parts.maildir
        self._journal = parts.journal
        self._commit = parts.commit
        self._root = parts.root
        self._damaged_dir = parts.root / "damaged"
        self._id = folder_id
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def _run(
        self, what: str, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        return await self._worker.run(
            f"{what} in {self._name!r}", self._name, function, *args, **kwargs
        )

    async def state(self) -> FolderState:
        return await self._run("reading the state", self._state)

    def _state(self) -> FolderState:
        return _state_of(self._index.folder_by_id(self._id), self._index.count(self._id))

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        # a sample costs as much as all here: the index has them at hand
        rows = Rows(uids=uids)
        state, messages = await self._run(
            "listing messages", self._listing, rows, detail, bool(size_and_date)
        )
        return MessageListing(state=state, messages=messages, complete=True)

    async def anchored(
        self, source_uidvalidity: int, origins: UidRange, *, detail: bool, size_and_date: bool
    ) -> list[MessageInfo]:
        """The messages copied from source UIDs in ``origins`` under ``source_uidvalidity``."""
        rows = Rows(origin_uidvalidity=source_uidvalidity, origins=origins)
        return await self._run(
            "listing messages",
            self._index.infos,
            self._id,
            detail=detail,
            size_and_date=size_and_date,
            rows=rows,
        )

    async def has_unanchored(self, source_uidvalidity: int) -> bool:
        """See :meth:`~exoimap.store.base.WindowedState.has_unanchored`."""
        return await self._run(
            "reading origins", self._index.has_unanchored, self._id, source_uidvalidity
        )

    def _listing(
        self, rows: Rows, detail: bool, size_and_date: bool
    ) -> tuple[FolderState, list[MessageInfo]]:
        return self._state(), self._index.infos(
            self._id, detail=detail, size_and_date=size_and_date, rows=rows
        )

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        found = await self._run("finding messages", self._locate, uids)
        position = 0
        while position < len(found):
            # one hop to the worker thread reads the first chunk of the next messages (most
            # messages are a single chunk) instead of one hop per message
            firsts = await self._run("reading messages", _read_ahead, found, position)
            for (row, path), first in zip(found[position:], firsts, strict=False):
                if path is None:
                    raise MessageError(
                        f"the archive file of UID {row.uid} in {self._name!r} is missing; "
                        "the next backup fetches it again",
                        folder=self._name,
                        uid=row.uid,
                    )
                yield FetchedMessage(
                    uid=row.uid,
                    flags=row.flags,
                    internal_date=_dt.datetime.fromisoformat(row.internal_date),
                    size=row.size,
                    chunks=self._chunks(path, row.uid, first),
                )
            position += len(firsts)

    def _locate(self, uids: Sequence[int]) -> list[tuple[MessageRow, Path | None]]:
        dirname = self._index.folder_by_id(self._id).dirname
        return [
            (row, self._maildir.locate(dirname, row.file, row.flags))
            for row in self._index.messages(self._id, uids)
        ]

    async def _chunks(self, path: Path, uid: int, first: bytes | None) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; ``first``: its first chunk when already read."""
        offset = 0
        if first is not None:
            if not first:
                return
            offset = len(first)
            yield first
            if len(first) < _READ_CHUNK:
                return
        while chunk := await self._run("reading a message", _read_chunk, path, offset, uid):
            offset += len(chunk)
            yield chunk
            if len(chunk) < _READ_CHUNK:
                break  # a short read of a file is its end: no second trip to the worker

    async def append(self, items: AsyncIterable[AppendItem]) -> list[int]:
        """Store ``items`` in one group commit (see :mod:`exoimap.store.archive.append`)."""
        return await self._commit.append(self._id, items, adopt_unanchored=False)

    async def append_matching(self, items: AsyncIterable[AppendItem]) -> list[int]:
        """:class:`~exoimap.store.base.ContentMatching`: like :meth:`append`, but an item
        whose bytes equal a message whose origin is unknown or stale (after a UIDVALIDITY
        change) is not stored twice: that message is re-pointed at the item's origin and
        its UID returned."""
        return await self._commit.append(self._id, items, adopt_unanchored=True)

    async def set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        await self._run("changing flags", self._set_flags, changes)

    def _set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        todo = []
        for row in self._index.messages(self._id, list(changes)):
            new = normalize_flags(changes[row.uid])
            if new != row.flags:
                todo.append([row.uid, sorted(new), row.file, letters_for(new)])
        if todo:
            self._journal.run({"op": "flags", "folder_id": self._id, "changes": todo})

    async def expunge(self, uids: Sequence[int]) -> None:
        await self._run("expunging messages", self._expunge, uids)

    def _expunge(self, uids: Sequence[int]) -> None:
        refuse_if_held(self._root, f"deleting messages from {self._name!r}")
        rows = self._index.messages(self._id, uids)
        if rows:
            entries = [[r.uid, r.file] for r in rows]
            self._journal.run({"op": "expunge", "folder_id": self._id, "entries": entries})

    async def set_origins(self, origins: Mapping[int, MessageRef]) -> None:
        """Re-point messages at new source messages (after a UIDVALIDITY change)."""
        await self._run("re-pointing messages", self._set_origins, origins)

    def _set_origins(self, origins: Mapping[int, MessageRef]) -> None:
        self._journal.check_usable()
        self._index.set_origins(self._id, origins)
        self._journal.crash_point("origins.committed")

    async def mark_gone(self, uids: Sequence[int], when: _dt.datetime) -> None:
        """Record that the source messages of these UIDs were deleted at ``when``."""
        await self._run("marking messages gone", self._mark_gone, uids, when.isoformat())

    def _mark_gone(self, uids: Sequence[int], when: str) -> None:
        self._journal.check_usable()
        self._index.mark_gone(self._id, uids, when)
        self._journal.crash_point("gone.committed")

    async def set_aside_damaged(self, uids: Sequence[int]) -> None:
        """Move the files of these messages (found damaged) into ``<root>/damaged/`` and
        drop their index rows: the next backup fetches them again. A crash in between
        leaves rows without files, which the next backup fetches again as lost files."""
        await self._run("setting damaged messages aside", self._set_aside, uids)

    def _set_aside(self, uids: Sequence[int]) -> None:
        self._journal.check_usable()
        self._damaged_dir.mkdir(mode=0o700, exist_ok=True)
        moved = [path for _row, path in self._locate(uids) if path is not None]
        for path in moved:
            os.rename(path, self._damaged_dir / path.name)
        for directory in {self._damaged_dir, *(path.parent for path in moved)}:
            fsync_dir(directory)
        self._index.forget(self._id, uids)

    async def supersede(self, uids: Sequence[int], when: _dt.datetime) -> None:
        """These messages no longer hold what their source message holds: keep them,
        gone since ``when``, with no origin (``state='superseded'`` in the index)."""
        await self._run("keeping replaced messages", self._supersede, uids, when.isoformat())

    def _supersede(self, uids: Sequence[int], when: str) -> None:
        self._journal.check_usable()
        self._index.supersede(self._id, uids, when)

    async def missing_files(self) -> list[int]:
        """UIDs whose file is not in ``cur/`` or ``new/``: none while the folder's files
        stamp holds (no file was added, removed or renamed since all were last found
        present), else one directory scan."""
        return await self._run("looking for missing files", self._missing)

    def _missing(self) -> list[int]:
        row = self._index.folder_by_id(self._id)
        if files_unchanged(self._maildir.folder_dir(row.dirname), row):
            return []
        return _missing_files(self._index, self._maildir, row)

    async def forget(self, uids: Sequence[int]) -> None:
        """Drop index rows (used for messages whose file is missing, before re-fetching)."""
        await self._run("forgetting messages", self._forget, uids)

    def _forget(self, uids: Sequence[int]) -> None:
        self._journal.check_usable()
        self._index.forget(self._id, uids)


# --- helpers run on the worker thread --------------------------------------------------------


def _recover(
    base: Path,
    worker: Worker,
    *,
    fsync_mode: str,
    crash_hook: CrashHook | None,
    writer: Writer,
    trusted: IndexStamp | None,
) -> tuple[_Parts, list[str]]:
    """Open the index (rebuilt if damaged), roll the journal forward, empty ``tmp/``."""
    maildir = Maildir(base / "maildir", durable=fsync_mode != "none")
    index, notes = open_index(base, maildir, trusted=trusted)
    try:
        journal = Journal(
            base / "journal", index, maildir, damaged_dir=base / "damaged", crash_hook=crash_hook
        )
        if index.folder("INBOX") is None:
            index.add_folder("INBOX", "", SpecialUse.INBOX.value)
        notes += journal.replay()
        for folder in index.folders():
            maildir.empty_tmp(folder.dirname)
    except BaseException:
        index.close()
        raise
    commit = GroupCommit(worker, index, journal, maildir, write=writer, fsync_mode=fsync_mode)
    return _Parts(base, worker, index, maildir, journal, commit), notes


def _check_storable(name: str) -> None:
    if not storable(name):
        raise FolderError(
            f"the folder name {name!r} holds bytes that are neither modified UTF-7 nor "
            "UTF-8, which IMAP does not allow; the folder cannot be archived",
            folder=name,
        )


def _state_of(row: FolderRow, exists: int) -> FolderState:
    return FolderState(
        name=row.name, uidvalidity=row.uidvalidity, uidnext=row.uidnext, exists=exists
    )


def _missing_files(index: Index, maildir: Maildir, row: FolderRow) -> list[int]:
    with index.files_on_disk(row.id, maildir.entries(row.dirname)):
        return index.missing_files(row.id)


def _read_ahead(found: Sequence[tuple[MessageRow, Path | None]], start: int) -> list[bytes | None]:
    """The first chunk of the files of ``found[start:]``, until about ``_READ_AHEAD`` bytes
    are read (at least one entry). ``None`` for a missing file, and for one that cannot be
    read now: its reader tries again and reports the error with the message it belongs to."""
    firsts: list[bytes | None] = []
    total = 0
    for _row, path in found[start:]:
        if total >= _READ_AHEAD:
            break
        first = None
        if path is not None:
            with suppress(OSError), open(path, "rb") as handle:
                first = handle.read(_READ_CHUNK)
                total += len(first)
        firsts.append(first)
    return firsts


def _read_chunk(path: Path, offset: int, uid: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(_READ_CHUNK)
    except OSError as exc:
        raise MessageError(f"cannot read {path.name}: {exc.strerror}", uid=uid) from exc
