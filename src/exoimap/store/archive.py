"""The local archive: Maildir++ files (byte-exact) plus an SQLite index.

Layout of an archive directory::

    <root>/maildir/            the Maildir++ tree (open it with Dovecot, mutt, notmuch)
        cur/ new/ tmp/         INBOX
        .Sub.Folder/           other folders (names: see exoimap.store._maildir)
    <root>/index.sqlite        the index (WAL): folders and messages
    <root>/journal/            write-ahead records of batches in flight
    <root>/damaged/            damaged index files kept aside after a rebuild
    <root>/lock                held (flock) by the process using the archive

Dovecot (checked with 2.3.19) serves the Maildir++ tree as it is, flags and sizes
included; with folder names holding ``.``, ``\\`` or a leading ``~`` it needs::

    mail_location = maildir:<root>/maildir
    mail_plugins = $mail_plugins listescape
    namespace inbox {
      inbox = yes
      separator = /
    }

Every message file holds exactly the bytes of ``BODY[]``; its SHA-256, size, Message-ID,
internal date (also the file's mtime), flags (also in the name, ``:2,FRS``), where it came
from (``origin``: source UIDVALIDITY and UID) and whether it was seen deleted on the source
(``gone_at``) are in the index. The archive has its own UIDVALIDITY and UIDs, so it is a
:class:`~exoimap.store.base.Store` like any other.

Crash safety (group commit): a batch of appended messages is streamed into ``tmp/``,
flushed (fsync from a thread pool, or one ``syncfs``), described in a journal record
(written atomically and flushed), renamed into ``cur/``, the directory flushed, and then the
index is updated in ONE transaction. Flag changes, expunges, renames and deletes are
journaled the same way. On open, leftover journal records are rolled forward (files that
reached ``tmp/`` or ``cur/`` are adopted after their SHA-256 is checked), then ``tmp/`` is
emptied. A damaged index is set aside and rebuilt from the files (see
:mod:`exoimap.store._archive_recovery`).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import itertools
import json
import os
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from exoimap.errors import (
    FolderError,
    FolderNotFound,
    MessageError,
    StoreError,
    StoreLocked,
    StoreUnavailable,
)
from exoimap.store import _archive_recovery as recovery
from exoimap.store._archive_append import append_batch
from exoimap.store._archive_index import (
    FolderRow,
    Index,
    IndexStamp,
    MessageRow,
    index_stamp,
    map_sqlite_error,
)
from exoimap.store._archive_recovery import FileReport
from exoimap.store._archive_stamps import files_unchanged, record_stamps
from exoimap.store._maildir import (
    atomic_write,
    encode_folder_dir,
    fsync_dir,
    letters_for,
    map_os_error,
)
from exoimap.store.archive_state import ArchiveSyncState
from exoimap.store.base import (
    AppendItem,
    Capabilities,
    FetchedMessage,
    FolderInfo,
    FolderState,
    MessageListing,
    MessageRef,
    SpecialUse,
    folder_states_one_by_one,
    is_inbox,
    normalize_flags,
)

__all__ = [
    "ArchiveFolder",
    "ArchiveStore",
    "CrashHook",
    "FileReport",
    "FolderRow",
    "IndexStamp",
    "Writer",
]

#: Called with the name of each crash point (tests make the process die there).
CrashHook = Callable[[str], None]
#: ``os.write``-like function used for message bodies (tests inject ENOSPC).
Writer = Callable[[int, bytes | memoryview], int]

_READ_CHUNK = 256 * 1024


def _iso(when: _dt.datetime) -> str:
    return when.isoformat()


class ArchiveStore:
    """The local archive. Open it with :meth:`open`; one process at a time."""

    def __init__(
        self,
        root: Path,
        index: Index,
        lock_fd: int,
        *,
        fsync_mode: str,
        crash_hook: CrashHook | None,
        writer: Writer,
    ) -> None:
        self.root = root
        self.maildir = root / "maildir"
        self.journal_dir = root / "journal"
        self._index = index
        self._lock_fd: int | None = lock_fd
        self.fsync_mode = fsync_mode
        self._crash_hook = crash_hook
        self._write = writer
        self._journal_seq = itertools.count(1)
        #: Human-readable notes about what recovery did when the archive was opened.
        self.recovery_notes: list[str] = []
        # set when a journaled operation failed half-way: only reopening (which rolls the
        # journal forward) may continue, so nothing is written on top of a half-done batch
        self._broken: str | None = None
        #: The index file's stamp after :meth:`close` (None before, or if it has no stamp).
        self.closed_index_stamp: IndexStamp | None = None
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
        fsync_mode: str = "pool",
        crash_hook: CrashHook | None = None,
        writer: Writer = os.write,
        trusted_index: IndexStamp | None = None,
    ) -> ArchiveStore:
        """Lock, recover and open the archive at ``root`` (created when missing).

        ``trusted_index``: the :attr:`closed_index_stamp` a clean session of this process left;
        while the index file still has it, its integrity check is skipped (a resident
        process's next sync; any write to the file by anyone changes the stamp).

        ``fsync_mode`` is ``pool`` (fsync files from a thread pool), ``syncfs`` (one
        ``syncfs(2)`` per batch, Linux), ``serial``, or ``none``: no fsync at all and
        SQLite ``synchronous=OFF``, which survives a killed process but NOT a power loss
        or kernel crash (for tests and scratch archives only).
        """
        if fsync_mode not in ("pool", "syncfs", "serial", "none"):
            raise StoreError(f"unknown fsync mode {fsync_mode!r}")
        base = Path(root)
        if not base.exists() and not create:
            raise StoreError(f"no archive at {base}")
        try:
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            for sub in ("maildir", "journal", "damaged"):
                (base / sub).mkdir(exist_ok=True, mode=0o700)
            for sub in ("cur", "new", "tmp"):
                (base / "maildir" / sub).mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise map_os_error(exc, f"creating the archive at {base}") from exc
        lock_fd = _take_lock(base / "lock")
        try:
            index, notes = recovery.open_index(
                base, durable=fsync_mode != "none", trusted=trusted_index
            )
            store = cls(
                base,
                index,
                lock_fd,
                fsync_mode=fsync_mode,
                crash_hook=crash_hook,
                writer=writer,
            )
            store.recovery_notes.extend(notes)
            store._ensure_inbox()
            store._recover()
        except BaseException:
            os.close(lock_fd)
            raise
        return store

    def _ensure_inbox(self) -> None:
        if self._index.folder("INBOX") is None:
            with self._index.tx() as db:
                self._index.insert_folder(
                    db, "INBOX", "", SpecialUse.INBOX.value, self._take_uidvalidity(db)
                )

    def _take_uidvalidity(self, db: sqlite3.Connection) -> int:
        value = int(self._index.meta("next_uidvalidity") or "1")
        self._index.set_meta(db, "next_uidvalidity", str(value + 1))
        return value

    def _recover(self) -> None:
        notes = recovery.replay_journals(self)
        self.recovery_notes.extend(notes)
        for folder in self._index.folders():
            tmp = self.maildir / folder.dirname / "tmp"
            if tmp.is_dir():
                for entry in os.scandir(tmp):
                    if entry.is_file():
                        os.unlink(entry.path)

    # --- internals used by recovery and folders ----------------------------------------

    @property
    def index(self) -> Index:
        return self._index

    @property
    def durable(self) -> bool:
        return self.fsync_mode != "none"

    def sync_dir(self, path: Path) -> None:
        """Make renames in ``path`` durable (skipped with ``fsync_mode="none"``)."""
        if self.durable:
            fsync_dir(path)

    def crash_point(self, name: str) -> None:
        if self._crash_hook is not None:
            self._crash_hook(name)

    def folder_dir(self, row: FolderRow) -> Path:
        return self.maildir / row.dirname

    def check_usable(self) -> None:
        if self._broken is not None:
            raise StoreUnavailable(
                f"the archive {self.root} stopped after an error ({self._broken}); "
                "open it again to finish the interrupted work",
                retryable=True,
            )

    @contextmanager
    def journaled(self, record: dict[str, Any]) -> Iterator[None]:
        """Write ``record`` durably, run the body, then drop the record.

        If the body fails, the record stays for the next open to roll forward and this
        store refuses further writes."""
        self.check_usable()
        path = self.write_journal(record)
        self.crash_point(f"{record['op']}.journaled")
        try:
            yield
        except BaseException as exc:
            self.mark_broken(exc)
            raise
        path.unlink()

    def mark_broken(self, exc: BaseException) -> None:
        """A journaled operation failed half-way: refuse writes until reopened."""
        self._broken = f"{type(exc).__name__}: {exc}"

    def write_journal(self, record: dict[str, Any]) -> Path:
        path = self.journal_dir / f"{os.getpid()}-{next(self._journal_seq):08d}.json"
        try:
            atomic_write(path, json.dumps(record).encode(), durable=self.durable)
        except OSError as exc:
            raise map_os_error(exc, "writing the archive journal") from exc
        return path

    def _row(self, name: str) -> FolderRow:
        row = self._index.folder(name)
        if row is None:
            raise FolderNotFound(f"folder {name!r} does not exist in the archive", folder=name)
        return row

    # --- Store protocol ------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def delimiter(self) -> str:
        return "/"

    async def list_folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(
                name=row.name,
                delimiter="/",
                role=SpecialUse(row.role) if row.role else None,
                gone_at=_dt.datetime.fromisoformat(row.gone_at) if row.gone_at else None,
            )
            for row in self._index.folders()
        ]

    async def folder_state(self, name: str) -> FolderState:
        row = self._row(name)
        return FolderState(
            name=row.name,
            uidvalidity=row.uidvalidity,
            uidnext=row.uidnext,
            exists=self._index.count(row.id),
        )

    async def folder_states(self, names: Sequence[str]) -> dict[str, FolderState]:
        return await folder_states_one_by_one(self, names)

    @asynccontextmanager
    async def _open(self, name: str) -> AsyncIterator[ArchiveFolder]:
        yield ArchiveFolder(self, self._row(name).id)

    def open_folder(self, name: str) -> AbstractAsyncContextManager[ArchiveFolder]:
        return self._open(name)

    async def create_folder(self, name: str, *, role: SpecialUse | None = None) -> None:
        self.check_usable()
        if self._index.folder(name) is not None:
            raise FolderError(f"folder {name!r} already exists in the archive", folder=name)
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            partial = "/".join(parts[:depth])
            if self._index.folder(partial) is not None:
                continue
            dirname = encode_folder_dir(partial)
            path = self.maildir / dirname
            try:
                for sub in ("cur", "new", "tmp"):
                    (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
                (path / "maildirfolder").touch()
                self.sync_dir(self.maildir)
            except OSError as exc:
                raise map_os_error(exc, f"creating folder {partial!r}", folder=partial) from exc
            self.crash_point("create.dirs")
            own_role = role.value if role and depth == len(parts) else None
            try:
                with self._index.tx() as db:
                    self._index.insert_folder(
                        db, partial, dirname, own_role, self._take_uidvalidity(db)
                    )
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, f"creating folder {partial!r}") from exc

    async def rename_folder(self, old: str, new: str) -> None:
        row = self._row(old)
        if is_inbox(old):
            raise FolderError("INBOX cannot be renamed", folder=old)
        if self._index.folder(new) is not None:
            raise FolderError(f"cannot rename {old!r}: {new!r} already exists", folder=old)
        moves = []
        for other in self._index.folders():
            if other.id == row.id or other.name.startswith(row.name + "/"):
                target = new + other.name[len(row.name) :]
                moves.append([other.id, target, other.dirname, encode_folder_dir(target)])
        parent = new.rpartition("/")[0]
        if parent and self._index.folder(parent) is None:
            await self.create_folder(parent)
        with self.journaled({"op": "rename", "moves": moves}):
            recovery.apply_rename(self, moves)
            self.crash_point("rename.applied")

    async def delete_folder(self, name: str) -> None:
        row = self._row(name)
        if is_inbox(name):
            raise FolderError("INBOX cannot be deleted", folder=name)
        with self.journaled({"op": "delete", "folder_id": row.id, "dir": row.dirname}):
            recovery.apply_delete(self, row.id, row.dirname)

    async def close(self) -> None:
        if self._lock_fd is not None:
            self._index.close()
            # taken while the lock is still held: nobody can have written since the close
            self.closed_index_stamp = index_stamp(self.root / "index.sqlite")
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- archive-only operations ---------------------------------------------------------

    def folder_records(self) -> list[FolderRow]:
        """Every folder's index row (with the source state recorded by the engine)."""
        return self._index.folders()

    def folder_record(self, name: str) -> FolderRow | None:
        """The index row of a folder (with the source state recorded by the engine)."""
        return self._index.folder(name)

    async def set_folder_source(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        """Record the source folder's state after a successful sync (and clear ``gone``)."""
        row = self._row(name)
        self.check_usable()
        if (row.source_uidvalidity, row.source_uidnext, row.source_modseq, row.gone_at) == (
            uidvalidity,
            uidnext,
            modseq,
            None,
        ):
            return  # nothing changed: a no-change resync commits nothing
        with self._index.tx() as db:
            db.execute(
                "UPDATE folders SET source_uidvalidity=?, source_uidnext=?, source_modseq=?, "
                "gone_at=NULL WHERE id=?",
                (uidvalidity, uidnext, modseq, row.id),
            )
        self.crash_point("source.committed")

    async def mark_folder_gone(self, name: str, when: _dt.datetime) -> None:
        """Record that the source folder was seen deleted (its messages stay)."""
        row = self._row(name)
        self.check_usable()
        with self._index.tx() as db:
            db.execute(
                "UPDATE folders SET gone_at=? WHERE id=? AND gone_at IS NULL",
                (_iso(when), row.id),
            )
        self.crash_point("folder_gone.committed")

    def files_unchanged(self, record: FolderRow) -> bool:
        """True when nothing added, removed or renamed a file of the folder of ``record``
        (from :meth:`folder_records`) since its files were last found complete (see
        :mod:`exoimap.store._archive_stamps`): the engine may then skip looking for
        hand-deleted files."""
        return files_unchanged(self.folder_dir(record), record)

    async def record_files_checked(self, names: Sequence[str]) -> int:
        """After a sync: remember, for each folder whose files are all present, the
        directory stamps that let the next run trust them unlooked. Returns how many."""
        self.check_usable()
        wanted = set(names)
        rows = [row for row in self._index.folders() if row.name in wanted]
        return await record_stamps(
            self._index,
            rows,
            self.folder_dir,
            lambda row: not ArchiveFolder(self, row.id).missing_files(),
        )

    def sync_state(self) -> ArchiveSyncState:
        """The archive's sync state (see :class:`~exoimap.store.base.SyncState`)."""
        return ArchiveSyncState(self)

    def verify_files(self, *, deep: bool = False) -> recovery.FileReport:
        """Compare the files with the index (``deep``: re-hash every file)."""
        return recovery.verify_files(self, deep=deep)


class ArchiveFolder:
    """An open folder of the archive (implements Folder and ContentMatching)."""

    def __init__(self, store: ArchiveStore, folder_id: int) -> None:
        self._store = store
        self._index = store.index
        self._id = folder_id

    def _row(self) -> FolderRow:
        return self._index.folder_by_id(self._id)

    @property
    def name(self) -> str:
        return self._row().name

    async def state(self) -> FolderState:
        return await self._store.folder_state(self.name)

    async def list_messages(
        self, *, changed_since: int | None = None, detail: bool = False
    ) -> MessageListing:
        state = await self.state()
        messages = self._index.infos(self._id, detail=detail)
        return MessageListing(state=state, messages=messages, complete=True)

    def _path_of(self, row: MessageRow) -> Path:
        return (
            self._store.folder_dir(self._row()) / "cur" / f"{row.file}:2,{letters_for(row.flags)}"
        )

    def find_file(self, row: MessageRow) -> Path | None:
        """The file of ``row`` even if its flag letters were changed by another program."""
        path = self._path_of(row)
        if path.exists():
            return path
        for sub in ("cur", "new"):
            directory = self._store.folder_dir(self._row()) / sub
            for entry in os.scandir(directory):
                if entry.name == row.file or entry.name.startswith(row.file + ":"):
                    return Path(entry.path)
        return None

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        for row in self._index.messages(self._id, uids):
            path = self.find_file(row)
            if path is None:
                raise MessageError(
                    f"the archive file of UID {row.uid} in {self.name!r} is missing; "
                    "the next backup fetches it again",
                    folder=self.name,
                    uid=row.uid,
                )
            yield FetchedMessage(
                uid=row.uid,
                flags=row.flags,
                internal_date=_dt.datetime.fromisoformat(row.internal_date),
                size=row.size,
                chunks=_read_file(path),
            )

    async def append(
        self, items: AsyncIterable[AppendItem], *, adopt_unanchored: bool = False
    ) -> list[int]:
        """Store ``items`` in one group commit; see the module docstring.

        With ``adopt_unanchored``, an item whose bytes equal a message whose origin is
        unknown or stale (after a UIDVALIDITY change) is not stored twice: that message is
        re-pointed at the item's origin and its UID returned.
        """
        return await append_batch(self._store, self._id, items, adopt_unanchored)

    async def append_matching(self, items: AsyncIterable[AppendItem]) -> list[int]:
        return await append_batch(self._store, self._id, items, True)

    async def set_flags(self, changes: Mapping[int, frozenset[str]]) -> None:
        rows = self._index.messages(self._id, list(changes))
        todo = []
        for row in rows:
            new = normalize_flags(changes[row.uid])
            if new != row.flags:
                todo.append([row.uid, sorted(new), row.file, letters_for(new)])
        if not todo:
            return
        with self._store.journaled({"op": "flags", "folder_id": self._id, "changes": todo}):
            recovery.apply_flags(self._store, self._id, todo)
            self._store.crash_point("flags.applied")

    async def expunge(self, uids: Sequence[int]) -> None:
        rows = self._index.messages(self._id, uids)
        if not rows:
            return
        entries = [[r.uid, r.file] for r in rows]
        with self._store.journaled({"op": "expunge", "folder_id": self._id, "entries": entries}):
            recovery.apply_expunge(self._store, self._id, entries)

    async def set_origins(self, origins: Mapping[int, MessageRef]) -> None:
        self._store.check_usable()
        with self._index.tx() as db:
            db.executemany(
                "UPDATE messages SET origin_uidvalidity=?, origin_uid=?, state='stored', "
                "gone_at=NULL WHERE folder_id=? AND uid=?",
                [(ref.uidvalidity, ref.uid, self._id, uid) for uid, ref in origins.items()],
            )
        self._store.crash_point("origins.committed")

    async def mark_gone(self, uids: Sequence[int], when: _dt.datetime) -> None:
        self._store.check_usable()
        with self._index.tx() as db:
            db.executemany(
                "UPDATE messages SET state='gone', gone_at=? "
                "WHERE folder_id=? AND uid=? AND gone_at IS NULL",
                [(_iso(when), self._id, uid) for uid in uids],
            )
        self._store.crash_point("gone.committed")

    def missing_files(self) -> list[int]:
        """UIDs whose file is not in ``cur/`` or ``new/`` (one directory scan)."""
        directory = self._store.folder_dir(self._row())
        bases = {
            name.partition(":")[0] for sub in ("cur", "new") for name in os.listdir(directory / sub)
        }
        return [uid for uid, base in self._index.files(self._id) if base not in bases]

    async def forget(self, uids: Sequence[int]) -> None:
        """Drop index rows (used for messages whose file is missing, before re-fetching)."""
        self._store.check_usable()
        with self._index.tx() as db:
            db.executemany(
                "DELETE FROM messages WHERE folder_id=? AND uid=?",
                [(self._id, uid) for uid in uids],
            )


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                yield chunk
    except OSError as exc:
        raise MessageError(f"cannot read {path.name}: {exc.strerror}") from exc


def _take_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StoreLocked(
            f"the archive {path.parent} is in use by another exoimap process (pid {holder}); "
            "wait for it to finish, or stop it, and run again"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
