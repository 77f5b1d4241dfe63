"""Kill the backup at every crash point, resume in a fresh process, compare with a clean run.

(a) Every numbered crash point: the backup runs in a forked child that dies with
    ``os._exit`` (no cleanup, no flush of Python state) at point k; another fresh child
    resumes; the archive must equal the clean run's: every message exactly once,
    byte-exact, flags right. A killed process loses no page-cache data, so these runs use
    ``fsync_mode="none"`` to stay fast; the order of operations is the same as with fsync.
(b) A randomised loop with the default durability (one ``syncfs`` per batch on Linux 5.8
    and later): a child running a concurrent multi-folder backup is SIGKILLed after a
    random delay, again and again; after each kill the recovered archive must still hold
    everything its index had committed before, each file matching its SHA-256, and the
    final resume must give the clean result.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy
from tests.sync.scenarios import (
    SCENARIOS,
    Scenario,
    _add,
    check_against_source,
    counting_hook,
    die_at,
    in_child,
    run_backup,
    snapshot,
)

# Crash points must come in the same order every run: one folder at a time. Steps that
# repeat an earlier scenario's steps (the initial backup, the same changes) are killed
# only once, in the first scenario that has them.
FIRST_KILLED_STEP = {"uidvalidity_reset": 2, "folder_renamed": 1, "mirror": 1}
KILL_SCENARIOS = [
    (
        dataclasses.replace(
            s, policy=dataclasses.replace(s.policy, max_parallel_folders=1, batch_messages=4)
        ),
        first,
    )
    for s, first in (
        (SCENARIOS[0], 0),
        *((s, FIRST_KILLED_STEP[s.name]) for s in SCENARIOS if s.name in FIRST_KILLED_STEP),
    )
]


def _backup_in_child(src: MemoryStore, root: Path, policy: SyncPolicy, k: int | None) -> None:
    report = run_backup(src, root, policy, die_at(k) if k else None, fsync_mode="none")
    if not report.ok:
        raise AssertionError([f.errors for f in report.folders])


@pytest.mark.parametrize(
    ("scenario", "first"), KILL_SCENARIOS, ids=[s.name for s, _ in KILL_SCENARIOS]
)
def test_kill_at_every_step_then_resume(scenario: Scenario, first: int, tmp_path: Path) -> None:
    src = scenario.source()
    clean = tmp_path / "clean"
    kills = 0
    for number, step in enumerate(scenario.steps):
        step(src)
        before = tmp_path / f"before-{number}"
        shutil.copytree(clean, before) if clean.exists() else before.mkdir()
        points: list[str] = []
        run_backup(src, clean, scenario.policy, counting_hook(points), fsync_mode="none")
        if number < first:
            continue
        expected = snapshot(clean)
        assert points, "the backup passed no crash point"
        for k, point in enumerate(points, start=1):
            work = tmp_path / f"kill-{number}-{k}"
            shutil.copytree(before, work)
            status = in_child(functools.partial(_backup_in_child, src, work, scenario.policy, k))
            assert status == 137, f"the child should have died at #{k} ({point})"
            kills += 1
            status = in_child(functools.partial(_backup_in_child, src, work, scenario.policy, None))
            assert status == 0, f"resume after a kill at #{k} ({point}) failed"
            assert snapshot(work) == expected, f"kill at #{k} ({point})"
            shutil.rmtree(work)
    assert kills >= 8  # the crash points are the archive's: the engine has none of its own


def _big_source() -> MemoryStore:
    src = MemoryStore()
    for name in ("A", "B", "C/D"):
        src.create_folder_now(name)
    number = 0
    for folder in ("INBOX", "A", "B", "C/D"):
        for _ in range(60):
            number += 1
            _add(src, folder, number, size=2000 + number * 37 % 5000, flags=["\\Seen"])
    return src


def _durable_backup_in_child(src: MemoryStore, root: Path, policy: SyncPolicy) -> None:
    report = run_backup(src, root, policy)
    if not report.ok:
        raise AssertionError([f.errors for f in report.folders])


def _committed_in_child(root: Path, out: Path) -> None:
    """Open (and so recover) the archive, check every file against the index (SHA-256),
    and write what the index holds to ``out``."""
    found = snapshot(root)
    out.write_text(
        json.dumps(
            [
                f"{folder}|{sha}|{origin}"
                for folder, content in found.items()
                for sha, _flags, origin, _gone in content["messages"]
            ]
        )
    )


def test_random_sigkill_loop(tmp_path: Path) -> None:
    """With the archive's default durability (one ``syncfs`` per batch here)."""
    src = _big_source()
    policy = SyncPolicy(batch_messages=7, max_parallel_folders=3)
    clean = tmp_path / "clean"
    run_backup(src, clean, policy)
    expected = snapshot(clean)
    work = tmp_path / "work"
    rng = random.Random(20240607)
    kills = 0
    listed = tmp_path / "committed.json"
    committed: set[str] = set()
    for _ in range(8):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                _durable_backup_in_child(src, work, policy)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.25))  # the kill moment is the random input
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        kills += os.waitstatus_to_exitcode(status) == -signal.SIGKILL
        # nothing the index committed before the kill is lost, and every file is whole
        assert in_child(functools.partial(_committed_in_child, work, listed)) == 0
        now = set(json.loads(listed.read_text()))
        assert committed <= now, sorted(committed - now)
        committed = now
    assert kills >= 1
    assert committed  # some batches were committed before a kill
    assert in_child(functools.partial(_durable_backup_in_child, src, work, policy)) == 0
    assert snapshot(work) == expected
    check_against_source(src, work, policy)
