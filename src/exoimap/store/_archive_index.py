"""The archive's SQLite index (WAL, synchronous=FULL): folders and messages.

Only :mod:`exoimap.store.archive` uses this. Every write happens inside :meth:`Index.tx`
(one transaction per batch, never per message). sqlite3 errors are mapped to store errors
by :func:`map_sqlite_error`.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from exoimap.errors import DiskFull, StoreError, StoreLocked
from exoimap.store.base import MessageInfo, MessageRef

__all__ = ["FolderRow", "Index", "MessageRow", "map_sqlite_error"]

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


def map_sqlite_error(exc: sqlite3.Error, what: str) -> StoreError:
    text = str(exc)
    if "disk is full" in text or ("disk I/O" in text and "full" in text):
        return DiskFull(
            f"no space left on the device while {what}; everything stored before is intact. "
            "Free some space and run again."
        )
    if "locked" in text or "busy" in text:
        return StoreLocked(f"the archive index is locked by another process while {what}")
    return StoreError(f"the archive index failed while {what}: {text}")


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


def flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


def _flags(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


_MSG_COLUMNS = (
    "uid, sha256, size, message_id, internal_date, flags, file, "
    "origin_uidvalidity, origin_uid, state, gone_at"
)


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


class Index:
    """A connection to the archive index."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self._db.execute("PRAGMA busy_timeout=2000")

    def check_and_init(self, *, quick_check: bool = True) -> None:
        """Verify the file is a sound index (raises sqlite3.DatabaseError) and create tables.

        ``quick_check=False`` skips the integrity check, for a file known to be the one a
        clean session closed (see :func:`index_stamp`)."""
        if quick_check:
            result = self._db.execute("PRAGMA quick_check").fetchone()
            if result is None or result[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result[0] if result else 'no answer'}")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version != 0 and version not in _MIGRATIONS:
            raise StoreError(
                f"{self.path} has index schema {version}; this exoimap knows {SCHEMA_VERSION}"
            )
        if version == 0:
            with self.tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return
        try:
            with self.tx():
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            # not damage (a full disk, a read-only file): say so, never rebuild over it
            raise map_sqlite_error(exc, f"upgrading the index to schema {SCHEMA_VERSION}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction; committed (durably) on exit, rolled back on error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta ------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- folders ---------------------------------------------------------------------

    def folders(self) -> list[FolderRow]:
        rows = self._db.execute(
            "SELECT id, name, dirname, role, uidvalidity, uidnext, source_uidvalidity, "
            "source_uidnext, source_modseq, gone_at, files_stamp FROM folders ORDER BY name"
        ).fetchall()
        return [FolderRow(*row) for row in rows]

    def folder(self, name: str) -> FolderRow | None:
        if name.upper() == "INBOX":
            name = "INBOX"
        for row in self.folders():
            if row.name == name:
                return row
        return None

    def folder_by_id(self, folder_id: int) -> FolderRow:
        for row in self.folders():
            if row.id == folder_id:
                return row
        raise StoreError(f"folder id {folder_id} vanished from the index")

    def insert_folder(
        self, db: sqlite3.Connection, name: str, dirname: str, role: str | None, uidvalidity: int
    ) -> None:
        db.execute(
            "INSERT INTO folders (name, dirname, role, uidvalidity, uidnext) VALUES (?,?,?,?,1)",
            (name, dirname, role, uidvalidity),
        )

    # --- messages --------------------------------------------------------------------

    def messages(self, folder_id: int, uids: Sequence[int] | None = None) -> list[MessageRow]:
        if uids is None:
            rows = self._db.execute(
                f"SELECT {_MSG_COLUMNS} FROM messages WHERE folder_id=? ORDER BY uid",  # noqa: S608 - constant columns
                (folder_id,),
            ).fetchall()
        else:
            rows = []
            wanted = sorted(set(uids))
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                rows += self._db.execute(
                    f"SELECT {_MSG_COLUMNS} FROM messages WHERE folder_id=? "  # noqa: S608 - placeholders only
                    f"AND uid IN ({marks}) ORDER BY uid",
                    (folder_id, *part),
                ).fetchall()
        return [
            MessageRow(
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
            for r in rows
        ]

    def infos(self, folder_id: int, *, detail: bool = True) -> list[MessageInfo]:
        """Every message of a folder as the Store protocol shows it (the no-change resync
        reads this for every message, so it builds the objects directly; without
        ``detail`` only UID, flags, origin and gone are filled in)."""
        if not detail:
            return self._lean_infos(folder_id)
        rows = self._db.execute(
            "SELECT uid, flags, size, internal_date, message_id, origin_uidvalidity, "
            "origin_uid, gone_at, sha256 FROM messages WHERE folder_id=? ORDER BY uid",
            (folder_id,),
        )
        parse = _dt.datetime.fromisoformat
        flag_sets: dict[str, frozenset[str]] = {}
        out = []
        for uid, flags, size, date, message_id, origin_uv, origin_uid, gone_at, sha in rows:
            flag_set = flag_sets.get(flags)
            if flag_set is None:
                flag_set = flag_sets[flags] = _flags(flags)
            out.append(
                MessageInfo(
                    uid,
                    flag_set,
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

    def _lean_infos(self, folder_id: int) -> list[MessageInfo]:
        rows = self._db.execute(
            "SELECT uid, flags, origin_uidvalidity, origin_uid, gone_at FROM messages "
            "WHERE folder_id=? ORDER BY uid",
            (folder_id,),
        )
        parse = _dt.datetime.fromisoformat
        flag_sets: dict[str, frozenset[str]] = {}
        out = []
        for uid, flags, origin_uv, origin_uid, gone_at in rows:
            flag_set = flag_sets.get(flags)
            if flag_set is None:
                flag_set = flag_sets[flags] = _flags(flags)
            origin = None
            if origin_uid is not None:
                origin = MessageRef(origin_uv, origin_uid)
            info = MessageInfo(uid, flag_set, origin=origin)
            if gone_at:
                info.gone_at = parse(gone_at)
            out.append(info)
        return out

    def files(self, folder_id: int) -> list[tuple[int, str]]:
        """``(uid, file base)`` of every message in a folder."""
        cursor = self._db.execute("SELECT uid, file FROM messages WHERE folder_id=?", (folder_id,))
        rows: list[tuple[int, str]] = cursor.fetchall()
        return rows

    def count(self, folder_id: int) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM messages WHERE folder_id=?", (folder_id,)
        ).fetchone()
        return int(row[0])

    def insert_messages(
        self, db: sqlite3.Connection, folder_id: int, rows: Iterable[MessageRow]
    ) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO messages (folder_id, uid, sha256, size, message_id, "
            "internal_date, flags, file, origin_uidvalidity, origin_uid, state, gone_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    folder_id,
                    r.uid,
                    r.sha256,
                    r.size,
                    r.message_id,
                    r.internal_date,
                    flags_text(r.flags),
                    r.file,
                    r.origin_uidvalidity,
                    r.origin_uid,
                    r.state,
                    r.gone_at,
                )
                for r in rows
            ],
        )

    def bump_uidnext(self, db: sqlite3.Connection, folder_id: int, uidnext: int) -> None:
        db.execute("UPDATE folders SET uidnext=max(uidnext, ?) WHERE id=?", (uidnext, folder_id))
