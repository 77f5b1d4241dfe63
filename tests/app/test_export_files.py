"""Export file names and the gathered mbox writes, each on its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exoimap.app import export_writers
from exoimap.app.export_paths import FolderPaths, safe_segment


def test_safe_segments_cannot_escape_or_hide_control_characters() -> None:
    assert safe_segment("..") == "_.."
    assert safe_segment(".") == "_."
    assert safe_segment("") == "_"
    assert safe_segment("a/b\\c") == "a_b_c"
    assert safe_segment("bell\x07\x1b[0m\x7f\u2028") == "bell__[0m__"
    assert safe_segment("half\ud800") == "half_"
    long = safe_segment("é" * 300)
    assert len(long.encode()) <= 200
    assert long != safe_segment("é" * 301)  # cut names stay apart by their hash


def test_folder_paths_are_unique_and_directories_never_look_like_files() -> None:
    paths = FolderPaths(".mbox")
    assert paths.path_for("Dup\x01", "/") == ("Dup_",)
    assert paths.path_for("dup\x02", "/") == ("dup_~2",)  # case-insensitive clash
    assert paths.path_for("B.mbox/C", "/") == ("B.mbox_", "C")
    assert paths.path_for("B.MBOX", "/") == ("B.MBOX_",)
    assert paths.path_for("x.y", None) == ("x.y",)


def test_gathered_writes_survive_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def short_writev(fd: int, pieces: list[bytes]) -> int:
        return os.write(fd, b"".join(pieces)[:7])  # the kernel may write less than asked

    monkeypatch.setattr(export_writers.os, "writev", short_writev)
    target = tmp_path / "out"
    writer = export_writers._GatherWriter(target)
    pieces = [bytes([65 + n % 26]) * (n * 3) for n in range(40)]
    for piece in pieces:
        writer.write(piece)
    writer.close()
    assert target.read_bytes() == b"".join(pieces)
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):  # never over an existing file
        export_writers._GatherWriter(target)
