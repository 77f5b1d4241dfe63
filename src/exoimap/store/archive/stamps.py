"""Files stamps: how a resync knows, without listing a folder, that nobody touched its files.

A folder's *stamp* is the mtimes of its ``cur/`` and ``new/`` directories. Deleting,
adding or renaming a file in either changes them, so while the stamp recorded after the
last complete check still matches, every indexed file is still in place and the scan for
missing files (one directory listing per folder) can be skipped.

File times come from a coarse kernel clock (a few milliseconds), so a change made right
after a stamp was read could leave the same mtime ("racy" stamps, as git calls them). A
stamp is therefore only recorded once the directories are older than :data:`SETTLE`: the
archive reads the candidates (:func:`candidates`), waits until they are settled
(:func:`settle_wait`, at most :data:`SETTLE`), checks the files and stats the directories
again (:func:`confirmed`): any change after that check gets a later mtime. The index keeps
the stamps (:meth:`exoimap.store.archive.index.Index.set_files_stamps`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from exoimap.store.archive.index import FolderRow

__all__ = ["SETTLE", "candidates", "confirmed", "files_unchanged", "settle_wait"]

#: How old a directory mtime must be before a stamp holding it is trusted, in seconds.
SETTLE = 0.05

#: A folder whose stamp may be recorded, with the stamp read before its files are checked.
Candidate = tuple[FolderRow, str]


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


def candidates(
    rows: Sequence[FolderRow], folder_dir: Callable[[FolderRow], Path]
) -> tuple[list[Candidate], float]:
    """The folders whose stamp changed since it was recorded, and the newest mtime seen."""
    todo: list[Candidate] = []
    newest = 0.0
    for row in rows:
        read = _read(folder_dir(row))
        if read is None or read[0] == row.files_stamp:
            continue
        todo.append((row, read[0]))
        newest = max(newest, read[1])
    return todo, newest


def settle_wait(newest: float) -> float:
    """Seconds to wait until a directory mtime of ``newest`` is settled (at most SETTLE)."""
    return max(0.0, min(newest + SETTLE - time.time(), SETTLE))


def confirmed(
    todo: Sequence[Candidate],
    folder_dir: Callable[[FolderRow], Path],
    complete: Callable[[FolderRow], bool],
) -> list[tuple[str, int]]:
    """``(stamp, folder id)`` of each candidate whose files are all present (``complete``)
    and whose settled stamp did not change meanwhile."""
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
    return fresh
