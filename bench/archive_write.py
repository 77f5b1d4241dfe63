"""Benchmark: durable backup of N synthetic messages into the archive, then a no-change resync.

Run: ``.venv/bin/python -m bench.archive_write [--messages 20000] [--fsync-mode auto]``

The source is a synthetic in-process store that generates message bodies on the fly
(median ~10 KB, p99 ~50 KB, 0.5% of 1-5 MB; ~620 MB for 20,000 messages) so that neither
the network nor the source's memory shows up in the numbers: this measures the engine plus
the archive (streaming to files, SHA-256, group commit with fsync, SQLite index).
Data goes to ``bench/work/archive_write`` (removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import random
import resource
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from exoimap.app import backup
from exoimap.errors import FolderNotFound
from exoimap.store.archive import ArchiveStore
from exoimap.store.base import (
    Capabilities,
    FetchedMessage,
    FolderInfo,
    FolderState,
    MessageInfo,
    MessageListing,
    SpecialUse,
    UidRange,
    folder_states_one_by_one,
)
from exoimap.sync import SyncPolicy

CHUNK = 64 * 1024
_FILLER = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n" * 2000)[: 2 * CHUNK]
FOLDERS = [("INBOX", 0.45), ("Sent Items", 0.2), ("Archive", 0.25), ("Projects/2024", 0.1)]


def message_sizes(count: int, seed: int = 7) -> list[int]:
    """The shape the peer benchmark's Dovecot mailbox has: 99.5% log-uniform between
    2 and 50 KB (median 10 KB), 0.5% between 1 and 5 MB; about 600 MB for 20,000."""
    rng = random.Random(seed)
    low, high = math.log(2_000), math.log(50_000)
    sizes = [int(math.exp(rng.uniform(low, high))) for _ in range(count)]
    for index in rng.sample(range(count), max(1, count // 200)):
        sizes[index] = rng.randint(1_000_000, 5_000_000)
    return sizes


class SyntheticFolder:
    def __init__(self, name: str, uidvalidity: int, sizes: list[int]) -> None:
        self._name = name
        self.uidvalidity = uidvalidity
        self.sizes = sizes
        self.date = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        self._listing: list[MessageInfo] | None = None

    @property
    def name(self) -> str:
        return self._name

    async def state(self) -> FolderState:
        return FolderState(self._name, self.uidvalidity, len(self.sizes) + 1, len(self.sizes))

    async def list_messages(
        self,
        *,
        changed_since: int | None = None,
        detail: bool = False,
        size_and_date: bool | frozenset[int] = False,
        uids: UidRange | None = None,
    ) -> MessageListing:
        if self._listing is None:  # the source's own cost is not what this measures
            seen, unseen = frozenset({"\\Seen"}), frozenset()
            self._listing = [
                MessageInfo(uid=uid, flags=seen if uid % 3 else unseen)
                for uid in range(1, len(self.sizes) + 1)
            ]
        listed = self._listing
        if uids is not None:
            last = uids.last or len(listed)
            listed = listed[uids.first - 1 : last]
        return MessageListing(state=await self.state(), messages=listed)

    def _header(self, uid: int) -> bytes:
        return (
            f"From: sender{uid}@example.com\r\nTo: me@example.com\r\n"
            f"Subject: synthetic {self._name} {uid}\r\n"
            f"Message-ID: <{uid}.{self.uidvalidity}@bench>\r\n\r\n"
        ).encode()

    async def _body(self, uid: int, size: int) -> AsyncIterator[bytes]:
        header = self._header(uid)
        yield header
        left = size - len(header)
        offset = uid % 1000
        while left > 0:
            take = min(CHUNK, left)
            yield _FILLER[offset : offset + take]
            left -= take

    async def fetch(self, uids: Sequence[int]) -> AsyncIterator[FetchedMessage]:
        for uid in sorted(uids):
            size = self.sizes[uid - 1]
            yield FetchedMessage(
                uid=uid,
                flags=frozenset({"\\Seen"}) if uid % 3 else frozenset(),
                internal_date=self.date,
                size=size,
                chunks=self._body(uid, size),
            )

    async def append(self, items: object) -> list[int]:
        raise NotImplementedError

    async def set_flags(self, changes: object) -> None:
        raise NotImplementedError

    async def expunge(self, uids: Sequence[int]) -> None:
        raise NotImplementedError


class SyntheticStore:
    """A read-only source store that makes its message bodies up as they are fetched."""

    def __init__(self, count: int) -> None:
        sizes = message_sizes(count)
        self.folders: dict[str, SyntheticFolder] = {}
        start = 0
        for number, (name, share) in enumerate(FOLDERS):
            end = count if number == len(FOLDERS) - 1 else start + int(count * share)
            self.folders[name] = SyntheticFolder(name, 100 + number, sizes[start:end])
            start = end
        self.total_bytes = sum(sizes)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(max_connections=4)

    @property
    def delimiter(self) -> str:
        return "/"

    async def list_folders(self) -> list[FolderInfo]:
        roles = {"INBOX": SpecialUse.INBOX, "Sent Items": SpecialUse.SENT}
        return [FolderInfo(n, "/", roles.get(n)) for n in self.folders]

    async def folder_state(self, name: str) -> FolderState:
        return await self.folders[name].state()

    async def folder_states(self, names: Sequence[str]) -> dict[str, FolderState]:
        return await folder_states_one_by_one(self, names)

    @asynccontextmanager
    async def _open(self, name: str) -> AsyncIterator[SyntheticFolder]:
        if name not in self.folders:
            raise FolderNotFound(name)
        yield self.folders[name]

    def open_folder(self, name: str) -> object:
        return self._open(name)

    async def create_folder(self, name: str, *, role: SpecialUse | None = None) -> None:
        raise NotImplementedError

    async def rename_folder(self, old: str, new: str) -> None:
        raise NotImplementedError

    async def delete_folder(self, name: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace) -> None:
    work = Path(args.dir)
    if work.exists():
        shutil.rmtree(work)
    source = SyntheticStore(args.messages)
    mb = source.total_bytes / 1e6
    print(
        f"{args.messages} messages, {mb:.0f} MB, fsync mode {args.fsync_mode}, batch {args.batch}"
    )
    policy = SyncPolicy(batch_messages=args.batch, max_parallel_folders=args.parallel)

    archive = ArchiveStore.open(work, fsync_mode=args.fsync_mode)
    before = resource.getrusage(resource.RUSAGE_SELF)
    loop_cpu = time.thread_time()
    t0 = time.perf_counter()
    report = await backup(source, archive, policy)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    loop_cpu = time.thread_time() - loop_cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    if not report.ok or report.fetched != args.messages:
        raise SystemExit(f"backup incomplete: {report.summary()}")
    await archive.close()
    print(
        f"full backup : {wall:6.2f} s wall, CPU {user:5.2f} s user + {system:5.2f} s system, "
        f"event-loop thread {loop_cpu:5.2f} s, {args.messages / wall:6.0f} msg/s, "
        f"{mb / wall:6.1f} MB/s, peak RSS {_peak_rss_mb():.0f} MB"
    )

    archive = ArchiveStore.open(work, fsync_mode=args.fsync_mode)
    t0 = time.perf_counter()
    again = await backup(source, archive, policy)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    await archive.close()
    assert again.ok
    assert again.fetched == 0
    assert again.summary()["flags_changed"] == 0
    print(f"no-change   : {wall:6.2f} s wall (open + list + compare, {args.messages} messages)")
    if not args.keep:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--fsync-mode", default="auto", choices=["auto", "pool", "syncfs", "serial", "none"]
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--dir", default="bench/work/archive_write")
    parser.add_argument("--keep", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
