"""Every SQL statement the archive runs during a backup fails, in turn.

A clean run of a small multi-folder backup (from a MemoryStore) counts the statements the
archive's index executes; then for each N the same backup runs again on a fresh copy of the
archive with the N-th statement raising ``sqlite3.OperationalError`` (or, after the archive
is open, every other one ``sqlite3.DatabaseError``). Each failure must come out as a
:class:`StoreError`, never a raw sqlite3 error or an ExceptionGroup: either the run stops
with one (a statement about no one folder: opening, the folder list), or exactly one folder
reports it and every other folder finishes, or the engine reports it as a skipped files
stamp (never fatal). A following clean run must leave the archive complete and
byte-exact: nothing lost, nothing stored twice, nothing left over in its directories.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exoimap.app import backup
from exoimap.errors import DiskFull, ErrorScope, StoreError, StoreLocked
from exoimap.store.archive import ArchiveStore
from exoimap.store.archive.index import Index, IndexDamaged, map_sqlite_error
from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy, SyncReport
from exoimap.sync.report import SyncEvent
from tests.sync.scenarios import (
    check_against_source,
    snapshot,
    step_changes,
    step_delete_folder,
    step_initial,
    step_reset_uidvalidity,
)

# one folder at a time: the N-th statement is the same statement in every run
POLICY = SyncPolicy(batch_messages=3, max_parallel_folders=1)


#: In the message of every injected failure (sqlite3 raises exactly these classes, so the
#: test raises them too, not subclasses).
MARK = "injected failure"


@dataclass
class Faults:
    """Counts the statements of every Index while armed; makes the ``fail_at``-th fail."""

    armed: bool = False
    fail_at: int | None = None
    damage: bool = False
    count: int = 0
    statements: list[str] = field(default_factory=list)

    def tick(self, sql: str) -> None:
        if not self.armed:
            return
        self.count += 1
        self.statements.append(sql.split(maxsplit=1)[0])
        if self.count == self.fail_at:
            kind = sqlite3.DatabaseError if self.damage else sqlite3.OperationalError
            raise kind(f"{MARK} of statement {self.count}: {sql[:60]}")

    @property
    def fired(self) -> bool:
        return self.fail_at is not None and self.count >= self.fail_at

    @contextmanager
    def arm(self, fail_at: int | None = None, *, damage: bool = False) -> Iterator[None]:
        self.armed, self.fail_at, self.damage = True, fail_at, damage
        self.count = 0
        self.statements.clear()
        try:
            yield
        finally:
            self.armed = False


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    state = Faults()
    execute, executemany = Index._execute, Index._executemany

    def counted_execute(self: Index, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        state.tick(sql)
        return execute(self, sql, params)

    def counted_executemany(self: Index, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        state.tick(sql)
        executemany(self, sql, rows)

    monkeypatch.setattr(Index, "_execute", counted_execute)
    monkeypatch.setattr(Index, "_executemany", counted_executemany)
    return state


@dataclass
class Outcome:
    """One backup run: how far the archive got, and how it ended."""

    opened_after: int | None = None  # statements run when open() returned
    report: SyncReport | None = None
    raised: BaseException | None = None
    events: list[SyncEvent] = field(default_factory=list)


def _backup(
    src: MemoryStore, root: Path, faults: Faults, fail_at: int | None, *, damage: bool
) -> Outcome:
    outcome = Outcome()

    async def main() -> None:
        with faults.arm(fail_at, damage=damage):
            try:
                archive = ArchiveStore.open(root, fsync_mode="none")
            except BaseException as exc:  # the test sorts out what it was
                outcome.raised = exc
                return
            outcome.opened_after = faults.count
            try:
                outcome.report = await backup(src, archive, POLICY, events=outcome.events.append)
            except BaseException as exc:  # the test sorts out what it was
                outcome.raised = exc
            finally:
                await archive.close()

    asyncio.run(main())
    return outcome


def _clean_backup(src: MemoryStore, root: Path) -> SyncReport:
    async def main() -> SyncReport:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            return await backup(src, archive, POLICY)
        finally:
            await archive.close()

    return asyncio.run(main())


def _is_injected(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sqlite3.Error) and MARK in str(cause):
            return True
        cause = cause.__cause__
    return False


def _check_failure(outcome: Outcome, n: int, statement: str) -> str:
    """The injected failure came out as a StoreError, in the one right place; returns
    where it came out (for the summary)."""
    where = f"statement {n} ({statement})"
    if outcome.raised is not None:
        exc = outcome.raised
        assert isinstance(exc, StoreError), f"{where}: raised {type(exc).__name__}: {exc}"
        assert _is_injected(exc), f"{where}: {exc!r} is not the injected failure"
        assert isinstance(exc.retryable, bool)
        return "run failed" if outcome.opened_after is not None else "open failed"
    report = outcome.report
    assert report is not None
    failed = [f for f in report.folders if f.errors]
    if not failed:
        skipped = [e for e in outcome.events if e.kind == "content_check_skipped"]
        assert skipped, f"{where}: the injected failure went unreported: {report.summary()}"
        return "files stamps skipped"
    assert len(failed) == 1, f"{where}: several folders failed: {[f.errors for f in failed]}"
    errors = failed[0].errors
    assert all(isinstance(e, StoreError) for e in errors), f"{where}: {errors!r}"
    assert any(_is_injected(e) for e in errors), f"{where}: {errors!r}"
    assert report.partial
    return "one folder failed"


def _initial(src: MemoryStore, root: Path) -> None:
    step_initial(src)


def _changes(src: MemoryStore, root: Path) -> None:
    """From a clean first backup: new, changed, expunged and re-numbered messages, a folder
    gone, and a message file deleted by hand."""
    step_initial(src)
    assert _clean_backup(src, root).ok
    step_changes(src)
    step_reset_uidvalidity(src)
    step_delete_folder(src)


def _lose_a_file(root: Path) -> None:
    victim = sorted((root / "maildir" / ".Work.Projects" / "cur").iterdir())[0]
    victim.unlink()


PHASES: dict[str, tuple[Callable[[MemoryStore, Path], None], Callable[[Path], None] | None]] = {
    "initial_backup": (_initial, None),
    "resync_with_changes": (_changes, _lose_a_file),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_every_failing_statement_is_a_store_error_and_heals(
    phase: str, faults: Faults, tmp_path: Path
) -> None:
    prepare, damage_copy = PHASES[phase]
    src = MemoryStore(uidvalidity_start=50)
    base = tmp_path / "base"
    base.mkdir()
    prepare(src, base)

    def fresh_copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(base, root)
        if damage_copy is not None:
            damage_copy(root)
        return root

    # the clean run: how many statements, and what the archive must hold afterwards
    clean_root = fresh_copy("clean")
    clean = _backup(src, clean_root, faults, None, damage=False)
    assert clean.raised is None
    assert clean.report is not None
    assert clean.report.ok
    total, opened_after = faults.count, clean.opened_after
    statements = list(faults.statements)
    assert opened_after is not None
    assert total > opened_after
    check_against_source(src, clean_root, POLICY)
    expected = snapshot(clean_root)

    places: dict[str, int] = {}
    for n in range(1, total + 1):
        root = fresh_copy(f"fault-{n}")
        # a DatabaseError while opening is what damage looks like: the index is rebuilt,
        # as it should be; after opening it must be a StoreError like any other
        damage = n > opened_after and n % 2 == 0
        outcome = _backup(src, root, faults, n, damage=damage)
        assert faults.fired, f"statement {n} of {total} was never reached"
        place = _check_failure(outcome, n, statements[n - 1])
        places[place] = places.get(place, 0) + 1
        healed = _clean_backup(src, root)
        assert healed.ok, (n, [f.errors for f in healed.folders])
        assert snapshot(root) == expected, f"statement {n} ({statements[n - 1]})"
        assert not any((root / "journal").iterdir()), f"statement {n}: journal left over"
        shutil.rmtree(root)
    # the sweep met every kind of statement: opening, folder work, and the run's end
    assert places.get("open failed", 0) >= 1, places
    assert places.get("one folder failed", 0) >= total // 2, places


def _real_error(tmp_path: Path, kind: str) -> sqlite3.Error:
    """An error raised by SQLite itself (with its error code), not made up by the test."""
    path = tmp_path / f"{kind}.sqlite"
    if kind == "notadb":
        path.write_bytes(b"this is not a database, just bytes" * 100)
        db = sqlite3.connect(path)
        sql = "SELECT * FROM sqlite_master"
    else:
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        sql = "INSERT INTO t VALUES (1)"
    try:
        db.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        db.close()
    raise AssertionError(f"{kind}: no error")


def test_sqlite_errors_map_to_store_errors_with_scope_and_retryable(tmp_path: Path) -> None:
    damaged = map_sqlite_error(_real_error(tmp_path, "notadb"), "reading")
    assert isinstance(damaged, IndexDamaged)
    assert (damaged.scope, damaged.retryable) == (ErrorScope.STORE, True)
    assert "rebuilt from the message files" in str(damaged)

    refused = map_sqlite_error(
        _real_error(tmp_path, "readonly"), "writing", scope=ErrorScope.FOLDER
    )
    assert type(refused) is StoreError
    assert (refused.scope, refused.retryable) == (ErrorScope.STORE, False)  # no folder can

    passing = map_sqlite_error(
        sqlite3.OperationalError("disk I/O error"), "x", scope=ErrorScope.FOLDER
    )
    assert (passing.scope, passing.retryable) == (ErrorScope.FOLDER, True)
    misuse = map_sqlite_error(sqlite3.IntegrityError("UNIQUE constraint failed"), "x")
    assert (misuse.scope, misuse.retryable) == (ErrorScope.STORE, False)
    assert isinstance(
        map_sqlite_error(sqlite3.OperationalError("database or disk is full"), "x"), DiskFull
    )
    assert isinstance(
        map_sqlite_error(sqlite3.OperationalError("database is locked"), "x"), StoreLocked
    )
