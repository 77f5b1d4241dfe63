"""The archive runs the shared Store conformance suite (and again after reopening)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from exoimap.store.archive import ArchiveStore
from exoimap.store.base import Store
from exoimap.store.conformance import CHECKS, Check, run_check


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_archive_conforms(check: Check, tmp_path: Path) -> None:
    async def factory() -> Store:
        return ArchiveStore.open(tmp_path / "archive")

    run_check(check, factory)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_archive_conforms_after_reopen(check: Check, tmp_path: Path) -> None:
    """Everything a check did must survive closing and reopening the archive."""
    root = tmp_path / "archive"

    async def factory() -> Store:
        return ArchiveStore.open(root)

    run_check(check, factory)

    # reopening replays nothing and the files agree with the index
    async def reopened() -> None:
        store = ArchiveStore.open(root)
        try:
            assert store.recovery_notes == []
            report = await store.verify_files(deep=True)
            assert report.ok, report
            assert report.misnamed == []
        finally:
            await store.close()

    asyncio.run(reopened())
