"""Backup scenarios run four ways (as mbsync's run-tests.pl does).

1. normal: each step, then a backup; the archive must match the source.
2. rerun: a second backup right after must change nothing.
3. replay: the backup dies in-process right after each journal record is written; the
   archive is reopened (rolling the journal forward) and the backup resumed. (Process
   death needs no fsync to be survived, so these runs use ``fsync_mode="none"``.)
4. kill: the backup process is killed (os._exit) at every crash point in turn and resumed
   in a fresh process (tests/sync/test_backup_crash.py).

Variants 3 and 4 must end with exactly the archive of variant 1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.sync.scenarios import (
    SCENARIOS,
    Crash,
    Scenario,
    check_against_source,
    counting_hook,
    run_backup,
    snapshot,
)

QUIET = {
    "fetched": 0,
    "bytes": 0,
    "flags_changed": 0,
    "rematched": 0,
    "gone": 0,
    "expunged": 0,
    "refetched_missing": 0,
    "created": 0,
    "renamed": 0,
    "failed_folders": 0,
}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_normal_and_rerun(scenario: Scenario, tmp_path: Path) -> None:
    src = scenario.source()
    root = tmp_path / "archive"
    for step in scenario.steps:
        step(src)
        report = run_backup(src, root, scenario.policy)
        assert report.ok, [f.errors for f in report.folders]
        check_against_source(src, root, scenario.policy)
        before = snapshot(root)
        again = run_backup(src, root, scenario.policy)
        assert {k: again.summary()[k] for k in QUIET} == QUIET, again.summary()
        assert snapshot(root) == before


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_replay_after_each_journal_record(scenario: Scenario, tmp_path: Path) -> None:
    src = scenario.source()
    clean = tmp_path / "clean"
    for number, step in enumerate(scenario.steps):
        step(src)
        before = tmp_path / f"before-{number}"
        shutil.copytree(clean, before) if clean.exists() else before.mkdir()
        run_backup(src, clean, scenario.policy, fsync_mode="none")
        expected = snapshot(clean)
        points: list[str] = []
        probe = tmp_path / f"probe-{number}"
        shutil.copytree(before, probe)
        run_backup(src, probe, scenario.policy, counting_hook(points), fsync_mode="none")
        journaled = sum(1 for p in points if p.endswith(".journaled"))
        for crash_at in range(1, journaled + 1):
            work = tmp_path / f"replay-{number}-{crash_at}"
            shutil.copytree(before, work)
            seen: list[str] = []
            with pytest.raises((Crash, BaseExceptionGroup)):
                run_backup(
                    src,
                    work,
                    scenario.policy,
                    counting_hook(seen, crash_at=crash_at, suffix=".journaled"),
                    fsync_mode="none",
                )
            report = run_backup(src, work, scenario.policy, fsync_mode="none")
            assert report.ok, [f.errors for f in report.folders]
            assert snapshot(work) == expected, crash_at
