"""Files stamps: how a resync knows, without listing a folder, that nobody touched its files.

A folder's *stamp* is the mtimes of its ``cur/`` and ``new/`` directories. Deleting,
adding or renaming a file in either changes them, so while the stamp recorded after the
last complete check still matches, every indexed file is still in place and the scan for
missing files (one directory listing per folder) can be skipped.

File times come from a coarse kernel clock (a few milliseconds), so a change made right
after a stamp was read could leave the same mtime ("racy" stamps, as git calls them). A
stamp is therefore only recorded once the directories are older than :data:`SETTLE`, the
files are then checked, and the directories stat'ed again: any change after that check
gets a later mtime.

Only :mod:`exoimap.store.archive` uses this module.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from exoimap.store._archive_index import FolderRow, Index, map_sqlite_error

__all__ = ["SETTLE", "files_unchanged", "record_stamps"]

#: How old a directory mtime must be before a stamp holding it is trusted, in seconds.
SETTLE = 0.05


def _read(folder: Path) -> tuple[str, float] | None:
    """The stamp of a folder directory, and its newest mtime in seconds."""
    try:
        cur, new = os.stat(folder / "cur"), os.stat(folder / "new")
    except OSError:
        return None
    return f"{cur.st_mtime_ns}:{new.st_mtime_ns}", max(cur.st_mtime, new.st_mtime)


def files_unchanged(folder: Path, row: FolderRow) -> bool:
    """True when the folder's files are as they were at the last complete check."""
    if row.files_stamp is None:
        return False
    current = _read(folder)
    return current is not None and current[0] == row.files_stamp


async def record_stamps(
    index: Index,
    rows: Sequence[FolderRow],
    folder_dir: Callable[[FolderRow], Path],
    complete: Callable[[FolderRow], bool],
) -> int:
    """Record a fresh stamp for each of ``rows`` whose files are all present
    (``complete``); returns how many were recorded. Waits at most :data:`SETTLE`."""
    todo: list[tuple[FolderRow, str]] = []
    newest = 0.0
    for row in rows:
        read = _read(folder_dir(row))
        if read is None or read[0] == row.files_stamp:
            continue
        todo.append((row, read[0]))
        newest = max(newest, read[1])
    if not todo:
        return 0
    wait = newest + SETTLE - time.time()
    if wait > 0:
        await asyncio.sleep(min(wait, SETTLE))
    settled = time.time() - SETTLE
    fresh: list[tuple[str, int]] = []
    for row, stamp in todo:
        try:
            if not complete(row):
                continue  # a file is missing: the next run looks again (and fetches it)
        except OSError:
            continue  # the folder's directory went away meanwhile: no stamp
        again = _read(folder_dir(row))
        if again is not None and again[0] == stamp and again[1] <= settled:
            fresh.append((stamp, row.id))
    if fresh:
        try:
            with index.tx() as db:
                db.executemany("UPDATE folders SET files_stamp=? WHERE id=?", fresh)
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, "recording the folders' files stamps") from exc
    return len(fresh)
