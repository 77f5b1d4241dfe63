"""The archive's SQLite index (WAL, synchronous=FULL): folders and messages.

This module holds all the SQL of the archive, and it is the one place where ``sqlite3``
errors become store errors: every public method of :class:`Index` maps them with
:func:`map_sqlite_error`, which tells how much is affected (``scope``: a statement about one
folder's rows affects that folder) and whether trying again may help (``retryable``). A
damaged file comes out as :class:`IndexDamaged`; opening the archive again sets it aside and
rebuilds it from the message files (:mod:`exoimap.store.archive.repair`).

Every write is one transaction (:meth:`Index.tx`: per batch, never per message); every
statement goes through :meth:`Index._execute` or :meth:`Index._executemany`. The archive
uses one connection, from its worker thread only (:mod:`exoimap.store.archive.worker`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from exoimap.errors import (
    DiskFull,
    ErrorScope,
    StoreError,
    StoreLocked,
    StoreUnavailable,
    disk_of,
)
from exoimap.store.archive.files import atomic_write
from exoimap.store.base import MessageInfo, MessageRef, UidRange

__all__ = [
    "FolderRow",
    "Index",
    "IndexDamaged",
    "IndexStamp",
    "MessageRow",
    "RebuiltFolder",
    "Rows",
    "index_stamp",
    "leave_trusted_stamp",
    "map_sqlite_error",
    "storable",
    "take_trusted_stamp",
]

SCHEMA_VERSION = 2
#: Statements that bring an index of the version before to this one.
_MIGRATIONS = {
    # 2: files_stamp, the Maildir directories' mtimes when the files were last checked
    1: ("ALTER TABLE folders ADD COLUMN files_stamp TEXT",),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    dirname TEXT NOT NULL UNIQUE,
    role TEXT,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    source_uidvalidity INTEGER,
    source_uidnext INTEGER,
    source_modseq INTEGER,
    gone_at TEXT,
    files_stamp TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    folder_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    message_id TEXT,
    internal_date TEXT NOT NULL,
    flags TEXT NOT NULL,
    file TEXT NOT NULL,
    origin_uidvalidity INTEGER,
    origin_uid INTEGER,
    state TEXT NOT NULL DEFAULT 'stored',
    gone_at TEXT,
    PRIMARY KEY (folder_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_origin
    ON messages (folder_id, origin_uidvalidity, origin_uid);
"""


def storable(name: str) -> bool:
    """Whether SQLite can hold ``name``: it must be Unicode without lone surrogates (which
    stand for bytes a server sent that were neither modified UTF-7 nor UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class IndexDamaged(StoreUnavailable):
    """The index file is damaged (not a database, or failing its integrity check).
    Opening the archive again keeps it aside and rebuilds it from the message files."""


_FULL = frozenset({"SQLITE_FULL"})
_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
_CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_REFUSED = frozenset({"SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_AUTH"})


def map_sqlite_error(
    exc: sqlite3.Error,
    what: str,
    *,
    scope: ErrorScope = ErrorScope.STORE,
    path: Path | None = None,
) -> StoreError:
    """The store error for ``exc``, met while ``what``; ``scope`` is how much the failed
    statement was about (one folder's rows, or the whole index); ``path`` the index file."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorname", None)
    if code in _FULL or "disk is full" in text or ("disk I/O" in text and "full" in text):
        return DiskFull(
            f"no space left on {disk_of(path)} while {what}; everything stored before is "
            "intact. Free some space and run again."
        )
    if code in _BUSY or "locked" in text or "busy" in text:
        return StoreLocked(f"the archive index is locked by another process while {what}")
    # sqlite3 raises the DatabaseError base class itself for a damaged file (its
    # subclasses name other failures)
    if code in _CORRUPT or type(exc) is sqlite3.DatabaseError:
        return IndexDamaged(
            f"the archive index is damaged ({text}) while {what}; open the archive again: "
            "the index is then kept aside and rebuilt from the message files"
        )
    if code in _REFUSED:
        return StoreError(f"the archive index cannot be written while {what}: {text}")
    # anything else (an I/O error, an interrupted statement) may pass: try again later
    return StoreError(
        f"the archive index failed while {what}: {text}",
        scope=scope,
        retryable=isinstance(exc, sqlite3.OperationalError),
    )


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _mapped(
    what: str, scope: ErrorScope = ErrorScope.STORE
) -> Callable[[Callable[Concatenate[Index, _P], _R]], Callable[Concatenate[Index, _P], _R]]:
    """The error boundary of a public :class:`Index` method."""

    def decorate(
        method: Callable[Concatenate[Index, _P], _R],
    ) -> Callable[Concatenate[Index, _P], _R]:
        @functools.wraps(method)
        def mapped(self: Index, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise map_sqlite_error(
                    exc, what, scope=scope, path=getattr(self, "path", None)
                ) from exc

        return mapped

    return decorate


_FOLDER = ErrorScope.FOLDER


@dataclass(frozen=True, slots=True)
class FolderRow:
    id: int
    name: str
    dirname: str
    role: str | None
    uidvalidity: int
    uidnext: int
    source_uidvalidity: int | None
    source_uidnext: int | None
    source_modseq: int | None
    gone_at: str | None
    #: ``cur`` and ``new`` mtimes when every indexed file was last seen present (or None).
    files_stamp: str | None = None


@dataclass(frozen=True, slots=True)
class MessageRow:
    uid: int
    sha256: str
    size: int
    message_id: str | None
    internal_date: str
    flags: frozenset[str]
    file: str
    origin_uidvalidity: int | None
    origin_uid: int | None
    state: str
    gone_at: str | None


#: What identifies the bytes of a closed index file: device, inode, size, mtime, ctime.
IndexStamp = tuple[int, int, int, int, int]


def index_stamp(path: Path) -> IndexStamp | None:
    """The stamp of the closed index at ``path``; None if it is missing or its write-ahead
    log holds changes not yet in it. Any write to the file, by anyone, changes its ctime."""
    try:
        if os.stat(f"{path}-wal").st_size:
            return None
    except FileNotFoundError:
        pass
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def leave_trusted_stamp(path: Path, stamp: IndexStamp) -> None:
    """Record, beside the index at ``path``, the stamp a sound session left it with, for
    :func:`take_trusted_stamp` in the next process that opens the archive."""
    # not flushed: a note lost to a power cut only costs the next open its check
    atomic_write(Path(f"{path}.trusted"), json.dumps(list(stamp)).encode(), durable=False)


def take_trusted_stamp(path: Path) -> IndexStamp | None:
    """The stamp :func:`leave_trusted_stamp` recorded, removed as it is read (a session
    that crashes, or ends with an error, leaves none behind). ``None`` when there is
    none, it is not one, or it cannot be read and removed: the open then checks the index,
    as without a note."""
    note = Path(f"{path}.trusted")
    try:
        text = note.read_bytes()
        note.unlink()
    except OSError:
        return None
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(values, list) and len(values) == 5):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return (values[0], values[1], values[2], values[3], values[4])


def _flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


def _flags(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


class _FlagSets(dict[str, frozenset[str]]):
    """Flag sets by their index text, each parsed once per listing (most messages share a
    handful of flag combinations, and a no-change resync lists every message)."""

    def __missing__(self, text: str) -> frozenset[str]:
        flags = self[text] = _flags(text)
        return flags


_MSG_COLUMNS = (
    "uid, sha256, size, message_id, internal_date, flags, file, "
    "origin_uidvalidity, origin_uid, state, gone_at"
)
#: The lean listing (the no-change resync reads it for every message), without and with
#: size and internal date, and the detailed one; each followed by a :class:`Rows` filter.
_LEAN = "SELECT uid, flags, origin_uidvalidity, origin_uid, gone_at, NULL, NULL FROM messages"
_LEAN_SIZED = (
    "SELECT uid, flags, origin_uidvalidity, origin_uid, gone_at, size, internal_date FROM messages"
)
_DETAILED = (
    "SELECT uid, flags, size, internal_date, message_id, origin_uidvalidity, "
    "origin_uid, gone_at, sha256 FROM messages"
)


@dataclass(frozen=True, slots=True)
class Rows:
    """Which messages of a folder a listing reads: all, a range of archive UIDs, or those
    whose origin is a range of source UIDs under one source UIDVALIDITY."""

    uids: UidRange | None = None
    origin_uidvalidity: int | None = None
    origins: UidRange | None = None

    def where(self, folder_id: int) -> tuple[str, tuple[int, ...]]:
        """The ``WHERE ... ORDER BY uid`` clause and its parameters."""
        sql, params = " WHERE folder_id=?", [folder_id]
        for column, window in (("uid", self.uids), ("origin_uid", self.origins)):
            if window is not None:
                sql += f" AND {column}>=?"
                params.append(window.first)
                if window.last is not None:
                    sql += f" AND {column}<=?"
                    params.append(window.last)
        if self.origins is not None:
            sql += " AND origin_uidvalidity=?"
            params.append(self.origin_uidvalidity or 0)
        return sql + " ORDER BY uid", tuple(params)


#: A live message without an origin under the UIDVALIDITY ``:uv`` (see
#: :meth:`Index.has_unanchored`).
_UNANCHORED = (
    "SELECT 1 FROM messages INDEXED BY messages_origin WHERE folder_id=:folder "
    "AND gone_at IS NULL AND origin_uidvalidity IS NULL "
    "UNION ALL SELECT 1 FROM messages INDEXED BY messages_origin WHERE folder_id=:folder "
    "AND gone_at IS NULL AND origin_uidvalidity<:uv "
    "UNION ALL SELECT 1 FROM messages INDEXED BY messages_origin WHERE folder_id=:folder "
    "AND gone_at IS NULL AND origin_uidvalidity>:uv "
    "UNION ALL SELECT 1 FROM messages INDEXED BY messages_origin WHERE folder_id=:folder "
    "AND gone_at IS NULL AND origin_uidvalidity=:uv AND origin_uid IS NULL LIMIT 1"
)
#: Where :meth:`Index.files_on_disk` compares a folder's files with its rows.
_FILE_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS on_disk (base TEXT PRIMARY KEY, path TEXT NOT NULL) "
    "WITHOUT ROWID",
    "CREATE TEMP TABLE IF NOT EXISTS indexed (base TEXT PRIMARY KEY) WITHOUT ROWID",
)
_FOLDER_COLUMNS = (
    "id, name, dirname, role, uidvalidity, uidnext, source_uidvalidity, "
    "source_uidnext, source_modseq, gone_at, files_stamp"
)


@dataclass(frozen=True, slots=True)
class RebuiltFolder:
    """A folder as its files describe it, for :meth:`Index.rebuild`."""

    name: str
    dirname: str
    role: str | None
    #: ``None``: no file told it; the folder gets a fresh one.
    uidvalidity: int | None
    uidnext: int
    rows: list[MessageRow]


def _message_row(r: Sequence[Any]) -> MessageRow:
    return MessageRow(
        uid=r[0],
        sha256=r[1],
        size=r[2],
        message_id=r[3],
        internal_date=r[4],
        flags=_flags(r[5]),
        file=r[6],
        origin_uidvalidity=r[7],
        origin_uid=r[8],
        state=r[9],
        gone_at=r[10],
    )


def _message_values(folder_id: int, r: MessageRow) -> tuple[Any, ...]:
    return (
        folder_id,
        r.uid,
        r.sha256,
        r.size,
        r.message_id,
        r.internal_date,
        _flags_text(r.flags),
        r.file,
        r.origin_uidvalidity,
        r.origin_uid,
        r.state,
        r.gone_at,
    )


def _make_private(path: Path) -> None:
    """Make the index file 0600 before SQLite opens it: SQLite would create it 0644 (less
    the umask), and it gives the -wal and -shm files the database file's mode."""
    # A chmod changes the ctime, which the index stamp watches: only when it is needed.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o777 != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(f"{path}{suffix}").st_mode & 0o777 != 0o600:
                os.chmod(f"{path}{suffix}", 0o600)


class Index:
    """The archive index: one connection, used from one thread at a time."""

    @_mapped("opening the archive index")
    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        _make_private(path)
        # opened on the caller's thread, then used by the archive's worker thread only
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._execute("PRAGMA journal_mode=WAL")
        self._execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self._execute("PRAGMA busy_timeout=2000")

    @classmethod
    def open_read_only(cls, path: Path) -> Index:
        """The index at ``path`` opened to read only, for looking at an archive another
        process may hold (``exoimap doctor``): nothing is written, a missing file is not
        created (StoreError)."""
        index = cls.__new__(cls)
        index.path = path
        try:
            index._db = sqlite3.connect(
                f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            index._execute("PRAGMA busy_timeout=2000")
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, "opening the archive index to read", path=path) from exc
        return index

    # --- every statement goes through these two ----------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    @contextmanager
    def tx(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
        """One transaction; committed (durably) on exit, rolled back on error. ``begin``:
        ``"BEGIN"`` for one that writes only temporary tables (no lock on the index)."""
        self._execute(begin)
        try:
            yield
            self._execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                # the error that got us here is the one to report
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    # --- opening -----------------------------------------------------------------------

    @_mapped("checking the archive index")
    def check_and_init(self, *, quick_check: bool = True) -> None:
        """Verify the file is a sound index (raises :class:`IndexDamaged`) and create or
        upgrade the tables. ``quick_check=False`` skips the integrity check, for a file
        known to be the one a clean session closed (see :func:`index_stamp`)."""
        if quick_check:
            answer = self._quick_check()
            if answer != "ok":
                raise IndexDamaged(
                    f"the archive index {self.path} failed its integrity check "
                    f"(quick_check: {answer})"
                )
        version = self._execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version != 0 and version not in _MIGRATIONS:
            raise StoreError(
                f"{self.path} has index schema {version}; this exoimap knows {SCHEMA_VERSION}"
            )
        if version == 0:
            statements = [s for s in _SCHEMA.split(";") if s.strip()]
        else:
            statements = [s for step in range(version, SCHEMA_VERSION) for s in _MIGRATIONS[step]]
        try:
            with self.tx():
                for statement in statements:
                    self._execute(statement)
                self._execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            # not damage (a full disk, a read-only or locked file): say so, never rebuild
            raise map_sqlite_error(
                exc, f"upgrading the index to schema {SCHEMA_VERSION}", path=self.path
            ) from exc

    def _quick_check(self) -> str:
        result = self._execute("PRAGMA quick_check").fetchone()
        return str(result[0]) if result else "no answer"

    @_mapped("checking the archive index")
    def quick_check(self, *, time_limit: float) -> str | None:
        """SQLite's ``quick_check`` answer (``"ok"`` for a sound file), or None when it
        takes longer than ``time_limit`` seconds (a large index on a slow disk)."""
        deadline = time.monotonic() + time_limit
        self._db.set_progress_handler(lambda: time.monotonic() > deadline, 100)
        try:
            return self._quick_check()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                return None
            raise
        finally:
            self._db.set_progress_handler(None, 0)

    @_mapped("reading the archive index")
    def initialized(self) -> bool:
        return self._meta("initialized") is not None

    @_mapped("initialising the archive index")
    def mark_initialized(self) -> None:
        with self.tx():
            self._set_meta("initialized", _dt.datetime.now(_dt.UTC).isoformat())

    @_mapped("closing the archive index")
    def close(self) -> None:
        self._db.close()

    def _meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _take_uidvalidity(self) -> int:
        value = int(self._meta("next_uidvalidity") or "1")
        self._set_meta("next_uidvalidity", str(value + 1))
        return value

    # --- folders -----------------------------------------------------------------------

    @_mapped("reading the archive's folders")
    def folders(self) -> list[FolderRow]:
        rows = self._execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders ORDER BY name"  # noqa: S608 - constant columns
        ).fetchall()
        return [FolderRow(*row) for row in rows]

    @_mapped("reading the archive's folders")
    def folder(self, name: str) -> FolderRow | None:
        if name.upper() == "INBOX":
            name = "INBOX"
        if not storable(name):
            return None  # never stored (see ArchiveStore.create_folder)
        row = self._execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE name=?",  # noqa: S608 - constant columns
            (name,),
        ).fetchone()
        return None if row is None else FolderRow(*row)

    @_mapped("reading a folder of the archive", _FOLDER)
    def folder_by_id(self, folder_id: int) -> FolderRow:
        row = self._execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE id=?",  # noqa: S608 - constant columns
            (folder_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"folder id {folder_id} vanished from the index", scope=_FOLDER)
        return FolderRow(*row)

    @_mapped("adding a folder to the archive index", _FOLDER)
    def add_folder(self, name: str, dirname: str, role: str | None) -> None:
        """A new folder, with the archive's next UIDVALIDITY."""
        with self.tx():
            self._execute(
                "INSERT INTO folders (name, dirname, role, uidvalidity, uidnext) "
                "VALUES (?,?,?,?,1)",
                (name, dirname, role, self._take_uidvalidity()),
            )

    @_mapped("recording the source folder's state", _FOLDER)
    def set_folder_source(
        self, folder_id: int, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        with self.tx():
            self._execute(
                "UPDATE folders SET source_uidvalidity=?, source_uidnext=?, source_modseq=?, "
                "gone_at=NULL WHERE id=?",
                (uidvalidity, uidnext, modseq, folder_id),
            )

    @_mapped("recording that a source folder is gone", _FOLDER)
    def mark_folder_gone(self, folder_id: int, when: str) -> None:
        with self.tx():
            self._execute(
                "UPDATE folders SET gone_at=? WHERE id=? AND gone_at IS NULL", (when, folder_id)
            )

    @_mapped("recording the folders' files stamps")
    def set_files_stamps(self, stamps: Sequence[tuple[str, int]]) -> None:
        """``(stamp, folder id)`` pairs (see :mod:`exoimap.store.archive.stamps`)."""
        with self.tx():
            self._executemany("UPDATE folders SET files_stamp=? WHERE id=?", stamps)

    @_mapped("renaming a folder", _FOLDER)
    def rename_folders(self, moves: Sequence[Sequence[Any]]) -> None:
        """``[folder id, new name, old dirname, new dirname]`` for a folder and its children."""
        with self.tx():
            # two steps so that swapping names never trips the UNIQUE constraints
            self._executemany(
                "UPDATE folders SET name=?, dirname=? WHERE id=?",
                [(f"\x00{m[0]}", f"\x00{m[0]}", m[0]) for m in moves],
            )
            self._executemany(
                "UPDATE folders SET name=?, dirname=? WHERE id=?",
                [(m[1], m[3], m[0]) for m in moves],
            )

    @_mapped("deleting a folder", _FOLDER)
    def delete_folder(self, folder_id: int) -> None:
        with self.tx():
            self._execute("DELETE FROM messages WHERE folder_id=?", (folder_id,))
            self._execute("DELETE FROM folders WHERE id=?", (folder_id,))

    # --- messages ----------------------------------------------------------------------

    @_mapped("reading a folder's messages", _FOLDER)
    def messages(self, folder_id: int, uids: Sequence[int] | None = None) -> list[MessageRow]:
        if uids is None:
            rows = self._execute(
                f"SELECT {_MSG_COLUMNS} FROM messages WHERE folder_id=? ORDER BY uid",  # noqa: S608 - constant columns
                (folder_id,),
            ).fetchall()
        else:
            rows = []
            wanted = sorted(set(uids))
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                rows += self._execute(
                    f"SELECT {_MSG_COLUMNS} FROM messages WHERE folder_id=? "  # noqa: S608 - placeholders only
                    f"AND uid IN ({marks}) ORDER BY uid",
                    (folder_id, *part),
                ).fetchall()
        return [_message_row(r) for r in rows]

    @_mapped("listing a folder's messages", _FOLDER)
    def infos(
        self,
        folder_id: int,
        *,
        detail: bool = True,
        size_and_date: bool = False,
        rows: Rows = Rows(),  # frozen: one shared default is safe
    ) -> list[MessageInfo]:
        """The messages of a folder (``rows``: some of them) as the Store protocol shows
        them (the no-change resync reads this for every message, so it builds the objects
        directly; without ``detail`` only UID, flags, origin and gone are filled in, and
        with ``size_and_date`` also size and internal date)."""
        where, params = rows.where(folder_id)
        if not detail:
            return self._lean_infos((_LEAN_SIZED if size_and_date else _LEAN) + where, params)
        found = self._execute(_DETAILED + where, params)
        parse = _dt.datetime.fromisoformat
        flag_sets = _FlagSets()
        out = []
        for uid, flags, size, date, message_id, origin_uv, origin_uid, gone_at, sha in found:
            out.append(
                MessageInfo(
                    uid,
                    flag_sets[flags],
                    size,
                    parse(date),
                    message_id,
                    None,
                    MessageRef(origin_uv, origin_uid) if origin_uid is not None else None,
                    parse(gone_at) if gone_at else None,
                    sha,
                )
            )
        return out

    def _lean_infos(self, sql: str, params: tuple[int, ...]) -> list[MessageInfo]:
        rows = self._execute(sql, params)
        parse = _dt.datetime.fromisoformat
        flag_sets = _FlagSets()
        out = []
        for uid, flags, origin_uv, origin_uid, gone_at, size, date in rows:
            origin = None
            if origin_uid is not None:
                origin = MessageRef(origin_uv, origin_uid)
            info = MessageInfo(uid, flag_sets[flags], origin=origin)
            if gone_at:
                info.gone_at = parse(gone_at)
            if date is not None:
                info.size = size
                info.internal_date = parse(date)
            out.append(info)
        return out

    @_mapped("reading a folder's origins", _FOLDER)
    def has_unanchored(self, folder_id: int, source_uidvalidity: int) -> bool:
        """Whether a live message has no origin, or one under another UIDVALIDITY: four
        ranges of the origin index, microseconds however large the folder (one ``OR``
        made SQLite read every row of the folder)."""
        row = self._execute(_UNANCHORED, {"folder": folder_id, "uv": source_uidvalidity})
        return row.fetchone() is not None

    # --- a folder's files against its rows, inside SQLite ------------------------------

    @contextmanager
    def files_on_disk(self, folder_id: int, on_disk: Iterable[tuple[str, str]]) -> Iterator[None]:
        """Within the block, a folder's files (``(base, path in the folder)`` pairs) and its
        rows' file bases sit in temporary tables for :meth:`missing_files`,
        :meth:`rows_with_files` and :meth:`unindexed_files`: the comparison runs in SQLite's
        bounded page cache, however many files the folder holds."""
        self._load_files_on_disk(folder_id, on_disk)
        try:
            yield
        except BaseException:
            with contextlib.suppress(StoreError):  # the error in flight is the one to report
                self._clear_files_on_disk()
            raise
        self._clear_files_on_disk()

    @_mapped("comparing a folder's files with the index", _FOLDER)
    def _clear_files_on_disk(self) -> None:
        for table in _FILE_TABLES:
            self._execute(table)
        self._execute("DELETE FROM temp.on_disk")
        self._execute("DELETE FROM temp.indexed")

    @_mapped("comparing a folder's files with the index", _FOLDER)
    def _load_files_on_disk(self, folder_id: int, on_disk: Iterable[tuple[str, str]]) -> None:
        self._clear_files_on_disk()
        with self.tx("BEGIN"):
            self._executemany("INSERT OR REPLACE INTO temp.on_disk VALUES (?, ?)", on_disk)
            self._execute(
                "INSERT OR IGNORE INTO temp.indexed SELECT file FROM messages WHERE folder_id=?",
                (folder_id,),
            )

    @_mapped("comparing a folder's files with the index", _FOLDER)
    def missing_files(self, folder_id: int) -> list[int]:
        """UIDs whose file is not on disk (inside :meth:`files_on_disk`)."""
        rows = self._execute(
            "SELECT uid FROM messages WHERE folder_id=? "
            "AND file NOT IN (SELECT base FROM temp.on_disk) ORDER BY uid",
            (folder_id,),
        ).fetchall()
        return [row[0] for row in rows]

    def rows_with_files(self, folder_id: int) -> Iterator[tuple[MessageRow, str | None]]:
        """Every row of the folder with the path of its file, ``None`` when it has none
        (inside :meth:`files_on_disk`); read as they are consumed."""
        try:
            cursor = self._execute(
                f"SELECT {_MSG_COLUMNS}, on_disk.path FROM messages "  # noqa: S608 - constant columns
                "LEFT JOIN temp.on_disk ON on_disk.base = messages.file "
                "WHERE folder_id=? ORDER BY uid",
                (folder_id,),
            )
            for row in cursor:
                yield _message_row(row), row[-1]
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, "reading a folder's files", path=self.path) from exc

    @_mapped("comparing a folder's files with the index", _FOLDER)
    def unindexed_files(self) -> list[str]:
        """Bases of files no row names (inside :meth:`files_on_disk`)."""
        rows = self._execute(
            "SELECT base FROM temp.on_disk WHERE base NOT IN (SELECT base FROM temp.indexed) "
            "ORDER BY base"
        ).fetchall()
        return [row[0] for row in rows]

    @_mapped("counting a folder's messages", _FOLDER)
    def count(self, folder_id: int) -> int:
        row = self._execute(
            "SELECT count(*) FROM messages WHERE folder_id=?", (folder_id,)
        ).fetchone()
        return int(row[0])

    @_mapped("committing a batch of messages", _FOLDER)
    def commit_append(
        self,
        folder_id: int,
        rows: Iterable[MessageRow],
        uidnext: int,
        adopted: Sequence[tuple[int, int | None, int | None]],
    ) -> None:
        """New message rows, the folder's UIDNEXT, and ``(uid, origin UIDVALIDITY, origin
        UID)`` of stored messages re-pointed at a new origin: one transaction."""
        with self.tx():
            self._executemany(
                "INSERT OR REPLACE INTO messages (folder_id, uid, sha256, size, message_id, "
                "internal_date, flags, file, origin_uidvalidity, origin_uid, state, gone_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [_message_values(folder_id, r) for r in rows],
            )
            self._execute(
                "UPDATE folders SET uidnext=max(uidnext, ?) WHERE id=?", (uidnext, folder_id)
            )
            if adopted:
                self._set_origins(folder_id, [(uv, ouid, uid) for uid, uv, ouid in adopted])

    @_mapped("saving flag changes", _FOLDER)
    def set_flags(self, folder_id: int, changes: Iterable[tuple[int, Iterable[str]]]) -> None:
        """``(uid, flags)`` pairs."""
        with self.tx():
            self._executemany(
                "UPDATE messages SET flags=? WHERE folder_id=? AND uid=?",
                [(_flags_text(flags), folder_id, uid) for uid, flags in changes],
            )

    @_mapped("re-pointing messages at their source", _FOLDER)
    def set_origins(self, folder_id: int, origins: Mapping[int, MessageRef]) -> None:
        with self.tx():
            self._set_origins(
                folder_id, [(ref.uidvalidity, ref.uid, uid) for uid, ref in origins.items()]
            )

    def _set_origins(
        self, folder_id: int, origins: Iterable[tuple[int | None, int | None, int]]
    ) -> None:
        self._executemany(
            "UPDATE messages SET origin_uidvalidity=?, origin_uid=?, state='stored', "
            "gone_at=NULL WHERE folder_id=? AND uid=?",
            [(uidvalidity, uid, folder_id, target) for uidvalidity, uid, target in origins],
        )

    @_mapped("marking messages gone", _FOLDER)
    def mark_gone(self, folder_id: int, uids: Iterable[int], when: str) -> None:
        with self.tx():
            self._executemany(
                "UPDATE messages SET state='gone', gone_at=? "
                "WHERE folder_id=? AND uid=? AND gone_at IS NULL",
                [(when, folder_id, uid) for uid in uids],
            )

    @_mapped("keeping replaced messages", _FOLDER)
    def supersede(self, folder_id: int, uids: Iterable[int], when: str) -> None:
        """Messages whose source UID now holds other content: no origin any more, gone
        since ``when`` (unless already gone), state ``superseded``."""
        with self.tx():
            self._executemany(
                "UPDATE messages SET origin_uidvalidity=NULL, origin_uid=NULL, "
                "state='superseded', gone_at=coalesce(gone_at, ?) WHERE folder_id=? AND uid=?",
                [(when, folder_id, uid) for uid in uids],
            )

    @_mapped("removing messages from the index", _FOLDER)
    def forget(self, folder_id: int, uids: Iterable[int]) -> None:
        """Drop message rows (messages whose file is missing, before they are fetched
        again). The folder's recorded HIGHESTMODSEQ goes too: it vouched for content the
        archive no longer has, so the next sync lists the whole folder instead of skipping
        it as unchanged (should this sync of the folder not finish)."""
        with self.tx():
            self._delete_messages(folder_id, uids)
            self._execute("UPDATE folders SET source_modseq=NULL WHERE id=?", (folder_id,))

    def _delete_messages(self, folder_id: int, uids: Iterable[int]) -> None:
        self._executemany(
            "DELETE FROM messages WHERE folder_id=? AND uid=?", [(folder_id, uid) for uid in uids]
        )

    @_mapped("expunging messages", _FOLDER)
    def expunge(self, folder_id: int, uids: Iterable[int]) -> None:
        with self.tx():
            self._delete_messages(folder_id, uids)

    # --- rebuilding ----------------------------------------------------------------------

    @_mapped("rebuilding the archive index")
    def rebuild(self, folders: Sequence[RebuiltFolder]) -> None:
        """Fill an empty index with ``folders`` in one transaction; folders whose
        UIDVALIDITY is unknown get fresh ones above every known one."""
        known = [f.uidvalidity for f in folders if f.uidvalidity is not None]
        fresh = max(known, default=0)
        with self.tx():
            for folder in folders:
                uidvalidity = folder.uidvalidity
                if uidvalidity is None:
                    fresh += 1
                    uidvalidity = fresh
                cursor = self._execute(
                    "INSERT INTO folders (name, dirname, role, uidvalidity, uidnext) "
                    "VALUES (?,?,?,?,?)",
                    (folder.name, folder.dirname, folder.role, uidvalidity, folder.uidnext),
                )
                folder_id = cursor.lastrowid
                self._executemany(
                    "INSERT OR REPLACE INTO messages (folder_id, uid, sha256, size, message_id, "
                    "internal_date, flags, file, origin_uidvalidity, origin_uid, state, "
                    "gone_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_message_values(int(folder_id or 0), r) for r in folder.rows],
                )
            self._set_meta("next_uidvalidity", str(fresh + 1))
