"""Files only their owner may read: write_private replaces whole, 0600, and leaves no
temporary file behind, whatever the umask and whether the write fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from exoimap.private_files import private_dir, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_0600_in_a_new_0700_folder(tmp_path: Path) -> None:
    target = tmp_path / "vault" / "entry"
    write_private(target, b"first")
    assert target.read_bytes() == b"first"
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_the_mode_is_exactly_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        write_private(tmp_path / "entry", b"secret")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "entry") == 0o600


def test_a_replacement_is_whole_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    target.write_bytes(b"old and longer content")
    target.chmod(0o644)
    write_private(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_a_failed_write_keeps_the_old_content_and_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "entry"
    write_private(target, b"kept")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_private(target, b"lost")
    monkeypatch.undo()
    assert target.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_private_dir_tightens_an_existing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    assert private_dir(folder) == folder
    assert _mode(folder) == 0o700
