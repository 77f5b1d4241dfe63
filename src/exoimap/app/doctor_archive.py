"""The archive checks of ``exoimap doctor``, one finding each: the folder (writable, not
on a read-only mount, enough free space), the lock (who holds it), the index (SQLite's
``quick_check``), the files against the index (names and sizes), and the free space against
the archive's growth rate (from its run journal).

Everything here only reads: a sync may be running, and a missing archive or index is
reported, never created.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from exoimap.app.accounts import archive_path
from exoimap.app.doctor_findings import DoctorSettings, Finding
from exoimap.config import AccountConfig, Paths
from exoimap.errors import StoreError
from exoimap.store.archive.index import IndexDamaged
from exoimap.store.archive.inspect import ArchiveInspection, LockState
from exoimap.store.archive.repair import FileReport
from exoimap.untrusted import shown
from exoimap.words import byte_size, plural

__all__ = ["archive_findings"]

#: A growth rate needs runs spread over at least this long to mean anything.
_MIN_HISTORY = _dt.timedelta(hours=1)
#: How many differing files a finding names.
_EXAMPLES = 3


def archive_findings(
    account: AccountConfig, paths: Paths, settings: DoctorSettings
) -> list[Finding]:
    """The archive's findings, in order; the later ones only when there is an archive."""
    name = account.name
    root = archive_path(account, paths)
    found = [check_folder(name, root, settings)]
    if not root.is_dir():
        return found
    archive = ArchiveInspection(root)
    lock = archive.lock()
    found.append(check_lock(name, lock))
    busy = lock is not None and lock.held
    index = check_index(name, archive, settings)
    found.append(index)
    if index.ok and archive.has_index():
        found.append(check_files(name, archive, busy=busy))
    found.append(check_growth(name, archive, settings))
    return found


def _mount_point(path: Path) -> Path:
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def check_folder(name: str, root: Path, settings: DoctorSettings) -> Finding:
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        mount = _mount_point(existing)
        fix = (
            f"remount {mount} read-write (`mount -o remount,rw {mount}`) or move the "
            f"archive (`archive = ...` under [accounts.{name}] in config.toml)"
        )
        return Finding("archive", False, f"{existing} is on a read-only file system", fix, name)
    if not os.access(existing, os.W_OK | os.X_OK):
        fix = f"give your user write access to {existing} (e.g. `chmod u+rwx {existing}`)"
        return Finding("archive", False, f"{existing} is not writable", fix, name)
    free = shutil.disk_usage(existing).free
    gib = free / (1 << 30)
    if free < settings.min_free_bytes:
        need = settings.min_free_bytes / (1 << 30)
        fix = f"free disk space (at least {need:.1f} GiB) or move the archive (--archive)"
        return Finding("archive", False, f"{root}: only {gib:.2f} GiB free", fix, name)
    return Finding("archive", True, f"{root}: writable, {gib:.1f} GiB free", "", name)


# --- the lock ----------------------------------------------------------------------------


def _process(pid: int) -> str:
    """``pid``'s command line and how long it has run, as far as /proc tells."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return f"pid {pid}"
    command = shown(raw.replace(b"\0", b" ").decode("utf-8", "replace").strip())[:120]
    try:
        # the fields after the command name (in parentheses, which may hold spaces):
        # the 20th of them is the start time in clock ticks since boot
        started = int(stat.rpartition(")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")
    except (ValueError, IndexError):
        return f"pid {pid} ({command})"
    minutes = max(0, int((uptime - started) / 60))
    return f"pid {pid} ({command}), running for {minutes // 60} h {minutes % 60} min"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_lock(name: str, lock: LockState | None) -> Finding:
    """A holder is normal while a sync or watch runs (a warning names it, in case it
    hangs); a pid left in the file by an ended process is harmless: the lock (flock) ends
    with its process, so there is never a stale lock to clear."""
    if lock is None:
        return Finding("archive-lock", True, "free (the archive was never opened)", "", name)
    if lock.held:
        who = _process(lock.pid) if lock.pid is not None else "a process this user cannot see"
        stop = f"`kill {lock.pid}`" if lock.pid is not None else "it"
        fix = (
            "nothing to do while that sync or watch runs; if it hangs, stop "
            f"{stop}: the lock ends with its process"
        )
        return Finding("archive-lock", True, f"held by {who}", fix, name, warning=True)
    if lock.pid is not None and not _alive(lock.pid):
        detail = (
            f"free; pid {lock.pid}, which held it last, has ended (the lock ended with it: "
            "nothing to clear)"
        )
        return Finding("archive-lock", True, detail, "", name)
    return Finding("archive-lock", True, "free", "", name)


# --- the index ---------------------------------------------------------------------------


def _rebuild_fix(name: str, root: Path) -> str:
    return (
        f"run `exoimap verify {name}`: opening the archive keeps the damaged index in "
        f"{root / 'damaged'} and rebuilds it from the message files; then "
        f"`exoimap verify --repair {name}`"
    )


def check_index(name: str, archive: ArchiveInspection, settings: DoctorSettings) -> Finding:
    path = archive.index_path
    if not archive.has_index():
        if archive.has_message_files():
            detail = f"{path} is missing while message files exist"
            return Finding("archive-index", False, detail, _rebuild_fix(name, archive.root), name)
        return Finding("archive-index", True, "no index yet (the first sync makes it)", "", name)
    began = time.monotonic()
    try:
        answer = archive.check_index(time_limit=settings.index_check_seconds)
    except IndexDamaged as exc:
        return Finding("archive-index", False, str(exc), _rebuild_fix(name, archive.root), name)
    except StoreError as exc:
        fix = f"check that your user can read {path} (and its -wal and -shm files)"
        return Finding("archive-index", False, str(exc), fix, name)
    took = time.monotonic() - began
    if answer is None:
        detail = f"{path}: quick_check did not finish within {settings.index_check_seconds:g} s"
        fix = f"run `exoimap verify {name}` when the disk is less busy"
        return Finding("archive-index", True, detail, fix, name, warning=True)
    if answer != "ok":
        said = shown("; ".join(answer.splitlines()))[:200]
        detail = f"{path} failed its integrity check (quick_check: {said})"
        return Finding("archive-index", False, detail, _rebuild_fix(name, archive.root), name)
    return Finding("archive-index", True, f"{path}: quick_check ok ({took:.1f} s)", "", name)


# --- files against the index -------------------------------------------------------------


def _examples(report: FileReport) -> str:
    named = [
        *(f"{shown(folder)} UID {uid} missing" for folder, uid in report.missing),
        *(f"{shown(folder)} UID {uid} size differs" for folder, uid in report.corrupt),
        *(f"{shown(folder)}: {shown(file)} not in the index" for folder, file in report.unindexed),
    ]
    more = f" and {len(named) - _EXAMPLES} more" if len(named) > _EXAMPLES else ""
    return "; ".join(named[:_EXAMPLES]) + more


def _counts(report: FileReport) -> str:
    return ", ".join(
        f"{count} {what}"
        for count, what in (
            (len(report.missing), "missing"),
            (len(report.corrupt), "of another size than indexed"),
            (len(report.unindexed), "not in the index"),
        )
        if count
    )


def _files_fix(name: str, report: FileReport) -> str:
    steps = []
    if report.missing or report.corrupt:
        steps.append(f"`exoimap verify --repair {name}` fetches the missing and damaged ones again")
    if report.unindexed:
        steps.append(
            "files not in the index were not written by a finished exoimap run: look at them "
            "and move them out of the Maildir"
        )
    return "; ".join(steps)


def check_files(name: str, archive: ArchiveInspection, *, busy: bool) -> Finding:
    """``busy``: a process holds the archive, so a difference may be its work in flight."""
    try:
        report = archive.compare_files()
    except StoreError as exc:
        return Finding("archive-files", False, str(exc), _rebuild_fix(name, archive.root), name)
    if report.ok:
        detail = (
            f"{plural(report.checked, 'message file')} match the index by name and size "
            f"(`exoimap verify --deep {name}` compares their SHA-256)"
        )
        return Finding("archive-files", True, detail, "", name)
    detail = f"{plural(report.checked, 'indexed message')}: {_counts(report)} ({_examples(report)})"
    if busy:
        fix = "a sync holds the archive and may be writing these: run doctor again when it ends"
        return Finding("archive-files", True, detail, fix, name, warning=True)
    pending = archive.pending_records()
    if pending:
        fix = (
            f"a run that crashed left {plural(pending, 'journal record')}: the next "
            f"`exoimap sync {name}` finishes its work; then run doctor again"
        )
        return Finding("archive-files", False, detail, fix, name)
    return Finding("archive-files", False, detail, _files_fix(name, report), name)


# --- free space against growth -----------------------------------------------------------


def growth_per_day(runs: Sequence[tuple[_dt.datetime, int]]) -> tuple[float, _dt.timedelta]:
    """Bytes a day the runs added, and the time they span. The first run's bytes are left
    out: it may be the first backup of the whole mailbox, and it opens the span."""
    if len(runs) <= 1:  # a rate needs two points
        return 0.0, _dt.timedelta(0)
    span = runs[-1][0] - runs[0][0]
    added = sum(fetched for _when, fetched in runs[1:])
    days = span.total_seconds() / 86400
    return (added / days if days > 0 else 0.0), span


def check_growth(name: str, archive: ArchiveInspection, settings: DoctorSettings) -> Finding:
    runs = archive.finished_runs()
    rate, span = growth_per_day(runs)
    free = shutil.disk_usage(archive.root).free
    if span < _MIN_HISTORY:
        detail = (
            f"{byte_size(free)} free; growth not known yet "
            f"({plural(len(runs), 'finished run')} recorded, over less than an hour)"
        )
        return Finding("archive-growth", True, detail, "", name)
    history = f"from {plural(len(runs), 'run')} over {span.total_seconds() / 86400:.1f} days"
    if rate <= 0:
        return Finding(
            "archive-growth", True, f"{byte_size(free)} free, no growth {history}", "", name
        )
    days = free / rate
    detail = (
        f"{byte_size(free)} free, growing {byte_size(rate)} a day ({history}): "
        f"full in about {days:.1f} days"
    )
    if days < settings.min_free_days:
        fix = (
            f"free disk space or move the archive (`archive = ...` under [accounts.{name}] in "
            f"config.toml) so that it lasts at least {settings.min_free_days:g} days"
        )
        return Finding("archive-growth", False, detail, fix, name)
    return Finding("archive-growth", True, detail, "", name)
