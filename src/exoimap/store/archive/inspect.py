"""Looking at an archive from outside, for ``exoimap doctor``: who holds its lock, whether
its index is sound, whether its files and its index agree (names and sizes), and how fast it
grows according to its run journal.

Everything here only reads, without taking the archive's lock (a sync may be running) and
without creating a missing part (an index, a directory).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from exoimap.store.archive.files import Maildir
from exoimap.store.archive.index import Index
from exoimap.store.archive.repair import FileReport, verify_files
from exoimap.store.archive.runs import finished_runs

__all__ = ["ArchiveInspection", "LockState"]


@dataclass(frozen=True, slots=True)
class LockState:
    """The archive's lock: ``held`` by a process right now; ``pid`` is the holder's (held)
    or the last holder's (not held), None when nobody is named."""

    held: bool
    pid: int | None


def _flock_owners(info: os.stat_result) -> list[int] | None:
    """The pids holding a flock on the file ``info`` describes (``/proc/locks``, Linux;
    None without it). Waiters (``->``) hold nothing and are left out."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    # the kernel writes the device as hex major:minor and the inode in decimal
    key = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    owners: list[int] = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == key:
            owners.append(int(fields[4]) if fields[4].lstrip("-").isdigit() else -1)
    return owners


def _holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (a holder keeps its lock file open; checked
    when ``/proc/locks`` names the file differently, as on some overlay file systems)."""
    target = str(path.resolve())
    try:
        entries = os.scandir(f"/proc/{pid}/fd")
    except OSError:
        return False
    with entries:
        for entry in entries:
            try:
                if os.readlink(entry.path) == target:
                    return True
            except OSError:
                continue
    return False


def _probe(fd: int) -> bool:
    """Whether someone holds the flock, by trying a shared one for an instant (only where
    ``/proc/locks`` is missing: a sync starting in that instant would find it taken)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


class ArchiveInspection:
    """Read-only looks at the archive in ``root`` (the layout of
    :mod:`exoimap.store.archive`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index_path = root / "index.sqlite"
        self.lock_path = root / "lock"

    def lock(self) -> LockState | None:
        """Who holds the lock; None when there is no lock file (never opened)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            owners = _flock_owners(os.fstat(fd))
            probed = _probe(fd) if owners is None else None
        finally:
            os.close(fd)  # before looking at open files: ours is not a holder
        named = int(text) if text.isdigit() else None
        if probed is not None:
            return LockState(probed, named)
        if owners:
            return LockState(True, owners[0] if owners[0] > 0 else named)
        if named is not None and named != os.getpid() and _holds_open(named, self.lock_path):
            return LockState(True, named)
        return LockState(False, named)

    def has_index(self) -> bool:
        return self.index_path.is_file()

    def has_message_files(self) -> bool:
        return Maildir(self.root / "maildir", durable=False).has_message_files()

    def check_index(self, *, time_limit: float) -> str | None:
        """SQLite's ``quick_check`` of the index: ``"ok"``, what is wrong, or None when it
        took longer than ``time_limit`` s. A file that is no database raises IndexDamaged,
        one that cannot be read another StoreError."""
        index = Index.open_read_only(self.index_path)
        try:
            return index.quick_check(time_limit=time_limit)
        finally:
            index.close()

    def compare_files(self) -> FileReport:
        """Every folder's message files against its index rows, by name and size (no
        hashes: ``verify --deep`` does that)."""
        index = Index.open_read_only(self.index_path)
        try:
            return verify_files(index, Maildir(self.root / "maildir", durable=False), deep=False)
        finally:
            index.close()

    def pending_records(self) -> int:
        """Journal records of operations in flight (a crashed run leaves some; the next
        open of the archive rolls them forward)."""
        try:
            return sum(1 for p in (self.root / "journal").glob("*.json"))
        except OSError:
            return 0

    def finished_runs(self) -> list[tuple[_dt.datetime, int]]:
        """(when it finished, bytes fetched) of each recorded run, oldest first."""
        return finished_runs(self.root / "runs")
