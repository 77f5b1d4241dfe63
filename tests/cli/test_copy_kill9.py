"""``kill -9`` at random moments through the real ``exoimap restore`` and ``exoimap migrate``
commands (separate processes, Dovecot on both sides), then resumed: every message ends up on
the target exactly once, byte for byte, with its flags and date.

The kill points are random (a seeded generator picks the delays; where in the copy the
process is when it dies depends on the machine), and every assertion holds wherever the
process died: that is the point of the ledger's announce-then-append protocol."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.protocol.headers import parse_message_id
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.remote import RemoteImapStore

from .dovecot_accounts import dovecot_store, fill_folders
from .sync_helpers import add_dovecot_account, isolated_home

pytestmark = pytest.mark.dovecot

T0 = dt.datetime(2020, 3, 1, 8, 0, tzinfo=dt.UTC)
FOLDERS = {"INBOX": 260, "Sent": 120, "Projects/2020": 140}
KILLS = 4
#: (bytes digest, Message-ID, flags, internal date) of one message
Seen = tuple[str, str | None, frozenset[str], dt.datetime]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=6) as server:
        yield server


def _flags(n: int) -> frozenset[str]:
    return frozenset({"\\Seen"} if n % 2 else {"\\Flagged", "work"} if n % 5 == 0 else set())


def _fill(dovecot: DovecotServer, user: str) -> None:
    items: dict[str, list[AppendItem]] = {}
    n = 0
    for folder, count in FOLDERS.items():
        items[folder] = []
        for _ in range(count):
            n += 1
            data = sample_message(n, 2_000 + (n * 7919) % 60_000)
            when = T0 + dt.timedelta(hours=n)
            items[folder].append(AppendItem(chunks_of(data), len(data), _flags(n), when))
    fill_folders(dovecot, user, items)


def _contents(dovecot: DovecotServer, user: str) -> dict[str, Counter[Seen]]:
    """Every folder's messages, counted: the same message twice shows as a count of 2."""

    async def read() -> dict[str, Counter[Seen]]:
        store = await dovecot_store(dovecot, user)
        found: dict[str, Counter[Seen]] = {}
        try:
            for info in await store.list_folders():
                async with store.open_folder(info.name) as folder:
                    listing = await folder.list_messages()
                    seen: Counter[Seen] = Counter()
                    async for m in folder.fetch([x.uid for x in listing.messages]):
                        body = b"".join([c async for c in m.chunks])
                        message_id = parse_message_id(body.split(b"\r\n\r\n", 1)[0] + b"\r\n")
                        digest = hashlib.sha256(body).hexdigest()
                        seen[(digest, message_id, m.flags, m.internal_date)] += 1
                if seen:
                    found[info.name] = seen
        finally:
            await store.close()
        return found

    return asyncio.run(read())


async def _count(store: RemoteImapStore) -> int:
    names = [info.name for info in await store.list_folders() if info.selectable]
    return sum(state.exists for state in (await store.folder_states(names)).values())


async def _kill_loop(dovecot: DovecotServer, user: str, args: list[str], seed: int) -> list[int]:
    """Run ``exoimap ARGS`` in its own process and SIGKILL it once the target holds a
    random number of messages (or after a random delay), :data:`KILLS` times; returns how
    many messages the target held after each kill."""
    rng = random.Random(seed)
    command = [str(Path(sys.executable).with_name("exoimap")), *args]
    total = sum(FOLDERS.values())
    held: list[int] = []
    store = await dovecot_store(dovecot, user)
    try:
        for _ in range(KILLS):
            stored = await _count(store)
            # somewhere in the first half of what is left, so that every kill but the
            # last few has copying left to interrupt
            threshold = rng.randint(stored + 1, stored + max(1, (total - stored) // 2))
            # in CPU seconds of the process, not wall time: on a busy machine its start
            # alone can take longer than any wall-clock delay, and every kill would land
            # before the copy began
            deadline = rng.uniform(0.5, 6.0)
            process = await asyncio.create_subprocess_exec(
                *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            await _run_until(process, store, threshold, deadline, rng)
            await process.wait()
            held.append(await _count(store))
    finally:
        await store.close()
    return held


async def _run_until(
    process: asyncio.subprocess.Process,
    store: RemoteImapStore,
    threshold: int,
    deadline: float,
    rng: random.Random,
) -> None:
    """Let ``process`` run in short random slices and SIGKILL it once the target holds
    ``threshold`` messages or it used ``deadline`` seconds of CPU. It is stopped (SIGSTOP)
    while the target is counted, so a fast copy cannot finish between looking and killing."""
    with contextlib.suppress(ProcessLookupError):  # it may end on its own first
        while process.returncode is None:
            await asyncio.sleep(rng.uniform(0.002, 0.02))
            process.send_signal(signal.SIGSTOP)
            if await _count(store) >= threshold or _cpu_seconds(process.pid) >= deadline:
                process.send_signal(signal.SIGKILL)
                return
            process.send_signal(signal.SIGCONT)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads (``/proc/PID/stat``); a
    process that has gone counts as having used all it will."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("inf")
    # after the ")" that ends the command name: utime and stime are the 12th and 13th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _killed_then_finished(dovecot: DovecotServer, user: str, args: list[str], seed: int) -> None:
    held = asyncio.run(_kill_loop(dovecot, user, args, seed))
    # at least one kill hit the copy half way (the rest may land before or after it)
    assert any(0 < n < sum(FOLDERS.values()) for n in held), held
    command = [str(Path(sys.executable).with_name("exoimap")), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "was interrupted" in done.stdout + done.stderr or held[-1] == sum(FOLDERS.values())


def _same_everywhere(source: dict[str, Counter[Seen]], target: dict[str, Counter[Seen]]) -> None:
    assert sorted(target) == sorted(source)
    for folder, messages in source.items():
        assert target[folder] == messages, folder  # equal counts: each exactly once
        assert set(messages.values()) == {1}


def test_restore_and_migrate_survive_kill_9(
    home: Path, dovecot: DovecotServer, tmp_path: Path
) -> None:
    source, restored, migrated = (dovecot.new_mailbox() for _ in range(3))
    _fill(dovecot, source)
    for name, user in (("src", source), ("restored", restored), ("migrated", migrated)):
        add_dovecot_account(home, dovecot, user, name)
    assert main(["sync", "src"]) == 0
    expected = _contents(dovecot, source)
    assert sum(sum(c.values()) for c in expected.values()) == sum(FOLDERS.values())

    args = ["restore", "src", "--to", "restored", "--merge"]
    _killed_then_finished(dovecot, restored, args, seed=16)
    _same_everywhere(expected, _contents(dovecot, restored))

    _killed_then_finished(dovecot, migrated, ["migrate", "src", "migrated"], seed=61)
    _same_everywhere(expected, _contents(dovecot, migrated))
