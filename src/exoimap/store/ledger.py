"""The ledger: a :class:`~exoimap.store.base.SyncState` in its own SQLite file, for targets
that cannot remember where their messages came from (a mailbox a restore or a migration
writes to).

Per target folder it keeps the source counters and the gone mark; per target message (a UID
of one target UIDVALIDITY) the source message it came from. Re-running a restore, or
resuming one, therefore copies only what is not there yet.

Crash safety: before every append the engine announces it (:meth:`Ledger.will_append`:
the source messages with size, date and Message-ID, and the target folder's UIDNEXT), and
the announcement is committed durably before the APPEND is sent. If the process dies after
the server stored a message but before :meth:`Ledger.appended` recorded its UID, the next
:meth:`Ledger.messages` finds the announcement, looks at the target's messages from that
UIDNEXT on, and recognises the ones with the same Message-ID, size and date as the announced
source messages: they are recorded as copied, not appended a second time. A message without
a Message-ID is recognised by size and date alone, and only when exactly one candidate fits.
When the target's UIDVALIDITY changed, every UID recorded for it is void and forgotten.

Every SQLite call runs on one worker thread owned by the ledger (the event loop never waits
on a disk flush), and every :class:`sqlite3.Error` / :class:`OSError` becomes a
:class:`~exoimap.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from exoimap.errors import DiskFull, StoreError, disk_of
from exoimap.store.base import Folder, FolderSyncRecord, MessageInfo, MessageRef

__all__ = ["Ledger"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    name TEXT PRIMARY KEY,
    source_uidvalidity INTEGER,
    source_uidnext INTEGER,
    source_modseq INTEGER,
    gone_at TEXT,
    target_uidvalidity INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    folder TEXT NOT NULL,
    target_uid INTEGER NOT NULL,
    origin_uidvalidity INTEGER NOT NULL,
    origin_uid INTEGER NOT NULL,
    gone_at TEXT,
    PRIMARY KEY (folder, target_uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intents (
    folder TEXT NOT NULL,
    target_uidnext INTEGER NOT NULL,
    origin_uidvalidity INTEGER NOT NULL,
    origin_uid INTEGER NOT NULL,
    size INTEGER,
    internal_date INTEGER,
    message_id TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    detail TEXT NOT NULL
);
"""

#: An announced append: the target's UIDNEXT then, the source ref, and what recognises its
#: copy on the target (size, internal date as a POSIX timestamp, Message-ID).
_Intent = tuple[int, int, int, int | None, int | None, str | None]


def _iso(when: _dt.datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _epoch(when: _dt.datetime | None) -> int | None:
    return int(when.timestamp()) if when is not None else None


def _error(exc: sqlite3.Error | OSError, what: str, path: Path) -> StoreError:
    text = str(exc)
    if "full" in text or getattr(exc, "errno", None) == 28:  # ENOSPC
        return DiskFull(f"no space left on {disk_of(path)} while {what}; nothing was lost")
    return StoreError(f"the sync ledger failed while {what}: {text}")


class Ledger:
    """What a restore or a migration remembers about one source -> target pair."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exoimap-ledger")
        self._db: sqlite3.Connection | None = None
        self.run_id: int | None = None
        self._context: dict[str, object] = {}

    # --- lifetime ------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path) -> Ledger:
        """Open (or create, 0600 in a 0700 folder) the ledger at ``path``."""
        ledger = cls(path)
        await ledger._call("opening the ledger", ledger._connect)
        return ledger

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.touch(mode=0o600, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        """Close the file; idempotent."""
        if self._db is not None:
            await self._call("closing the ledger", self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _call(self, what: str, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, function, *args)
        except (sqlite3.Error, OSError) as exc:
            raise _error(exc, what, self.path) from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if db is None:
            raise StoreError("the sync ledger is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        if self._db is None:
            raise StoreError("the sync ledger is closed")
        return list(self._db.execute(sql, args).fetchall())

    # --- runs ----------------------------------------------------------------------------

    async def set_context(self, context: Mapping[str, object]) -> None:
        """What the caller wants kept with the next run's record (e.g. where a restore
        goes), for :meth:`interrupted_context` should that run not finish."""
        self._context = dict(context)

    async def interrupted_context(self) -> dict[str, object] | None:
        """The context of the last run, if it never finished (else ``None``)."""
        finished, context = await self._last_run()
        return context if finished in (None, "interrupted") else None

    async def last_context(self) -> dict[str, object] | None:
        """The context of the last run, finished or not (``None`` before the first)."""
        return (await self._last_run())[1]

    async def _last_run(self) -> tuple[object, dict[str, object] | None]:
        rows = await self._call(
            "reading the ledger",
            self._rows,
            "SELECT finished, detail FROM runs ORDER BY id DESC LIMIT 1",
        )
        if not rows:
            return None, None
        detail = json.loads(str(rows[0][1]))
        context = detail.get("context") if isinstance(detail, dict) else None
        return rows[0][0], context if isinstance(context, dict) else None

    async def begin_run(self, detail: Mapping[str, object]) -> list[str]:
        return await self._call("recording the run", self._begin_run, dict(detail))

    def _begin_run(self, detail: dict[str, object]) -> list[str]:
        notes = [
            f"the previous run (started {started}) was interrupted; this run goes on from "
            "what it stored"
            for (started,) in self._rows("SELECT started FROM runs WHERE finished IS NULL")
        ]
        now = _dt.datetime.now(_dt.UTC).isoformat()
        with self._tx() as db:
            db.execute("UPDATE runs SET finished='interrupted' WHERE finished IS NULL")
            cursor = db.execute(
                "INSERT INTO runs (started, detail) VALUES (?, ?)",
                (now, json.dumps({**detail, "context": self._context}, default=str)),
            )
            self.run_id = cursor.lastrowid
        return notes

    async def end_run(self, summary: Mapping[str, object]) -> None:
        await self._call("recording the run", self._end_run)

    def _end_run(self) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished=? WHERE id=?",
                (_dt.datetime.now(_dt.UTC).isoformat(), self.run_id),
            )

    # --- folders -------------------------------------------------------------------------

    async def folders(self) -> list[FolderSyncRecord]:
        rows = await self._call(
            "reading the ledger",
            self._rows,
            "SELECT name, source_uidvalidity, source_uidnext, source_modseq, gone_at "
            "FROM folders ORDER BY name",
        )
        return [
            FolderSyncRecord(
                str(name),
                uv if isinstance(uv, int) else None,
                nxt if isinstance(nxt, int) else None,
                mod if isinstance(mod, int) else None,
                _dt.datetime.fromisoformat(gone) if isinstance(gone, str) else None,
            )
            for name, uv, nxt, mod, gone in rows
        ]

    async def folder_synced(
        self, name: str, *, uidvalidity: int, uidnext: int, modseq: int | None
    ) -> None:
        await self._write(
            "recording a folder",
            "INSERT INTO folders (name, source_uidvalidity, source_uidnext, source_modseq) "
            "VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET source_uidvalidity=excluded."
            "source_uidvalidity, source_uidnext=excluded.source_uidnext, "
            "source_modseq=excluded.source_modseq, gone_at=NULL",
            [(name, uidvalidity, uidnext, modseq)],
        )

    async def folder_gone(self, name: str, when: _dt.datetime) -> None:
        await self._write(
            "recording a folder",
            "UPDATE folders SET gone_at=? WHERE name=? AND gone_at IS NULL",
            [(_iso(when), name)],
        )

    async def folder_renamed(self, old: str, new: str) -> None:
        await self._call("renaming a folder", self._rename, old, new)

    def _rename(self, old: str, new: str) -> None:
        with self._tx() as db:
            for table, column in (
                ("folders", "name"),
                ("messages", "folder"),
                ("intents", "folder"),
            ):
                db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 - constant names
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (new, len(old) + 1, old, len(old) + 1, old + "/"),
                )

    async def folder_deleted(self, name: str) -> None:
        await self._call("forgetting a folder", self._delete_folder, name)

    def _delete_folder(self, name: str) -> None:
        with self._tx() as db:
            for table, column in (
                ("folders", "name"),
                ("messages", "folder"),
                ("intents", "folder"),
            ):
                db.execute(f"DELETE FROM {table} WHERE {column}=?", (name,))  # noqa: S608

    # --- messages ------------------------------------------------------------------------

    async def messages(
        self, folder: Folder, *, detail: bool = False, size_and_date: bool = False
    ) -> list[MessageInfo]:
        """The target's listing with origins; also settles what an interrupted append
        stored, and forgets UIDs of an old UIDVALIDITY (so even a dry run may record that:
        never anything the target does not hold)."""
        name = folder.name
        pending = await self._call("reading the ledger", self._intents, name)
        listing = await folder.list_messages(
            detail=detail or bool(pending), size_and_date=size_and_date
        )
        uidvalidity = listing.state.uidvalidity
        known = await self._call("reading the ledger", self._known, name, uidvalidity)
        if pending:
            found = _recognise(listing.messages, known, pending)
            await self._call("recording appended messages", self._settle, name, found)
            known.update({uid: (ref, None) for uid, ref in found.items()})
        for message in listing.messages:
            entry = known.get(message.uid)
            if entry is not None:
                message.origin = entry[0]
                message.gone_at = entry[1]
        return listing.messages

    def _intents(self, folder: str) -> list[_Intent]:
        rows = self._rows(
            "SELECT target_uidnext, origin_uidvalidity, origin_uid, size, internal_date, "
            "message_id FROM intents WHERE folder=?",
            folder,
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def _known(
        self, folder: str, uidvalidity: int
    ) -> dict[int, tuple[MessageRef, _dt.datetime | None]]:
        recorded = self._rows("SELECT target_uidvalidity FROM folders WHERE name=?", folder)
        if recorded and recorded[0][0] not in (None, uidvalidity):
            # a new UIDVALIDITY voids every target UID recorded for this folder
            with self._tx() as db:
                db.execute("DELETE FROM messages WHERE folder=?", (folder,))
                db.execute("DELETE FROM intents WHERE folder=?", (folder,))
        with self._tx() as db:
            db.execute(
                "INSERT INTO folders (name, target_uidvalidity) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET target_uidvalidity=excluded.target_uidvalidity",
                (folder, uidvalidity),
            )
        rows = self._rows(
            "SELECT target_uid, origin_uidvalidity, origin_uid, gone_at FROM messages "
            "WHERE folder=?",
            folder,
        )
        return {
            int(uid): (  # type: ignore[call-overload]
                MessageRef(int(ouv), int(ouid)),  # type: ignore[call-overload]
                _dt.datetime.fromisoformat(gone) if isinstance(gone, str) else None,
            )
            for uid, ouv, ouid, gone in rows
        }

    def _settle(self, folder: str, found: Mapping[int, MessageRef]) -> None:
        """Record what interrupted appends stored, and drop the announcements."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO messages (folder, target_uid, origin_uidvalidity, "
                "origin_uid) VALUES (?,?,?,?)",
                [(folder, uid, ref.uidvalidity, ref.uid) for uid, ref in found.items()],
            )
            db.execute("DELETE FROM intents WHERE folder=?", (folder,))

    async def will_append(
        self, folder: str, uidnext: int, source_uidvalidity: int, messages: Sequence[MessageInfo]
    ) -> None:
        await self._write(
            "announcing an append",
            "INSERT INTO intents (folder, target_uidnext, origin_uidvalidity, origin_uid, size, "
            "internal_date, message_id) VALUES (?,?,?,?,?,?,?)",
            [
                (
                    folder,
                    uidnext,
                    source_uidvalidity,
                    m.uid,
                    m.size,
                    _epoch(m.internal_date),
                    m.message_id,
                )
                for m in messages
            ],
        )

    async def appended(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        await self._call("recording appended messages", self._appended, folder, dict(origins))

    def _appended(self, folder: str, origins: dict[int, MessageRef]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO messages (folder, target_uid, origin_uidvalidity, "
                "origin_uid) VALUES (?,?,?,?)",
                [(folder, uid, ref.uidvalidity, ref.uid) for uid, ref in origins.items()],
            )
            db.executemany(
                "DELETE FROM intents WHERE folder=? AND origin_uid=?",
                [(folder, ref.uid) for ref in origins.values()],
            )

    async def set_origins(self, folder: str, origins: Mapping[int, MessageRef]) -> None:
        await self._call("recording origins", self._appended, folder, dict(origins))

    async def mark_gone(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        await self._write(
            "marking messages gone",
            "UPDATE messages SET gone_at=? WHERE folder=? AND target_uid=? AND gone_at IS NULL",
            [(_iso(when), folder, uid) for uid in uids],
        )

    async def forget(self, folder: str, uids: Sequence[int]) -> None:
        await self._write(
            "forgetting messages",
            "DELETE FROM messages WHERE folder=? AND target_uid=?",
            [(folder, uid) for uid in uids],
        )

    async def content_replaced(self, folder: str, uids: Sequence[int], when: _dt.datetime) -> None:
        """The restored copies stay in the mailbox, no longer tied to an archive message."""
        await self.forget(folder, uids)

    async def content_lost(self, folder: str) -> list[int]:
        return []  # a mailbox's content cannot go missing behind the server's back

    async def content_unchanged(self, names: Sequence[str]) -> set[str]:
        return set()  # no way to tell cheaply: folders are always listed

    async def content_checked(self, names: Sequence[str]) -> None:
        return None

    async def _write(self, what: str, sql: str, rows: list[tuple[object, ...]]) -> None:
        await self._call(what, self._executemany, sql, rows)

    def _executemany(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        with self._tx() as db:
            db.executemany(sql, rows)


def _recognise(
    listed: Sequence[MessageInfo],
    known: Mapping[int, object],
    pending: Sequence[_Intent],
) -> dict[int, MessageRef]:
    """Target UIDs an interrupted append stored: unrecorded messages from the announced
    UIDNEXT on whose Message-ID, size and date match an announced source message (without
    a Message-ID only when exactly one candidate fits)."""
    start = min(intent[0] for intent in pending)
    fresh = [m for m in listed if m.uid >= start and m.uid not in known]
    found: dict[int, MessageRef] = {}
    for uidnext, origin_uv, origin_uid, size, date, message_id in pending:
        candidates = [
            m
            for m in fresh
            if m.uid >= uidnext
            and m.uid not in found
            and m.size == size
            and m.message_id == message_id
            and _epoch(m.internal_date) == date
        ]
        if len(candidates) == 1 or (candidates and message_id is not None):
            found[candidates[0].uid] = MessageRef(origin_uv, origin_uid)
    return found
