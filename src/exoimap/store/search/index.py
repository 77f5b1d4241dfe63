"""The search index: one SQLite file (WAL) for every archive of an installation, with an
FTS5 table over each message's headers and text and a table of its metadata.

This module holds all of the index's SQL and is where ``sqlite3`` errors become store
errors. A search's scope (the mailboxes a person may search, as address patterns) is
part of the SQL of the query itself: nothing outside it is ever read into Python.
Readers see one consistent snapshot per call (a read transaction), so a sync writing the
index at the same time never shows them half a batch.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from exoimap.config import Paths
from exoimap.errors import StoreError, StoreLocked
from exoimap.private_files import private_dir
from exoimap.store.search.documents import Document
from exoimap.store.search.query import Query

__all__ = [
    "FolderMark",
    "Hit",
    "Reach",
    "Results",
    "SearchIndex",
    "SearchScope",
    "index_path",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    account TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (account, folder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailboxes (id INTEGER PRIMARY KEY, address TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    uid INTEGER NOT NULL,
    date INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    has_attachment INTEGER NOT NULL,
    UNIQUE (account, folder, uid)
);
CREATE INDEX IF NOT EXISTS docs_by_date ON docs (mailbox, date);
CREATE INDEX IF NOT EXISTS docs_by_folder
    ON docs (mailbox, folder COLLATE NOCASE, date, has_attachment);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_text USING fts5(
    sender, recipients, copied, subject, body,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '3'
);
"""
_MMAP_BYTES = 1 << 30
# A message's id: its date (seconds), its mailbox's number and a tie-breaker, so that ids
# sort newest last and a text match knows its mailbox and date without reading the row.
_SEQ_BITS = 8
_MAILBOX_BITS = 14
_DATE_SHIFT = _SEQ_BITS + _MAILBOX_BITS
_MAILBOX_OF = f"((t.rowid >> {_SEQ_BITS}) & {(1 << _MAILBOX_BITS) - 1})"
_HEADER_COLUMNS = "{sender recipients copied subject}"
_HIT_COLUMNS = (
    "d.account, d.mailbox, d.folder, d.uid, d.date, d.size, d.sender, d.subject, d.has_attachment"
)


def index_path(paths: Paths) -> Path:
    """Where an installation's search index lives."""
    return paths.search_index


def _store_error(exc: sqlite3.Error, what: str) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreLocked(f"the search index is busy (a sync is writing it) while {what}")
    return StoreError(f"the search index failed while {what}: {text}")


@dataclass(frozen=True, slots=True)
class FolderMark:
    """How far a folder is indexed: the archive folder's counters when it was."""

    uidvalidity: int
    uidnext: int
    messages: int


@dataclass(frozen=True, slots=True)
class Hit:
    account: str
    mailbox: str
    folder: str
    uid: int
    date: _dt.datetime
    size: int
    sender: str
    subject: str
    has_attachment: bool


@dataclass(frozen=True, slots=True)
class Results:
    total: int
    hits: list[Hit]


@dataclass(frozen=True, slots=True)
class Reach:
    """Mailboxes (address glob patterns, ``*`` ``?`` ``[...]``, matched without regard to
    case) and, optionally, a window of archive dates: from ``after`` (included) to
    ``before`` (excluded)."""

    patterns: tuple[str, ...]
    after: _dt.datetime | None = None
    before: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchScope:
    """What a person may search: in ``content`` by everything including the message text,
    in ``metadata`` by headers only. Each is a list of :class:`Reach`, or of bare address
    patterns (a reach without a date window)."""

    content: tuple[str | Reach, ...] = ()
    metadata: tuple[str | Reach, ...] = ()


def _reaches(items: Sequence[str | Reach]) -> list[Reach]:
    """``items`` as reaches: bare patterns share one reach without a date window."""
    bare = tuple(i for i in items if isinstance(i, str))
    reaches = [i for i in items if isinstance(i, Reach) and i.patterns]
    return ([Reach(bare)] if bare else []) + reaches


def _sqlite_glob(pattern: str) -> str:
    # fnmatch's negated set is [!...], SQLite's GLOB wants [^...]
    return pattern.casefold().replace("[!", "[^")


def _phrase(text: str) -> str:
    """One FTS5 string (a word or phrase, never syntax); ``*`` at the end: a prefix."""
    prefix = text.endswith("*")
    core = text.rstrip("*").replace('"', '""')
    return f'"{core}"' + ("*" if prefix and core else "")


def _match(query: Query, *, headers_only: bool) -> str:
    """The FTS5 expression of ``query``'s text parts ("" when it has none)."""
    parts = [
        f"{_HEADER_COLUMNS} : {_phrase(w)}" if headers_only else _phrase(w) for w in query.words
    ]
    for column, values in (
        ("sender", query.senders),
        ("recipients", query.recipients),
        ("copied", query.copied),
        ("subject", query.subjects),
    ):
        parts.extend(f"{column} : {_phrase(v)}" for v in values)
    return " AND ".join(parts)


def _mailbox_ids(patterns: Sequence[str]) -> tuple[str, list[object]]:
    globs = " OR ".join("address GLOB ?" for _ in patterns)
    return f"(SELECT id FROM mailboxes WHERE {globs})", [_sqlite_glob(p) for p in patterns]  # noqa: S608


def _addresses(patterns: Sequence[str]) -> tuple[str, list[object]]:
    globs = " OR ".join("address GLOB ?" for _ in patterns)
    return f"(SELECT address FROM mailboxes WHERE {globs})", [_sqlite_glob(p) for p in patterns]  # noqa: S608


def _inside(reaches: Sequence[Reach], *, by_id: bool) -> tuple[str, list[object]]:
    """One SQL condition: the message is inside one of ``reaches`` (its mailbox and date
    read from its id when ``by_id``, else from its row ``d``)."""
    terms: list[str] = []
    params: list[object] = []
    for reach in reaches:
        if by_id:
            mailboxes, term_params = _mailbox_ids(reach.patterns)
            conditions = [f"{_MAILBOX_OF} IN {mailboxes}"]
        else:
            mailboxes, term_params = _addresses(reach.patterns)
            conditions = [f"d.mailbox IN {mailboxes}"]
        for bound, operator in ((reach.after, ">="), (reach.before, "<")):
            if bound is not None:
                conditions.append(f"t.rowid {operator} ?" if by_id else f"d.date {operator} ?")
                term_params.append(_first_id(bound) if by_id else int(bound.timestamp()))
        terms.append("(" + " AND ".join(conditions) + ")")
        params += term_params
    return "(" + (" OR ".join(terms) or "0") + ")", params


def _first_id(when: _dt.datetime) -> int:
    return max(int(when.timestamp()), 0) << _DATE_SHIFT


def _filters(query: Query, *, by_id: bool) -> tuple[list[str], list[object]]:
    """The SQL conditions of the folder, date and attachment parts (dates through the
    ids, which begin with the date, when ``by_id``)."""
    sql: list[str] = []
    params: list[object] = []
    if query.folders:
        sql.append("(" + " OR ".join("d.folder = ? COLLATE NOCASE" for _ in query.folders) + ")")
        params.extend(query.folders)
    if query.before is not None:
        sql.append("t.rowid < ?" if by_id else "d.date < ?")
        params.append(_first_id(query.before) if by_id else int(query.before.timestamp()))
    if query.after is not None:
        sql.append("t.rowid >= ?" if by_id else "d.date >= ?")
        params.append(_first_id(query.after) if by_id else int(query.after.timestamp()))
    if query.has_attachment:
        sql.append("d.has_attachment = 1")
    return sql, params


def _text_branch(
    query: Query, reaches: Sequence[Reach], excluded: Sequence[Reach], *, headers_only: bool
) -> tuple[str, list[object]]:
    """The ids of the messages inside ``reaches`` (and outside ``excluded``) that the
    text of ``query`` matches: the mailbox and date are read from each match's id, so only
    the folder and attachment filters need the message's row."""
    inside, params = _inside(reaches, by_id=True)
    conditions = ["docs_text MATCH ?", inside]
    params = [_match(query, headers_only=headers_only), *params]
    if excluded:
        outside, outside_params = _inside(excluded, by_id=True)
        conditions.append(f"NOT {outside}")
        params += outside_params
    filters, filter_params = _filters(query, by_id=True)
    join = " JOIN docs d ON d.id = t.rowid" if query.folders or query.has_attachment else ""
    where = " AND ".join(conditions + filters)
    return f"SELECT t.rowid AS id FROM docs_text t{join} WHERE {where}", params + filter_params  # noqa: S608


def _scoped(query: Query, scope: SearchScope) -> tuple[str, list[object]]:
    """A SELECT of the ids of what ``query`` finds inside ``scope``: the reaches open to
    content by the whole query, the others open to metadata by headers only."""
    content, metadata = _reaches(scope.content), _reaches(scope.metadata)
    if not query.has_text:  # folder, dates, attachment: the metadata of every mailbox
        if not content and not metadata:
            return "SELECT 0 AS id WHERE 0", []
        inside, params = _inside([*content, *metadata], by_id=False)
        filters, filter_params = _filters(query, by_id=False)
        where = " AND ".join([inside, *filters])
        return f"SELECT d.id AS id FROM docs d WHERE {where}", params + filter_params  # noqa: S608
    branches: list[str] = []
    params = []
    if content:
        sql, branch_params = _text_branch(query, content, (), headers_only=False)
        branches.append(sql)
        params += branch_params
    if metadata:
        sql, branch_params = _text_branch(query, metadata, content, headers_only=True)
        branches.append(sql)
        params += branch_params
    if not branches:
        return "SELECT 0 AS id WHERE 0", []
    return " UNION ALL ".join(branches), params


def _hit(row: sqlite3.Row) -> Hit:
    return Hit(
        account=row[0],
        mailbox=row[1],
        folder=row[2],
        uid=row[3],
        date=_dt.datetime.fromtimestamp(row[4], _dt.UTC),
        size=row[5],
        sender=row[6],
        subject=row[7],
        has_attachment=bool(row[8]),
    )


class SearchIndex:
    """The index file at ``path`` (made 0600 in a 0700 folder: it holds mail text)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self, what: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            if write and not self.path.exists():
                private_dir(self.path.parent)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            if not self.path.exists():
                raise StoreError(f"there is no search index at {self.path} yet (run a sync)")
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise _store_error(exc, what) from None
        except OSError as exc:
            raise StoreError(f"the search index {self.path} cannot be opened: {exc}") from None
        try:
            # map the file: each call's connection starts with an empty page cache, and
            # reading through the map costs no copy (the OS keeps the pages between calls)
            connection.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            if write:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield connection
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _store_error(exc, what) from None
        finally:
            connection.close()

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def create(self) -> None:
        """Make the (empty) index if there is none: from then on every sync keeps it
        current (the console does this when it starts)."""
        with self._connect("creating the index", write=True):
            pass

    # --- writing (the sync's catch-up) -------------------------------------------------

    def marks(self, account: str) -> dict[str, FolderMark]:
        """How far each of ``account``'s folders is indexed."""
        if not self.exists:
            return {}
        with self._connect("reading the indexed folders") as db:
            rows = db.execute(
                "SELECT folder, uidvalidity, uidnext, messages FROM folders WHERE account = ?",
                (account,),
            ).fetchall()
        return {r[0]: FolderMark(r[1], r[2], r[3]) for r in rows}

    def uids(self, account: str, folder: str) -> set[int]:
        if not self.exists:
            return set()
        with self._connect("reading the indexed messages") as db:
            rows = db.execute(
                "SELECT uid FROM docs WHERE account = ? AND folder = ?", (account, folder)
            ).fetchall()
        return {r[0] for r in rows}

    def update_folder(
        self,
        account: str,
        mailbox: str,
        folder: str,
        *,
        add: Sequence[Document] = (),
        remove: Sequence[int] = (),
        mark: FolderMark | None = None,
    ) -> None:
        """In one transaction: index ``add``, forget the UIDs ``remove``, and (with
        ``mark``) record that the folder is indexed up to the archive's ``mark``."""
        with self._connect(f"indexing {folder!r} for search", write=True) as db:
            # a message indexed again (a catch-up cut short) replaces its old entry
            self._forget(db, account, folder, [*remove, *(doc.uid for doc in add)])
            number = self._mailbox_number(db, mailbox.casefold())
            for doc in add:
                doc_id = self._free_id(db, doc.date, number)
                db.execute(
                    "INSERT INTO docs (id, account, mailbox, folder, uid, date, size,"
                    " sender, subject, has_attachment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc_id,
                        account,
                        mailbox.casefold(),
                        folder,
                        doc.uid,
                        int(doc.date.timestamp()),
                        doc.size,
                        doc.sender,
                        doc.subject,
                        int(doc.has_attachment),
                    ),
                )
                db.execute(
                    "INSERT INTO docs_text (rowid, sender, recipients, copied, subject, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (doc_id, doc.sender, doc.recipients, doc.copied, doc.subject, doc.body),
                )
            if mark is not None:
                db.execute(
                    "INSERT OR REPLACE INTO folders VALUES (?, ?, ?, ?, ?)",
                    (account, folder, mark.uidvalidity, mark.uidnext, mark.messages),
                )

    @staticmethod
    def _mailbox_number(db: sqlite3.Connection, address: str) -> int:
        db.execute("INSERT OR IGNORE INTO mailboxes (address) VALUES (?)", (address,))
        number = int(
            db.execute("SELECT id FROM mailboxes WHERE address = ?", (address,)).fetchone()[0]
        )
        if number >= 1 << _MAILBOX_BITS:
            raise StoreError(f"the search index holds at most {(1 << _MAILBOX_BITS) - 1} mailboxes")
        return number

    @staticmethod
    def _free_id(db: sqlite3.Connection, when: _dt.datetime, number: int) -> int:
        """The first free id of a message of mailbox ``number`` dated ``when`` (at most
        256 share a second; more move on to the next second)."""
        first = _first_id(when) | (number << _SEQ_BITS)
        while True:
            last = first | ((1 << _SEQ_BITS) - 1)
            taken = db.execute(
                "SELECT max(id) FROM docs WHERE id BETWEEN ? AND ?", (first, last)
            ).fetchone()[0]
            if taken is None:
                return first
            if taken < last:
                return int(taken) + 1
            first += 1 << _DATE_SHIFT

    @staticmethod
    def _forget(db: sqlite3.Connection, account: str, folder: str, uids: Sequence[int]) -> None:
        for start in range(0, len(uids), 500):
            chunk = list(uids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            where = f"account = ? AND folder = ? AND uid IN ({marks})"
            db.execute(
                f"DELETE FROM docs_text WHERE rowid IN (SELECT id FROM docs WHERE {where})",  # noqa: S608
                (account, folder, *chunk),
            )
            db.execute(f"DELETE FROM docs WHERE {where}", (account, folder, *chunk))  # noqa: S608

    def drop_folder(self, account: str, folder: str) -> None:
        """Forget a folder the archive no longer has (or that was made anew)."""
        with self._connect(f"forgetting {folder!r} in the search index", write=True) as db:
            where = "account = ? AND folder = ?"
            db.execute(
                f"DELETE FROM docs_text WHERE rowid IN (SELECT id FROM docs WHERE {where})",  # noqa: S608
                (account, folder),
            )
            db.execute(f"DELETE FROM docs WHERE {where}", (account, folder))  # noqa: S608
            db.execute(f"DELETE FROM folders WHERE {where}", (account, folder))  # noqa: S608

    # --- reading (the console) ---------------------------------------------------------

    def search(self, query: Query, scope: SearchScope, *, page: int, size: int) -> Results:
        """Page ``page`` (from 1) of ``size`` hits, newest first, and how many there are."""
        if not self.exists:
            return Results(0, [])
        found, params = _scoped(query, scope)
        with self._connect("searching") as db:
            total = db.execute(f"SELECT count(*) FROM ({found})", params).fetchone()[0]  # noqa: S608
            ids = [
                row[0]
                for row in db.execute(
                    f"SELECT id FROM ({found}) ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
                    [*params, size, (page - 1) * size],
                )
            ]
            marks = ",".join("?" * len(ids))
            rows = db.execute(
                f"SELECT {_HIT_COLUMNS}, d.id FROM docs d WHERE d.id IN ({marks})",  # noqa: S608
                ids,
            ).fetchall()
        by_id = {row[-1]: _hit(row) for row in rows}
        return Results(total, [by_id[i] for i in ids if i in by_id])

    def reachable(self, account: str, folder: str, uid: int, reaches: Sequence[Reach]) -> bool:
        """Whether message ``uid`` of ``account``'s ``folder`` is indexed inside one of
        ``reaches``: the check by id of every request for one message."""
        if not reaches or not self.exists:
            return False
        inside, params = _inside(reaches, by_id=False)
        with self._connect("checking a message's scope") as db:
            found = db.execute(
                "SELECT 1 FROM docs d WHERE d.account = ? AND d.folder = ? AND d.uid = ?"  # noqa: S608
                f" AND {inside}",
                [account, folder, uid, *params],
            ).fetchone()
        return found is not None

    def folder_counts(self, account: str, within: Sequence[Reach]) -> dict[str, int]:
        """How many indexed messages of each of ``account``'s folders lie inside ``within``."""
        if not self.exists:
            return {}
        inside, params = _inside(within, by_id=False)
        with self._connect("counting a mailbox's messages") as db:
            rows = db.execute(
                f"SELECT d.folder, count(*) FROM docs d WHERE d.account = ? AND {inside}"  # noqa: S608
                " GROUP BY d.folder",
                [account, *params],
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    def folder_page(
        self,
        account: str,
        folder: str,
        mark: FolderMark | None,
        *,
        page: int,
        size: int,
        within: Sequence[Reach] | None = None,
    ) -> Results | None:
        """A folder's messages, highest UID first, when the index holds the folder as the
        archive has it now (``mark``; None: as it was last indexed); None when it does not
        (not indexed, or behind). ``within``: only the messages inside these reaches."""
        if not self.exists:
            return None
        inside, params = _inside(within, by_id=False) if within is not None else ("1", [])
        with self._connect("listing a folder") as db:
            found = db.execute(
                "SELECT uidvalidity, uidnext, messages FROM folders"
                " WHERE account = ? AND folder = ?",
                (account, folder),
            ).fetchone()
            if found is None or (mark is not None and FolderMark(*found) != mark):
                return None
            where = f"d.account = ? AND d.folder = ? AND {inside}"
            total = FolderMark(*found).messages
            if within is not None:
                total = db.execute(
                    f"SELECT count(*) FROM docs d WHERE {where}",  # noqa: S608
                    [account, folder, *params],
                ).fetchone()[0]
            rows = db.execute(
                f"SELECT {_HIT_COLUMNS} FROM docs d WHERE {where}"  # noqa: S608
                " ORDER BY d.uid DESC LIMIT ? OFFSET ?",
                [account, folder, *params, size, (page - 1) * size],
            ).fetchall()
        return Results(total, [_hit(r) for r in rows])
