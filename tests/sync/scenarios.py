"""Backup scenario table and helpers shared by the scenario and crash tests.

A scenario is a source store configuration, a policy and a list of steps; each step
changes the source and is followed by one backup. Every message's bytes are unique, so the
archive can be checked by content: every message exactly once per folder, byte-exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from exoimap.app import backup
from exoimap.app import verify_archive as verify
from exoimap.store.archive import ArchiveStore, CrashHook
from exoimap.store.base import Capabilities, SpecialUse
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryFolder, MemoryStore
from exoimap.sync import SyncPolicy, SyncReport

Step = Callable[[MemoryStore], None]
BASE_DATE = dt.datetime(2024, 1, 1, 12, 0, 0, tzinfo=dt.UTC)

EXCHANGE_CAPS = Capabilities(
    condstore=False,
    qresync=False,
    custom_keywords=False,
    exact_sizes=False,
    permanent_flags=frozenset(
        {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$MDNSent"}
    ),
    max_connections=4,
)


def _add(src: MemoryStore, folder: str, n: int, *, size: int = 300, **kw: Any) -> int:
    message_id = kw.pop("message_id", True)
    return src.add_message(
        folder,
        sample_message(n, size, message_id=message_id),
        internal_date=BASE_DATE + dt.timedelta(minutes=n),
        **kw,
    )


def step_initial(src: MemoryStore) -> None:
    src.create_folder_now("Work/Projects")
    src.create_folder_now("Sent Items", role=SpecialUse.SENT)
    for n in range(1, 7):
        _add(src, "INBOX", n, flags=["\\Seen"] if n % 2 else [])
    _add(src, "INBOX", 7, size=300_000, flags=["\\Flagged"])
    for n in range(20, 23):
        _add(src, "Work/Projects", n)
    for n in range(30, 32):
        _add(src, "Sent Items", n, flags=["\\Seen"])


def step_initial_without_message_ids(src: MemoryStore) -> None:
    for n in range(1, 6):
        _add(src, "INBOX", n, message_id=n % 2 == 0)


def step_changes(src: MemoryStore) -> None:
    src.store_flags("INBOX", [1, 2], frozenset({"\\Answered"}), "add")
    src.store_flags("INBOX", [5], frozenset(), "set")
    _add(src, "INBOX", 8)
    _add(src, "INBOX", 9, flags=["\\Draft"])
    src.expunge_now("INBOX", [3])
    _add(src, "Sent Items", 32)


def step_reset_uidvalidity(src: MemoryStore) -> None:
    src.store_flags("INBOX", [2], frozenset({"\\Flagged"}), "add")
    src.reset_uidvalidity("INBOX")
    _add(src, "INBOX", 10)


def step_rename(src: MemoryStore) -> None:
    src.rename_folder_now("Work", "Job")
    _add(src, "Job/Projects", 23)


def step_rename_by_moving(src: MemoryStore) -> None:
    """A rename that also changes UIDVALIDITY: new folders, messages moved, old ones gone."""
    src.create_folder_now("Job/Projects")
    src.move_now("Work/Projects", [1, 2, 3], "Job/Projects")
    src.delete_folder_now("Work/Projects")
    src.delete_folder_now("Work")
    _add(src, "Job/Projects", 24)


def step_delete_folder(src: MemoryStore) -> None:
    src.delete_folder_now("Sent Items")
    src.expunge_now("INBOX", [4])


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[Step]
    policy: SyncPolicy = field(default_factory=lambda: SyncPolicy(batch_messages=3))
    caps: Capabilities | None = None

    def source(self) -> MemoryStore:
        return MemoryStore(capabilities=self.caps, uidvalidity_start=50)


SCENARIOS = [
    Scenario("new_flags_expunge", [step_initial, step_changes]),
    Scenario("uidvalidity_reset", [step_initial, step_changes, step_reset_uidvalidity]),
    Scenario("folder_renamed", [step_initial, step_rename]),
    Scenario("folder_renamed_new_uidvalidity", [step_initial, step_rename_by_moving]),
    Scenario("folder_deleted", [step_initial, step_delete_folder]),
    Scenario(
        "mirror",
        [step_initial, step_changes, step_delete_folder],
        policy=SyncPolicy(batch_messages=3, mirror=True),
    ),
    Scenario(
        "exchange_like_source",
        [step_initial, step_changes, step_reset_uidvalidity],
        caps=EXCHANGE_CAPS,
    ),
    Scenario("no_message_ids", [step_initial_without_message_ids, step_reset_uidvalidity]),
]


# --- running and checking ------------------------------------------------------------------


def run_backup(
    src: MemoryStore,
    root: Path,
    policy: SyncPolicy,
    hook: CrashHook | None = None,
    *,
    fsync_mode: str = "auto",
) -> SyncReport:
    async def main() -> SyncReport:
        archive = ArchiveStore.open(root, crash_hook=hook, fsync_mode=fsync_mode)
        try:
            return await backup(src, archive, policy)
        finally:
            await archive.close()

    return asyncio.run(main())


Snapshot = dict[str, Any]


def snapshot(root: Path) -> Snapshot:
    """The archive's content without archive UIDs or times: what must match across runs."""

    async def main() -> Snapshot:
        archive = ArchiveStore.open(root, fsync_mode="none")  # reads only
        try:
            report = await archive.verify_files(deep=True)
            assert report.ok, report
            assert report.misnamed == [], report
            out: Snapshot = {}
            for info in await archive.list_folders():
                async with archive.open_folder(info.name) as folder:
                    messages = (await folder.list_messages(detail=True)).messages
                    bodies = {}
                    async for fetched in folder.fetch([m.uid for m in messages]):
                        bodies[fetched.uid] = b"".join([c async for c in fetched.chunks])
                rows = sorted(
                    (
                        m.sha256 or "",
                        tuple(sorted(m.flags)),
                        (m.origin.uidvalidity, m.origin.uid) if m.origin else None,
                        m.gone_at is not None,
                    )
                    for m in messages
                )
                shas = [r[0] for r in rows]
                assert len(shas) == len(set(shas)), f"duplicate message in {info.name}"
                for m in messages:
                    assert len(bodies[m.uid]) == m.size
                out[info.name] = {"gone": info.gone_at is not None, "messages": rows}
            return out
        finally:
            await archive.close()

    return asyncio.run(main())


def check_against_source(src: MemoryStore, root: Path, policy: SyncPolicy) -> None:
    """The archive holds every source message exactly once, byte-exact, flags right."""

    async def main() -> None:
        archive = ArchiveStore.open(root)
        try:
            result = await verify(src, archive, deep=True)
            assert result.ok, result
            for name in src.folder_names():
                async with archive.open_folder(name) as folder:
                    stored = (await folder.list_messages()).messages
                live = [m for m in stored if m.gone_at is None]
                state = await src.folder_state(name)
                assert len(live) == state.exists, (name, len(live), state.exists)
                if policy.mirror:
                    assert len(stored) == state.exists
        finally:
            await archive.close()

    asyncio.run(main())


class Crash(BaseException):
    """Raised by a crash hook to simulate dying in-process (not an Exception on purpose)."""


def counting_hook(
    counter: list[str], *, crash_at: int | None = None, suffix: str = ""
) -> CrashHook:
    """Record crash points; raise :class:`Crash` at the ``crash_at``-th one ending in
    ``suffix`` (counting only those)."""

    def hook(point: str) -> None:
        counter.append(point)
        fired = sum(1 for p in counter if p.endswith(suffix))
        if crash_at is not None and point.endswith(suffix) and fired == crash_at:
            raise Crash(point)

    return hook


def die_at(k: int) -> CrashHook:
    """A hook that kills the process (no cleanup at all) at the k-th crash point."""
    seen = [0]

    def hook(_point: str) -> None:
        seen[0] += 1
        if seen[0] == k:
            os._exit(137)

    return hook


def in_child(body: Callable[[], None]) -> int:
    """Run ``body`` in a forked child process; return its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            body()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class WrappedStore(MemoryStore):
    """A MemoryStore whose open folders are ``folder_class`` (to watch or fail calls)."""

    folder_class: ClassVar[type[MemoryFolder]] = MemoryFolder

    def open_folder(self, name: str) -> AbstractAsyncContextManager[MemoryFolder]:
        return self._wrapped(name)

    @asynccontextmanager
    async def _wrapped(self, name: str) -> AsyncIterator[MemoryFolder]:
        async with super().open_folder(name) as folder:
            yield self.folder_class(self, folder.name)
