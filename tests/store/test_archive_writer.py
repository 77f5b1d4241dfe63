"""The archive's file-writer thread: the chunks of a file handed over together are written
with one call and hashed once, files stay separate, and a short write still completes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from exoimap.store.archive.writer import FileWriter


class _Recorder:
    """``os.write`` that records each call's size (and writes at most ``limit`` bytes)."""

    def __init__(self, limit: int | None = None) -> None:
        self.calls: list[int] = []
        self._limit = limit

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        self.calls.append(len(data))
        view = memoryview(data)
        return os.write(fd, view if self._limit is None else view[: self._limit])


def test_chunks_handed_over_together_are_one_write_per_file(tmp_path: Path) -> None:
    recorder = _Recorder()
    writer = FileWriter(recorder)
    first = writer.open(str(tmp_path / "a"))
    for chunk in (b"From: a\r\n", b"\r\n", b"body " * 100):
        writer.write(first, chunk)
    writer.close(first, 1_700_000_000)
    second = writer.open(str(tmp_path / "b"))
    writer.write(second, b"x" * 10)
    writer.write(second, b"y" * 20)
    writer.close(second, 1_700_000_000)
    writer.finish()

    assert writer.error is None
    assert recorder.calls == [9 + 2 + 500, 30]
    a = (tmp_path / "a").read_bytes()
    assert a == b"From: a\r\n\r\n" + b"body " * 100
    assert writer.digests[first] == hashlib.sha256(a).hexdigest()
    assert (tmp_path / "b").read_bytes() == b"x" * 10 + b"y" * 20
    assert writer.digests[second] == hashlib.sha256(b"x" * 10 + b"y" * 20).hexdigest()
    assert (tmp_path / "a").stat().st_mtime == 1_700_000_000


def test_a_short_write_of_joined_chunks_goes_on_where_it_stopped(tmp_path: Path) -> None:
    recorder = _Recorder(limit=7)
    writer = FileWriter(recorder)
    token = writer.open(str(tmp_path / "m"))
    writer.write(token, b"0123456789")
    writer.write(token, b"abcdefghij")
    writer.close(token, 1_700_000_000)
    writer.finish()

    assert (tmp_path / "m").read_bytes() == b"0123456789abcdefghij"
    assert recorder.calls == [20, 13, 6]
    assert writer.digests[token] == hashlib.sha256(b"0123456789abcdefghij").hexdigest()


def test_a_discarded_file_is_removed_and_the_others_kept(tmp_path: Path) -> None:
    recorder = _Recorder()
    writer = FileWriter(recorder)
    kept = writer.open(str(tmp_path / "kept"))
    writer.write(kept, b"k" * 5)
    dropped = writer.open(str(tmp_path / "dropped"))
    writer.write(dropped, b"d" * 5)
    writer.write(dropped, b"d" * 5)
    writer.discard(dropped)
    writer.close(kept, 1_700_000_000)
    writer.finish()

    assert not (tmp_path / "dropped").exists()
    assert (tmp_path / "kept").read_bytes() == b"k" * 5
    assert recorder.calls == [5, 10]
