"""A dry run is the engine in plan-only mode, so it cannot disagree with a real run.

Over random server histories (new mail with and without Message-ID, duplicates, flag
changes, deletions, folder creations, renames, deletions and UIDVALIDITY resets), after
every step the dry run's report is compared with what the real run then does: the same
folders created, renamed, marked gone or deleted; per folder the same number of messages
fetched, flags changed, messages re-matched, marked gone or expunged, and lost files
fetched again. The one thing a plan cannot know is which fetched messages turn out to be
bytes the target already holds (no Message-ID to match them by): the real run reports those
as ``adopted``, and they are exactly the difference in ``gone``. The dry run must also leave
the target and its state untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exoimap.app import backup, plan_backup
from exoimap.errors import FolderError
from exoimap.store.archive import ArchiveStore
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.store.sync_state import MemorySyncState
from exoimap.sync import SyncPolicy, SyncReport, sync

NAMES = ("A", "B", "A/C", "D")
FLAG_SETS = (frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "\\Flagged", "work"}))
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

step = st.one_of(
    st.tuples(
        st.just("add"),
        st.integers(0, 4),
        st.integers(0, 6),
        st.booleans(),
        st.integers(0, 2),
    ),
    st.tuples(st.just("flags"), st.integers(0, 4), st.integers(0, 50), st.integers(0, 2)),
    st.tuples(st.just("expunge"), st.integers(0, 4), st.integers(0, 50)),
    st.tuples(st.just("create"), st.integers(0, 3)),
    st.tuples(st.just("rename"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 3)),
    st.tuples(st.just("reset"), st.integers(0, 4)),
    st.tuples(st.just("lose_file"), st.integers(0, 4), st.integers(0, 50)),
)


def _folders(store: MemoryStore) -> list[str]:
    return sorted(store.folder_names())


def _pick(items: list[str], index: int) -> str | None:
    return items[index % len(items)] if items else None


def _apply(source: MemoryStore, archive_root: Path, action: tuple[object, ...]) -> None:
    """One event of a server's life (or a file deleted by hand in the archive)."""
    kind, *args = action
    names = _folders(source)
    others = [n for n in names if n != "INBOX"]
    if kind == "add":
        folder, number, with_id, flags = args
        target = _pick(names, int(folder))  # type: ignore[call-overload]
        assert target is not None
        source.add_message(
            target,
            sample_message(int(number), 150 + int(number), message_id=bool(with_id)),  # type: ignore[call-overload]
            flags=FLAG_SETS[int(flags)],  # type: ignore[call-overload]
            internal_date=T0 + dt.timedelta(hours=int(number)),  # type: ignore[call-overload]
        )
    elif kind in ("flags", "expunge", "lose_file"):
        _message_step(source, archive_root, names, action)
    elif kind == "create":
        name = NAMES[int(args[0])]  # type: ignore[call-overload]
        if name not in names:
            source.create_folder_now(name)
    elif kind == "rename":
        old, new = _pick(others, int(args[0])), NAMES[int(args[1])]  # type: ignore[call-overload]
        if old is not None and new not in names and not new.startswith(old + "/"):
            # e.g. the new name's parent is missing: the server refuses too
            with contextlib.suppress(FolderError):
                source.rename_folder_now(old, new)
    elif kind == "delete":
        name = _pick(others, int(args[0]))  # type: ignore[call-overload]
        if name is not None and not any(n.startswith(name + "/") for n in names):
            source.delete_folder_now(name)
    elif kind == "reset":
        name = _pick(names, int(args[0]))  # type: ignore[call-overload]
        assert name is not None
        source.reset_uidvalidity(name)


def _message_step(
    source: MemoryStore, archive_root: Path, names: list[str], action: tuple[object, ...]
) -> None:
    kind, folder, index, *rest = action
    name = _pick(names, int(folder))  # type: ignore[call-overload]
    assert name is not None
    if kind == "lose_file":
        files = sorted(path for path in (archive_root / "maildir").rglob("cur/*") if path.is_file())
        if files:
            os.unlink(files[int(index) % len(files)])  # type: ignore[call-overload]
        return
    uids = sorted(source.record(name).messages)
    if not uids:
        return
    uid = uids[int(index) % len(uids)]  # type: ignore[call-overload]
    if kind == "flags":
        source.store_flags(name, [uid], FLAG_SETS[int(rest[0])])  # type: ignore[call-overload]
    else:
        source.expunge_now(name, [uid])


def _compare(planned: SyncReport, done: SyncReport, mirror: bool) -> None:
    assert done.ok, [e for f in done.folders for e in f.errors]
    assert planned.created == done.created
    assert planned.renamed == done.renamed
    assert planned.folders_gone == done.folders_gone
    assert planned.folders_deleted == done.folders_deleted
    real = {f.target: f for f in done.folders}
    assert sorted(real) == sorted(f.target for f in planned.folders)
    for plan in planned.folders:
        did = real[plan.target]
        assert plan.new_folder == did.new_folder, plan.target
        assert plan.planned == did.fetched, plan.target
        assert plan.flags_changed == did.flags_changed, plan.target
        assert plan.rematched == did.rematched, plan.target
        assert plan.refetched_missing == did.refetched_missing, plan.target
        deleted = did.expunged if mirror else did.gone
        assert plan.gone + plan.expunged + plan.gone_unless_adopted - did.adopted == deleted
        assert 0 <= did.adopted <= plan.gone_unless_adopted


async def _history(actions: list[tuple[object, ...]], mirror: bool, root: Path) -> None:
    source = MemoryStore()
    for name in ("A", "B"):
        source.create_folder_now(name)
    policy = SyncPolicy(mirror=mirror, batch_messages=3)
    for action in [None, *actions]:
        if action is not None:
            _apply(source, root, action)
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            before = sorted(os.listdir(root / "maildir"))
            planned = await plan_backup(source, archive, policy)
            assert sorted(os.listdir(root / "maildir")) == before  # the plan changed nothing
            done = await backup(source, archive, policy)
        finally:
            await archive.close()
        _compare(planned, done, mirror)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(actions=st.lists(step, max_size=14), mirror=st.booleans())
def test_the_dry_run_plans_what_the_backup_then_does(
    actions: list[tuple[object, ...]], mirror: bool
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(_history(actions, mirror, Path(scratch) / "archive"))


def test_a_dry_run_changes_neither_the_target_nor_the_state() -> None:
    async def main() -> None:
        source = MemoryStore()
        source.add_message("INBOX", sample_message(1))
        target, state = MemoryStore(), MemorySyncState()
        planned = await sync(source, target, state, plan_only=True)
        assert planned.plan_only
        assert [f.planned for f in planned.folders] == [1]
        async with target.open_folder("INBOX") as inbox:
            assert (await inbox.list_messages()).messages == []
        assert (state.runs_begun, await state.folders()) == (0, [])
        done = await sync(source, target, state)
        assert [f.fetched for f in done.folders] == [1]
        assert state.runs_begun == state.runs_ended == 1

    asyncio.run(main())
