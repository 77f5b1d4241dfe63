"""The archive's batch flush (``fsync_paths``): every file fsync'd, whatever the mode, and a
failing file reported only after the others were flushed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exoimap.store.archive import files


def _spy_fsync(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path behind every fd that is fsync'd (the real fsync still runs)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def _write_files(folder: Path, count: int) -> list[str]:
    paths = []
    for number in range(count):
        path = folder / f"{number}.msg"
        path.write_bytes(b"x" * number)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("mode", ["pool", "serial"])
@pytest.mark.parametrize("count", [1, 3, 5, 200])
def test_every_file_is_fsynced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, count: int
) -> None:
    paths = _write_files(tmp_path, count)
    synced = _spy_fsync(monkeypatch)
    files.fsync_paths(paths, mode=mode)
    assert sorted(synced) == sorted(paths)


def test_a_missing_file_fails_after_the_others_are_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _write_files(tmp_path, 50)
    missing = str(tmp_path / "gone.msg")
    synced = _spy_fsync(monkeypatch)
    with pytest.raises(FileNotFoundError):
        files.fsync_paths([*paths[:10], missing, *paths[10:]], mode="pool")
    assert sorted(synced) == sorted(paths)


def test_no_mode_flushes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = _spy_fsync(monkeypatch)
    files.fsync_paths(_write_files(tmp_path, 10), mode="none")
    assert synced == []


def test_syncfs_mode_flushes_with_one_syncfs_and_no_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Linux the C library's syncfs is found in the running program (no per-file fsync);
    # if it were not found, the mode would fall back to an fsync per file.
    paths = _write_files(tmp_path, 5)
    synced = _spy_fsync(monkeypatch)
    files.fsync_paths(paths, mode="syncfs")
    assert synced == []


def test_auto_mode_is_one_syncfs_where_the_kernel_reports_its_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _write_files(tmp_path, 20)
    synced = _spy_fsync(monkeypatch)
    monkeypatch.setattr(files, "syncfs_reports_errors", lambda: True)
    files.fsync_paths(paths, mode="auto")
    assert synced == []
    monkeypatch.setattr(files, "syncfs_reports_errors", lambda: False)
    files.fsync_paths(paths, mode="auto")
    assert sorted(synced) == sorted(paths)  # an older kernel: an fsync per file


@pytest.mark.parametrize(
    ("release", "trusted"),
    [("5.7.19", False), ("5.8.0", True), ("6.18.44-fc-v1272", True), ("4.19.0-23-amd64", False)],
)
def test_syncfs_is_trusted_from_linux_5_8(release: str, trusted: bool) -> None:
    assert files.syncfs_reports_errors(release) is trusted
