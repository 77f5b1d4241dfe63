"""Archive crash recovery: journal roll-forward, index rebuild, file verification.

Each journaled operation (append, flags, expunge, rename, delete) has one ``apply_*``
function. The normal path calls it right after writing the journal record; recovery calls
the same function again for every record left behind, so every step is idempotent: a step
already done is noticed and skipped.

A damaged index (not a database, or failing ``PRAGMA quick_check``) is moved to
``damaged/`` and a new one is rebuilt from the message files: folder names from directory
names, archive UIDVALIDITY and UIDs from file names, flags from the ``:2,`` letters, SHA-256,
size and Message-ID from the bytes. What the files cannot tell is lost from the index, and
the notes say so: keywords other than ``$Forwarded``, the time zone of internal dates, and
the origin of each message (the next backup matches the messages to the source again by
Message-ID and size, so nothing is downloaded twice).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exoimap.errors import StoreError
from exoimap.protocol.headers import parse_message_id
from exoimap.store._archive_index import (
    Index,
    IndexStamp,
    MessageRow,
    flags_text,
    index_stamp,
    map_sqlite_error,
)
from exoimap.store._maildir import (
    decode_folder_dir,
    flags_from_letters,
    letters_for,
    parse_base,
    split_name,
)

if TYPE_CHECKING:
    from exoimap.store.archive import ArchiveStore

__all__ = ["FileReport", "open_index", "replay_journals", "verify_files"]

_NOTES_KEY = "_recovery_notes"


def row_to_json(row: MessageRow, tmp_name: str, final_name: str) -> dict[str, Any]:
    return {
        "uid": row.uid,
        "sha256": row.sha256,
        "size": row.size,
        "message_id": row.message_id,
        "internal_date": row.internal_date,
        "flags": sorted(row.flags),
        "file": row.file,
        "origin": [row.origin_uidvalidity, row.origin_uid],
        "tmp": tmp_name,
        "final": final_name,
    }


def _row_from_json(entry: dict[str, Any]) -> MessageRow:
    return MessageRow(
        uid=entry["uid"],
        sha256=entry["sha256"],
        size=entry["size"],
        message_id=entry["message_id"],
        internal_date=entry["internal_date"],
        flags=frozenset(entry["flags"]),
        file=entry["file"],
        origin_uidvalidity=entry["origin"][0],
        origin_uid=entry["origin"][1],
        state="stored",
        gone_at=None,
    )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _find(directory: Path, base: str) -> Path | None:
    for sub in ("cur", "new"):
        path = directory / sub
        if not path.is_dir():
            continue
        for entry in os.scandir(path):
            if split_name(entry.name)[0] == base:
                return Path(entry.path)
    return None


# --- journaled operations ------------------------------------------------------------------


def place_live(store: ArchiveStore, record: dict[str, Any]) -> None:
    """The normal path, right after the journal was written: every file of the batch is
    in ``tmp/`` and flushed; rename them into ``cur/`` and flush the directory. Touches no
    index, so it runs on a worker thread."""
    directory = store.maildir / record["dir"]
    tmp_dir, cur_dir = str(directory / "tmp"), str(directory / "cur")
    entries = record["entries"]
    half = len(entries) // 2
    for number, entry in enumerate(entries):
        os.rename(f"{tmp_dir}/{entry['tmp']}", f"{cur_dir}/{entry['final']}")
        if number == half:
            store.crash_point("append.renamed_some")
    store.sync_dir(directory / "cur")
    store.crash_point("append.renamed")


def apply_append(store: ArchiveStore, record: dict[str, Any]) -> list[str]:
    """Recovery of an append record: adopt every file that got to ``tmp/`` or ``cur/``
    (after checking its SHA-256) and commit its row (idempotent)."""
    index = store.index
    folder_id = record["folder_id"]
    directory = store.maildir / record["dir"]
    cur = directory / "cur"
    entries = record["entries"]
    rows: list[MessageRow] = []
    notes: list[str] = []
    known = {r.uid for r in index.messages(folder_id, [e["uid"] for e in entries])}
    for entry in entries:
        if entry["uid"] in known:
            continue
        final = cur / entry["final"]
        tmp = directory / "tmp" / entry["tmp"]
        if not final.exists():
            if not tmp.exists():
                notes.append(f"message file {entry['final']} never reached the disk; refetch")
                continue
            if _sha256_of(tmp) != entry["sha256"]:
                notes.append(f"message file {entry['tmp']} is damaged; it is fetched again")
                continue
            os.rename(tmp, final)
        elif _sha256_of(final) != entry["sha256"]:
            notes.append(f"message file {entry['final']} is damaged; it is fetched again")
            os.rename(final, store.root / "damaged" / entry["final"])
            continue
        rows.append(_row_from_json(entry))
    store.sync_dir(cur)
    commit_append(store, record, rows)
    return notes


def commit_append(store: ArchiveStore, record: dict[str, Any], rows: list[MessageRow]) -> None:
    """Commit a batch's rows and adoptions in one index transaction."""
    index = store.index
    folder_id = record["folder_id"]
    adopts = record.get("adopt", [])
    adopted = {r.uid: r for r in index.messages(folder_id, [a[0] for a in adopts])}
    flag_changes: list[list[Any]] = []
    for uid, _uidvalidity, _origin_uid, flags in adopts:
        existing = adopted.get(uid)
        if existing is not None and frozenset(flags) != existing.flags:
            flag_changes.append([uid, flags, existing.file, letters_for(flags)])
    try:
        with index.tx() as db:
            index.insert_messages(db, folder_id, rows)
            index.bump_uidnext(db, folder_id, record["uidnext"])
            db.executemany(
                "UPDATE messages SET origin_uidvalidity=?, origin_uid=?, state='stored', "
                "gone_at=NULL WHERE folder_id=? AND uid=?",
                [(a[1], a[2], folder_id, a[0]) for a in adopts],
            )
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "committing a batch of messages") from exc
    store.crash_point("append.committed")
    if flag_changes:
        apply_flags(store, folder_id, flag_changes)


def apply_flags(store: ArchiveStore, folder_id: int, changes: list[list[Any]]) -> None:
    """Rename files to their new flag letters, then commit the flags (idempotent)."""
    index = store.index
    directory = store.maildir / index.folder_by_id(folder_id).dirname
    cur = directory / "cur"
    for _uid, _flags, base, letters in changes:
        target = cur / f"{base}:2,{letters}"
        if target.exists():
            continue
        current = _find(directory, base)
        if current is not None:
            os.rename(current, target)
    store.crash_point("flags.renamed")
    try:
        with index.tx() as db:
            db.executemany(
                "UPDATE messages SET flags=? WHERE folder_id=? AND uid=?",
                [(flags_text(flags), folder_id, uid) for uid, flags, _b, _l in changes],
            )
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "saving flag changes") from exc


def apply_expunge(store: ArchiveStore, folder_id: int, entries: list[list[Any]]) -> None:
    index = store.index
    try:
        with index.tx() as db:
            db.executemany(
                "DELETE FROM messages WHERE folder_id=? AND uid=?",
                [(folder_id, uid) for uid, _file in entries],
            )
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "expunging messages") from exc
    store.crash_point("expunge.committed")
    directory = store.maildir / index.folder_by_id(folder_id).dirname
    for _uid, base in entries:
        path = _find(directory, base)
        if path is not None:
            path.unlink()


def apply_rename(store: ArchiveStore, moves: list[list[Any]]) -> None:
    index = store.index
    for _folder_id, _new_name, old_dir, new_dir in moves:
        old_path, new_path = store.maildir / old_dir, store.maildir / new_dir
        if old_path.exists() and not new_path.exists():
            os.rename(old_path, new_path)
    store.sync_dir(store.maildir)
    store.crash_point("rename.moved")
    try:
        with index.tx() as db:
            # two steps so that swapping names never trips the UNIQUE constraints
            db.executemany(
                "UPDATE folders SET name=?, dirname=? WHERE id=?",
                [(f"\x00{m[0]}", f"\x00{m[0]}", m[0]) for m in moves],
            )
            db.executemany(
                "UPDATE folders SET name=?, dirname=? WHERE id=?",
                [(m[1], m[3], m[0]) for m in moves],
            )
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "renaming a folder") from exc


def apply_delete(store: ArchiveStore, folder_id: int, dirname: str) -> None:
    try:
        with store.index.tx() as db:
            db.execute("DELETE FROM messages WHERE folder_id=?", (folder_id,))
            db.execute("DELETE FROM folders WHERE id=?", (folder_id,))
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "deleting a folder") from exc
    store.crash_point("delete.committed")
    path = store.maildir / dirname
    if dirname and path.exists():
        shutil.rmtree(path)


def replay_journals(store: ArchiveStore) -> list[str]:
    """Roll forward every journal record left by an interrupted process."""
    notes: list[str] = []
    records = sorted(p for p in store.journal_dir.iterdir() if p.suffix == ".json")
    for leftover in store.journal_dir.iterdir():
        if leftover.suffix == ".tmp":
            leftover.unlink()
    for path in records:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"unreadable archive journal {path}: {exc}") from exc
        op = record["op"]
        if op == "append":
            notes += apply_append(store, record)
            notes.append(f"recovered an interrupted batch of {len(record['entries'])} messages")
        elif op == "flags":
            apply_flags(store, record["folder_id"], record["changes"])
        elif op == "expunge":
            apply_expunge(store, record["folder_id"], record["entries"])
        elif op == "rename":
            apply_rename(store, record["moves"])
        elif op == "delete":
            apply_delete(store, record["folder_id"], record["dir"])
        path.unlink()
    return notes


# --- the index: open, or set aside and rebuild ---------------------------------------------


def open_index(
    base: Path, *, durable: bool = True, trusted: IndexStamp | None = None
) -> tuple[Index, list[str]]:
    """Open ``base/index.sqlite``; if it is damaged, keep it aside and rebuild it.

    An index that is missing or empty (truncated to nothing) while message files exist is
    rebuilt too: otherwise the next backup would store every message a second time.
    ``trusted`` is the stamp of the file as a clean session of this process left it; while
    the file still has that stamp, its integrity check is skipped."""
    path = base / "index.sqlite"
    unchanged = trusted is not None and index_stamp(path) == trusted
    index: Index | None = None
    try:
        index = Index(path, durable=durable)
        index.check_and_init(quick_check=not unchanged)
        if index.meta("initialized") is not None:
            return index, []
        if not _has_message_files(base / "maildir"):
            with index.tx() as db:
                index.set_meta(db, "initialized", _dt.datetime.now(_dt.UTC).isoformat())
            return index, []
        index.close()
        reason = "the index is missing or empty but message files exist"
    except sqlite3.DatabaseError as exc:
        if index is not None:
            index.close()
        reason = str(exc)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    kept = base / "damaged" / f"index-{stamp}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            os.replace(source, Path(str(kept) + suffix))
    index = Index(path, durable=durable)
    index.check_and_init()
    count, folders = _rebuild(base / "maildir", index)
    with index.tx() as db:
        index.set_meta(db, "initialized", _dt.datetime.now(_dt.UTC).isoformat())
    return index, [
        f"the archive index was damaged ({reason}); it was kept as {kept} and rebuilt from "
        f"{count} message files in {folders} folders. Keywords other than $Forwarded and "
        "time zones of internal dates could not be recovered; the next backup matches the "
        "messages to the server again without downloading them twice."
    ]


def _has_message_files(maildir: Path) -> bool:
    if not maildir.is_dir():
        return False
    dirs = [maildir] + [Path(e.path) for e in os.scandir(maildir) if e.name.startswith(".")]
    for directory in dirs:
        for sub in ("cur", "new"):
            path = directory / sub
            if path.is_dir() and any(e.is_file() for e in os.scandir(path)):
                return True
    return False


def _rebuild(maildir: Path, index: Index) -> tuple[int, int]:
    dirs = [
        "",
        *sorted(e.name for e in os.scandir(maildir) if e.is_dir() and e.name.startswith(".")),
    ]
    total = 0
    max_uidvalidity = 0
    with index.tx() as db:
        for dirname in dirs:
            name = decode_folder_dir(dirname)
            files = []
            for sub in ("cur", "new"):
                path = maildir / dirname / sub
                if path.is_dir():
                    files += [Path(e.path) for e in os.scandir(path) if e.is_file()]
            parsed = [(p, parse_base(split_name(p.name)[0])) for p in files]
            validities = Counter(info[1] for _p, info in parsed if info is not None)
            uidvalidity = validities.most_common(1)[0][0] if validities else 0
            rows: list[MessageRow] = []
            foreign: list[Path] = []
            for file_path, info in parsed:
                if info is None or info[1] != uidvalidity:
                    foreign.append(file_path)
                    continue
                rows.append(_row_for_file(file_path, info[2], info[0]))
            next_uid = max((r.uid for r in rows), default=0) + 1
            for file_path in sorted(foreign):
                rows.append(_row_for_file(file_path, next_uid, int(file_path.stat().st_mtime)))
                next_uid += 1
            role = "inbox" if dirname == "" else None
            db.execute(
                "INSERT INTO folders (name, dirname, role, uidvalidity, uidnext) "
                "VALUES (?,?,?,?,?)",
                (name, dirname, role, uidvalidity or -1, next_uid),
            )
            folder_id = db.execute("SELECT id FROM folders WHERE dirname=?", (dirname,)).fetchone()
            index.insert_messages(db, int(folder_id[0]), rows)
            total += len(rows)
            max_uidvalidity = max(max_uidvalidity, uidvalidity)
        # folders that had no files get fresh UIDVALIDITY values
        for row in db.execute("SELECT id FROM folders WHERE uidvalidity=-1").fetchall():
            max_uidvalidity += 1
            db.execute("UPDATE folders SET uidvalidity=? WHERE id=?", (max_uidvalidity, row[0]))
        index.set_meta(db, "next_uidvalidity", str(max_uidvalidity + 1))
    return total, len(dirs)


def _row_for_file(path: Path, uid: int, epoch: int) -> MessageRow:
    data_head = b""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if not data_head:
                data_head = chunk[:65536]
            digest.update(chunk)
            size += len(chunk)
    base, letters = split_name(path.name)
    return MessageRow(
        uid=uid,
        sha256=digest.hexdigest(),
        size=size,
        message_id=parse_message_id(data_head),
        internal_date=_dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(),
        flags=flags_from_letters(letters),
        file=base,
        origin_uidvalidity=None,
        origin_uid=None,
        state="stored",
        gone_at=None,
    )


# --- verification ------------------------------------------------------------------------


@dataclass(slots=True)
class FileReport:
    """What :func:`verify_files` found; ``ok`` when the files and the index agree."""

    checked: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    corrupt: list[tuple[str, int]] = field(default_factory=list)
    misnamed: list[tuple[str, int]] = field(default_factory=list)
    unindexed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.unindexed)


def verify_files(store: ArchiveStore, *, deep: bool) -> FileReport:
    report = FileReport()
    index = store.index
    for folder in index.folders():
        directory = store.maildir / folder.dirname
        names: dict[str, Path] = {}
        for sub in ("cur", "new"):
            if (directory / sub).is_dir():
                for entry in os.scandir(directory / sub):
                    names[split_name(entry.name)[0]] = Path(entry.path)
        rows = index.messages(folder.id)
        indexed = {r.file for r in rows}
        for row in rows:
            report.checked += 1
            path = names.get(row.file)
            if path is None:
                report.missing.append((folder.name, row.uid))
                continue
            if split_name(path.name)[1] != letters_for(row.flags):
                report.misnamed.append((folder.name, row.uid))
            if path.stat().st_size != row.size or (deep and _sha256_of(path) != row.sha256):
                report.corrupt.append((folder.name, row.uid))
        report.unindexed += [(folder.name, base) for base in names if base not in indexed]
    return report
