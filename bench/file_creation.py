"""What deleting many files costs the next program that creates files on this disk.

    .venv/bin/python -m bench.file_creation [--files 20000] [--size 32768] [--dir DIR]
        [--wait 0]

Creates ``--files`` files of ``--size`` bytes in a new directory (open, write, close, as a
Maildir writer does), deletes them, waits ``--wait`` seconds, and creates as many again in
another new directory; prints the wall time and the system CPU per file of both rounds.

Why it is a bench: ext4 without a journal (this machine's disk; ``journal_task`` is
``<none>``) does not reuse an inode freed in the last 60 seconds, or the last 360 while its
inode table block is not yet written back (``RECENTCY_MIN`` and ``RECENTCY_DIRTY`` in
``fs/ext4/ialloc.c``). Allocating a file walks the free inodes of its group and looks each
one up (``recently_deleted`` in ``perf``), so after a mass delete every file created in the
same groups costs hundreds of microseconds of system time. A benchmark that deletes one
tool's store just before the next tool writes its own measures this, not the tool; the
comparison (``bench.compare``) therefore keeps every store until the end of its run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def _journal(path: Path) -> str:
    """The journal of the ext4 file system holding ``path``, as the kernel reports it."""
    device = os.stat(path).st_dev
    for mount in Path("/proc/self/mounts").read_text().splitlines():
        source, point, kind = mount.split()[:3]
        if kind != "ext4" or not os.path.exists(point) or os.stat(point).st_dev != device:
            continue
        task = Path("/sys/fs/ext4") / Path(source).name / "journal_task"
        if task.exists():
            return task.read_text().strip()
    return "unknown (not ext4, or not found)"


def create(directory: Path, files: int, size: int) -> tuple[float, float]:
    """Create ``files`` files of ``size`` bytes; wall and system seconds per file."""
    directory.mkdir()
    data = os.urandom(size)
    started, sys_before = time.perf_counter(), os.times().system
    for number in range(files):
        fd = os.open(directory / str(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return (time.perf_counter() - started) / files, (os.times().system - sys_before) / files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--size", type=int, default=32768)
    parser.add_argument("--dir", type=Path, default=None, help="where (default: bench/work)")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds after the delete")
    args = parser.parse_args(argv)
    base = args.dir or Path(__file__).parent / "work"
    base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="file-creation-", dir=base))
    try:
        print(f"{scratch}: ext4 journal {_journal(scratch)}")
        wall, system = create(scratch / "first", args.files, args.size)
        print(f"fresh: {wall * 1e6:.0f} us wall, {system * 1e6:.0f} us system per file")
        shutil.rmtree(scratch / "first")
        time.sleep(args.wait)
        wall, system = create(scratch / "second", args.files, args.size)
        print(
            f"{args.wait:.0f} s after deleting them: {wall * 1e6:.0f} us wall, "
            f"{system * 1e6:.0f} us system per file"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
