"""``python -m bench.file_creation`` runs end to end, names the disk's journal and leaves
nothing behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench.file_creation import create, main


def test_file_creation_bench_times_both_rounds_and_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--files", "30", "--size", "100", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r": ext4 journal \S", out)
    assert re.search(r"^fresh: \d+ us wall, \d+ us system per file$", out, re.MULTILINE)
    assert re.search(r"^0 s after deleting them: \d+ us wall", out, re.MULTILINE)
    assert list(tmp_path.iterdir()) == []


def test_create_writes_every_file_whole(tmp_path: Path) -> None:
    wall, _system = create(tmp_path / "d", 12, 300)
    assert wall > 0
    sizes = sorted(p.stat().st_size for p in (tmp_path / "d").iterdir())
    assert sizes == [300] * 12
