"""Where an export goes: OUT is checked, written under a clearly named partial path beside
it, flushed to disk, and only then renamed to OUT.

OUT must not exist, or be empty (an empty directory, or an empty file for a zip): an
export never overwrites anything. While it runs, the output is ``OUT.partial-XXXXXXXX``
(private: mode 0700 or 0600, as mail is); a failed export removes it, and one killed
outright leaves it under that name, never as something that looks like a finished OUT.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from exoimap.errors import ConfigError, DiskFull, StoreError, disk_of
from exoimap.store.archive.files import fsync_dir, fsync_paths
from exoimap.words import byte_size

__all__ = ["ExportOutput", "os_error"]


def os_error(exc: OSError, out: Path, *, needed: int | None = None) -> StoreError:
    """One line for a failed write to the export (a full disk says so, and how much the
    whole export needs when ``needed`` is known: the selected messages' bytes)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        size = "" if needed is None else f"the export needs about {byte_size(needed)}; "
        return DiskFull(
            f"no space left on {disk_of(out)} while exporting to {out}; {size}"
            "the partial export was removed and the archive is untouched"
        )
    return StoreError(f"exporting to {out} failed: {exc.strerror or exc}")


class ExportOutput:
    """The partial output of one export and its final place."""

    def __init__(self, out: Path, partial: Path, *, directory: bool) -> None:
        self.out = out
        self.partial = partial
        self.directory = directory

    @classmethod
    def prepare(cls, out: Path, *, directory: bool) -> ExportOutput:
        """Check ``out`` and create the partial output beside it."""
        out = out.expanduser().absolute()
        _check_free(out, directory=directory)
        parent = out.parent
        if not parent.is_dir():
            raise ConfigError(f"cannot export to {out}: the directory {parent} does not exist")
        prefix = f"{out.name}.partial-"
        try:
            if directory:
                partial = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, dir=parent)
                os.close(fd)
                partial = Path(name)
        except OSError as exc:
            raise os_error(exc, out) from exc
        return cls(out, partial, directory=directory)

    def commit(self) -> None:
        """Flush the output to disk, then give it its name (blocking: run it in a thread).
        On failure the caller discards the partial output, as after any other failure."""
        try:
            fsync_paths([self.partial], mode="syncfs")  # one syncfs covers every file
            _check_free(self.out, directory=self.directory)
            if self.directory or self.out.exists():
                os.rename(self.partial, self.out)  # replaces only an empty directory / file
            else:
                os.link(self.partial, self.out)  # fails if OUT appeared meanwhile
                os.unlink(self.partial)
            fsync_dir(self.out.parent)
        except OSError as exc:
            raise os_error(exc, self.out) from exc

    def discard(self) -> str | None:
        """Remove the partial output; returns a note when it could not be removed."""
        try:
            if self.directory:
                shutil.rmtree(self.partial)
            else:
                self.partial.unlink(missing_ok=True)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"could not remove the partial export {self.partial}: {exc.strerror or exc}"
        return None


def _check_free(out: Path, *, directory: bool) -> None:
    """Refuse an OUT that holds anything (and a file where a directory is wanted)."""
    if not os.path.lexists(out):
        return
    what = "directory" if directory else "zip file"
    if directory and out.is_dir() and not out.is_symlink():
        if not any(out.iterdir()):
            return
        reason = "is a directory that is not empty"
    elif not directory and out.is_file() and not out.is_symlink():
        if out.stat().st_size == 0:
            return
        reason = "is a file that is not empty"
    else:
        reason = "exists and is not an empty " + what
    raise ConfigError(f"{out} {reason}; an export never overwrites: give a new or empty {what}")
