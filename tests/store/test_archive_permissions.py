"""Everything the archive writes is private (0600 files, 0700 directories), whatever the
umask, also when the archive goes into a folder that already exists."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap.app import backup
from exoimap.store.archive import ArchiveStore
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def _backup_into(root: Path) -> None:
    source = MemoryStore()
    source.create_folder_now("Projects/2026/Q1")
    source.add_message("INBOX", sample_message(1))
    source.add_message("Projects/2026/Q1", sample_message(2))
    archive = ArchiveStore.open(root)
    try:
        await backup(source, archive, SyncPolicy())
        # While it is open the index has its -wal and -shm files: check them too.
        modes = _modes_below(root)
        assert any(name.endswith("index.sqlite-wal") for name in modes)
        _assert_private(modes)
    finally:
        await archive.close()


def _modes_below(root: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _assert_private(modes: dict[str, int]) -> None:
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert not loose, f"readable by others: {loose}"


@pytest.mark.usefixtures("permissive_umask")
def test_an_archive_in_an_existing_folder_is_private(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    root.mkdir(mode=0o755)
    asyncio.run(_backup_into(root))
    modes = _modes_below(root)
    assert "index.sqlite" in modes
    assert any(name.endswith("maildirfolder") for name in modes)
    _assert_private(modes)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # the user's own folder is theirs


@pytest.mark.usefixtures("permissive_umask")
def test_folders_the_archive_creates_above_its_root_are_private(tmp_path: Path) -> None:
    root = tmp_path / "new" / "nested" / "archive"
    asyncio.run(_backup_into(root))
    for directory in (tmp_path / "new", tmp_path / "new" / "nested", root):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    _assert_private(_modes_below(root))


@pytest.mark.usefixtures("permissive_umask")
def test_an_index_left_readable_by_an_older_version_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    asyncio.run(_backup_into(root))
    (root / "index.sqlite").chmod(0o644)
    asyncio.run(_backup_into(root))
    _assert_private(_modes_below(root))
