"""The archive's write-ahead journal: multi-step operations that a crash cannot half-do.

Each journaled operation (append, flags, expunge, rename, delete) is a JSON record written
atomically (and flushed) into ``<root>/journal/`` before its first step, and removed after
its last. :meth:`Journal.run` applies a record right away; :meth:`Journal.replay` applies
the records an interrupted process left, when the archive is opened. Both use the same
steps, and every step is idempotent: a step already done is noticed and skipped.

When a step fails with a store error (an SQLite statement, a rename), the record is rolled
forward once more on the spot, as the next open would: if that succeeds the archive stays
usable and only the operation's caller sees the error. Otherwise (or when anything else
interrupted the steps, such as a crash hook of the tests) the record stays and the archive
refuses further writes until it is opened again (:meth:`Journal.check_usable`).

Only the archive's worker thread calls this (see :mod:`exoimap.store.archive.worker`).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from exoimap.errors import StoreError, StoreUnavailable
from exoimap.store.archive.files import Maildir, atomic_write, letters_for, sha256_of
from exoimap.store.archive.index import Index, MessageRow

__all__ = ["CrashHook", "EntryFields", "Journal", "row_from_json", "row_to_json"]

#: Called with the name of each crash point (tests make the process die there).
CrashHook = Callable[[str], None]


class EntryFields(Protocol):
    """What an append entry records of a message: its index row's fields but ``state`` and
    ``gone_at`` (a :class:`MessageRow`, or a message still being staged: the hot path need
    not build a row)."""

    @property
    def uid(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def internal_date(self) -> str: ...
    @property
    def flags(self) -> frozenset[str]: ...
    @property
    def file(self) -> str: ...
    @property
    def origin_uidvalidity(self) -> int | None: ...
    @property
    def origin_uid(self) -> int | None: ...


def row_to_json(row: EntryFields, tmp_name: str, final_name: str) -> dict[str, Any]:
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


def row_from_json(entry: dict[str, Any]) -> MessageRow:
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


class Journal:
    """Journal records of one archive, applied to its index and its Maildir++ tree."""

    def __init__(
        self,
        directory: Path,
        index: Index,
        maildir: Maildir,
        *,
        damaged_dir: Path,
        crash_hook: CrashHook | None = None,
    ) -> None:
        self.directory = directory
        self._index = index
        self._maildir = maildir
        self._damaged_dir = damaged_dir
        self._crash_hook = crash_hook
        self._seq = itertools.count(1)
        # set when a record could not be applied: only reopening (which rolls the journal
        # forward) may continue, so nothing is written on top of a half-done operation
        self._broken: str | None = None

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def crash_point(self, name: str) -> None:
        if self._crash_hook is not None:
            self._crash_hook(name)

    def check_usable(self) -> None:
        if self._broken is not None:
            raise StoreUnavailable(
                f"the archive {self.directory.parent} stopped after an error ({self._broken}); "
                "open it again to finish the interrupted work",
                retryable=True,
            )

    # --- the normal path ------------------------------------------------------------------

    def run(self, record: dict[str, Any]) -> None:
        """Write ``record`` durably, apply it, then drop it (see the module docstring)."""
        self.complete(record, self.write(record))

    def write(self, record: dict[str, Any]) -> Path:
        """The first half of :meth:`run`: write ``record`` durably. Touches no index, so
        it may run on any thread (an append flushes it beside other folders' work)."""
        self.check_usable()
        path = self._write(record)
        self.crash_point(f"{record['op']}.journaled")
        return path

    def complete(self, record: dict[str, Any], path: Path) -> None:
        """The second half of :meth:`run`: apply the record written at ``path``, drop it."""
        try:
            self._apply(record, live=True)
        except (StoreError, OSError) as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            if self._roll_forward_now(record, path):
                self._broken = None
            raise
        except BaseException as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            raise
        path.unlink()

    def _roll_forward_now(self, record: dict[str, Any], path: Path) -> bool:
        try:
            self._apply(record, live=False)
            path.unlink()
        except (StoreError, OSError):
            return False
        return True

    def _write(self, record: dict[str, Any]) -> Path:
        path = self.directory / f"{os.getpid()}-{next(self._seq):08d}.json"
        atomic_write(path, json.dumps(record).encode(), durable=self._maildir.durable)
        return path

    # --- recovery -------------------------------------------------------------------------

    def replay(self) -> list[str]:
        """Roll forward every record left by an interrupted process; notes for the user."""
        notes: list[str] = []
        records = sorted(p for p in self.directory.iterdir() if p.suffix == ".json")
        for leftover in self.directory.iterdir():
            if leftover.suffix == ".tmp":
                leftover.unlink()
        for path in records:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StoreError(f"unreadable archive journal {path}: {exc}") from exc
            notes += self._apply(record, live=False)
            path.unlink()
        return notes

    # --- the steps ------------------------------------------------------------------------

    def _apply(self, record: dict[str, Any], *, live: bool) -> list[str]:
        op = record["op"]
        if op == "append":
            if live:
                self._place_live(record)
                self._commit_append(record, [row_from_json(e) for e in record["entries"]])
                return []
            notes = self._adopt_files(record)
            notes.append(f"recovered an interrupted batch of {len(record['entries'])} messages")
            return notes
        if op == "flags":
            self._flags(record["folder_id"], record["changes"])
        elif op == "expunge":
            self._expunge(record["folder_id"], record["entries"])
        elif op == "rename":
            self._rename(record["moves"])
        elif op == "delete":
            self._delete(record["folder_id"], record["dir"])
        else:
            raise StoreError(f"unknown archive journal operation {op!r}")
        if live and op in ("flags", "rename"):
            self.crash_point(f"{op}.applied")
        return []

    def _place_live(self, record: dict[str, Any]) -> None:
        """The normal path, right after the record was written: every file of the batch is
        in ``tmp/`` (flushed), so rename them all into ``cur/`` and flush the directory."""
        tmp_dir = self._maildir.tmp_dir(record["dir"])
        cur_dir = self._maildir.cur_dir(record["dir"])
        entries = record["entries"]
        half = len(entries) // 2
        for number, entry in enumerate(entries):
            os.rename(f"{tmp_dir}/{entry['tmp']}", f"{cur_dir}/{entry['final']}")
            if number == half:
                self.crash_point("append.renamed_some")
        self._maildir.sync_dir(Path(cur_dir))
        self.crash_point("append.renamed")

    def _adopt_files(self, record: dict[str, Any]) -> list[str]:
        """Recovery of an append record: adopt every file that got to ``tmp/`` or ``cur/``
        (after checking its SHA-256) and commit its row."""
        folder_id = record["folder_id"]
        cur = Path(self._maildir.cur_dir(record["dir"]))
        tmp = Path(self._maildir.tmp_dir(record["dir"]))
        entries = record["entries"]
        known = {r.uid for r in self._index.messages(folder_id, [e["uid"] for e in entries])}
        rows: list[MessageRow] = []
        notes: list[str] = []
        for entry in entries:
            if entry["uid"] in known:
                continue
            final, staged = cur / entry["final"], tmp / entry["tmp"]
            if not final.exists():
                if not staged.exists():
                    notes.append(f"message file {entry['final']} never reached the disk; refetch")
                    continue
                if sha256_of(staged) != entry["sha256"]:
                    notes.append(f"message file {entry['tmp']} is damaged; it is fetched again")
                    continue
                os.rename(staged, final)
            elif sha256_of(final) != entry["sha256"]:
                notes.append(f"message file {entry['final']} is damaged; it is fetched again")
                os.rename(final, self._damaged_dir / entry["final"])
                continue
            rows.append(row_from_json(entry))
        self._maildir.sync_dir(cur)
        self._commit_append(record, rows)
        return notes

    def _commit_append(self, record: dict[str, Any], rows: list[MessageRow]) -> None:
        """Commit a batch's rows and adoptions in one index transaction; then give adopted
        messages the flags of the items they stand for."""
        folder_id = record["folder_id"]
        adopts = record.get("adopt", [])
        adopted = {r.uid: r for r in self._index.messages(folder_id, [a[0] for a in adopts])}
        flag_changes: list[list[Any]] = []
        for uid, _uidvalidity, _origin_uid, flags in adopts:
            existing = adopted.get(uid)
            if existing is not None and frozenset(flags) != existing.flags:
                flag_changes.append([uid, flags, existing.file, letters_for(flags)])
        self._index.commit_append(
            folder_id, rows, record["uidnext"], [(a[0], a[1], a[2]) for a in adopts]
        )
        self.crash_point("append.committed")
        if flag_changes:
            self._flags(folder_id, flag_changes)

    def _flags(self, folder_id: int, changes: Sequence[Sequence[Any]]) -> None:
        """Rename files to their new flag letters, then commit the flags."""
        dirname = self._index.folder_by_id(folder_id).dirname
        for _uid, _flags, base, letters in changes:
            self._maildir.rename_flags(dirname, base, letters)
        self.crash_point("flags.renamed")
        self._index.set_flags(folder_id, [(uid, flags) for uid, flags, _b, _l in changes])

    def _expunge(self, folder_id: int, entries: Sequence[Sequence[Any]]) -> None:
        self._index.expunge(folder_id, [uid for uid, _file in entries])
        self.crash_point("expunge.committed")
        dirname = self._index.folder_by_id(folder_id).dirname
        for _uid, base in entries:
            self._maildir.remove(dirname, base)

    def _rename(self, moves: Sequence[Sequence[Any]]) -> None:
        for _folder_id, new_name, old_dir, new_dir in moves:
            self._maildir.move_folder(old_dir, new_dir)
            self._maildir.name_folder(new_dir, new_name)
        self._maildir.sync_dir(self._maildir.root)
        self.crash_point("rename.moved")
        self._index.rename_folders(moves)

    def _delete(self, folder_id: int, dirname: str) -> None:
        self._index.delete_folder(folder_id)
        self.crash_point("delete.committed")
        self._maildir.remove_folder(dirname)
