"""Maildir++ naming and durable file primitives for the archive.

Folder names
    The archive's folder names use ``/`` as the hierarchy delimiter. On disk, INBOX is the
    Maildir root (``cur/ new/ tmp/``) and every other folder is a directory ``.A.B.C`` in
    the root (Maildir++), each with an empty ``maildirfolder`` file. Each name segment is
    encoded in IMAP modified UTF-7 (RFC 3501 section 5.1.3), which is what Dovecot uses by
    default for Maildir++. Characters Maildir++ cannot hold in a segment are then escaped
    the way Dovecot's ``listescape`` plugin does, as ``\\NN`` hex codes: ``.`` (the
    on-disk separator) as ``\\2e``, the escape character ``\\`` itself as ``\\5c``, and a
    leading ``~`` as ``\\7e``. Dovecot reads such an archive as it is; names with those
    characters need ``mail_plugins = $mail_plugins listescape`` and a namespace
    ``separator = /`` (what Exchange uses too).

    Every legal IMAP name has a directory. A name with an empty segment (``a//b``, ``a/``,
    ``/etc/x``) has no such form, and one whose form passes 255 bytes (the longest file
    name of most file systems) cannot be created: such a folder gets the directory
    ``.~<hint>~<hash>``, where the hint is the start of its last segment's form and the
    hash the first 32 hex digits of the SHA-256 of its name (UTF-8). A plain form never
    starts with ``.~`` (a leading ``~`` is escaped), so the two kinds never collide. The
    index keeps every folder's directory; a hashed one also keeps the full name in its
    ``exoimap-folder-name`` file, from which a rebuilt index recovers it. Dovecot shows
    such a folder under its directory's name.

Message files
    ``<internal date epoch>.A<uidvalidity>U<uid>.exoimap,S=<size>:2,<flags>`` in ``cur/``.
    The part before ``:2,`` (the *base*) never changes; flags live after ``:2,`` as Maildir
    letters (D draft, F flagged, P passed = $Forwarded, R replied, S seen, T trashed =
    \\Deleted). Other keywords live in the index only. The base records the archive
    UIDVALIDITY and UID so an index can be rebuilt from the files alone.

Durability
    :func:`fsync_paths` flushes many files at once (``syncfs(2)`` on Linux when asked for,
    otherwise ``fsync`` from a small thread pool), :func:`fsync_dir` makes renames durable,
    :func:`atomic_write` is write-new + fsync + rename + fsync(dir).

:class:`Maildir` does every file operation on the tree (folder directories, finding,
renaming and removing message files). These functions raise ``OSError`` as it comes: the
archive maps it to a store error where it hands the work to its worker thread
(:mod:`exoimap.store.archive.worker`), with :func:`map_os_error`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from exoimap.errors import (
    DiskFull,
    ErrorScope,
    RemoteProtocolError,
    StoreError,
    StoreLocked,
    disk_of,
)
from exoimap.protocol.utf7 import decode_mailbox, encode_mailbox

__all__ = [
    "FLAG_LETTERS",
    "Maildir",
    "atomic_write",
    "make_private_dirs",
    "decode_folder_dir",
    "encode_folder_dir",
    "is_hashed_dir",
    "file_base",
    "flags_from_letters",
    "fsync_dir",
    "fsync_paths",
    "letters_for",
    "map_os_error",
    "parse_base",
    "release_lock",
    "sha256_of",
    "split_name",
    "take_lock",
]

DELIMITER = "/"

#: Maildir info letters for IMAP flags (the letters must appear in ASCII order).
FLAG_LETTERS: dict[str, str] = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "$Forwarded": "P",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
_LETTER_FLAGS = {letter: flag for flag, letter in FLAG_LETTERS.items()}


# --- modified UTF-7 ----------------------------------------------------------------------


_ESCAPES = {"\\": "\\5c", ".": "\\2e"}


def _escape(encoded: str) -> str:
    out = "".join(_ESCAPES.get(char, char) for char in encoded)
    return "\\7e" + out[1:] if out.startswith("~") else out


def _unescape(escaped: str) -> str:
    def hex_code(match: re.Match[str]) -> str:
        return chr(int(match.group(1), 16))

    return re.sub(r"\\([0-9a-fA-F]{2})", hex_code, escaped)


def _encode_segment(segment: str) -> str:
    return _escape(_mutf7_encode(segment))


def _decode_segment(encoded: str) -> str:
    return _mutf7_decode(_unescape(encoded))


def _mutf7_encode(segment: str) -> str:
    return encode_mailbox(segment).decode("ascii")


def _mutf7_decode(encoded: str) -> str:
    try:
        return decode_mailbox(encoded.encode("ascii"))
    except (UnicodeEncodeError, RemoteProtocolError) as exc:
        raise StoreError(f"bad modified UTF-7 in folder directory {encoded!r}") from exc


#: The longest file name most file systems accept (NAME_MAX), in bytes.
MAX_DIRNAME_BYTES = 255
#: In a hashed folder directory: the folder's name, UTF-8.
NAME_FILE = "exoimap-folder-name"
_HASHED = ".~"
_HINT_CHARS = 40


def encode_folder_dir(name: str) -> str:
    """The Maildir++ directory (relative to the root) of folder ``name``; ``""`` is INBOX.
    Deterministic and one-to-one for every name (see the module docstring)."""
    if name.upper() == "INBOX":
        return ""
    segments = name.split(DELIMITER)
    if all(segments):
        plain = "." + ".".join(_encode_segment(s) for s in segments)
        if len(plain) <= MAX_DIRNAME_BYTES:  # the form is ASCII: one byte a character
            return plain
    return _hashed_dir(name)


def _hashed_dir(name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    last = next((s for s in reversed(name.split(DELIMITER)) if s), "")
    return f"{_HASHED}{_encode_segment(last)[:_HINT_CHARS]}~{digest}"


def is_hashed_dir(dirname: str) -> bool:
    """Whether ``dirname`` names its folder by a hash (the name is in its name file)."""
    return dirname.startswith(_HASHED)


def decode_folder_dir(dirname: str) -> str:
    """Inverse of :func:`encode_folder_dir` for a plain form (a hashed directory keeps its
    name in its name file: :meth:`Maildir.folder_name`)."""
    if dirname == "":
        return "INBOX"
    if not dirname.startswith(".") or is_hashed_dir(dirname):
        raise StoreError(f"{dirname!r} is not a plain Maildir++ folder directory")
    return DELIMITER.join(_decode_segment(s) for s in dirname[1:].split("."))


# --- message file names ------------------------------------------------------------------

_BASE_RE = re.compile(r"^(\d+)\.A(\d+)U(\d+)\.exoimap,S=(\d+)$")


def file_base(date_epoch: int, uidvalidity: int, uid: int, size: int) -> str:
    return f"{date_epoch}.A{uidvalidity}U{uid}.exoimap,S={size}"


def parse_base(base: str) -> tuple[int, int, int, int] | None:
    """``(date_epoch, uidvalidity, uid, size)`` from a base written by :func:`file_base`."""
    match = _BASE_RE.match(base)
    if match is None:
        return None
    date, uidvalidity, uid, size = (int(g) for g in match.groups())
    return date, uidvalidity, uid, size


def letters_for(flags: Iterable[str]) -> str:
    return _letters_of_set(flags if isinstance(flags, frozenset) else frozenset(flags))


#: A mailbox has few distinct flag sets, and every stored message's file name needs their
#: letters: remembered per set (bounded).
@functools.lru_cache(maxsize=4096)
def _letters_of_set(flags: frozenset[str]) -> str:
    return "".join(sorted(FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS))


def flags_from_letters(letters: str) -> frozenset[str]:
    return frozenset(_LETTER_FLAGS[c] for c in letters if c in _LETTER_FLAGS)


def split_name(filename: str) -> tuple[str, str]:
    """``(base, letters)`` of a Maildir file name."""
    base, sep, info = filename.partition(":2,")
    return base, info if sep else ""


# --- durability --------------------------------------------------------------------------


def map_os_error(
    exc: OSError, what: str, *, folder: str | None = None, path: Path | None = None
) -> StoreError:
    """Map an OSError to the most specific store error: a full disk stops the whole store;
    any other failure of work on one folder's files affects that folder only. ``path``:
    where the work was writing, when the error does not name a file."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"no space left on {disk_of(exc.filename or path)} while {what}; everything "
            "stored before is intact. Free some space and run again.",
            folder=folder,
        )
    scope = ErrorScope.FOLDER if folder is not None else ErrorScope.STORE
    return StoreError(f"{what} failed: {exc.strerror or exc}", scope=scope, folder=folder)


_libc: ctypes.CDLL | None = None


def _syncfs(fd: int) -> bool:
    global _libc  # noqa: PLW0603 - loaded once, lazily
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return False
    if _libc is None:
        # The running program's own symbols include the C library's; finding it by name
        # (ctypes.util) would cost ~10 ms of imports at every start and an ldconfig run.
        _libc = ctypes.CDLL(None, use_errno=True)
    syncfs = getattr(_libc, "syncfs", None)
    if syncfs is None:
        return False
    if syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return True


_pool: tuple[int, ThreadPoolExecutor] | None = None
#: Files fsync'd at once: the file system's journal commits concurrent fsyncs together.
_FSYNC_THREADS = 8


def _executor() -> ThreadPoolExecutor:
    """A per-process pool (a forked child must not use its parent's dead threads)."""
    global _pool  # noqa: PLW0603 - one pool per process, created lazily
    if _pool is None or _pool[0] != os.getpid():
        _pool = (
            os.getpid(),
            ThreadPoolExecutor(max_workers=_FSYNC_THREADS, thread_name_prefix="fsync"),
        )
    return _pool[1]


def _drain(waiting: collections.deque[str | Path]) -> None:
    """Fsync paths taken from ``waiting`` until it is empty (one of several threads)."""
    while True:
        try:
            path = waiting.popleft()  # thread-safe
        except IndexError:
            return
        _fsync_file(path)


def _fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Since Linux 5.8, ``syncfs(2)`` reports the file system's writeback errors; before, a
#: write that failed on the way to the disk could pass unnoticed.
_SYNCFS_REPORTS_ERRORS = (5, 8)


def syncfs_reports_errors(release: str | None = None) -> bool:
    """Whether this kernel's ``syncfs`` (``release``: a ``uname -r``) reports write errors."""
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return False
    found = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return found is not None and (int(found[1]), int(found[2])) >= _SYNCFS_REPORTS_ERRORS


def fsync_paths(paths: Sequence[str | Path], *, mode: str = "auto") -> None:
    """Make the contents of ``paths`` durable: ``syncfs`` once, or ``fsync`` each.

    ``auto``: one ``syncfs`` where it reports write errors (Linux 5.8 and later), else
    ``pool``; ``syncfs``: one ``syncfs`` wherever it exists; ``pool``: an ``fsync`` per
    file from a few threads (the journal commits concurrent ones together); ``serial``:
    one after the other; ``none``: nothing."""
    if not paths or mode == "none":
        return
    if mode == "syncfs" or (mode == "auto" and syncfs_reports_errors()):
        fd = os.open(os.path.dirname(paths[0]), os.O_RDONLY)
        try:
            if _syncfs(fd):
                return
        finally:
            os.close(fd)
    if mode == "serial" or len(paths) < 4:
        for path in paths:
            _fsync_file(path)
        return
    # A few tasks that each drain a shared queue, not a future per file: a future per file
    # cost a lock, a condition and a wake-up of the waiting thread each, and the threads
    # then traded the GIL (futex calls) far more often than the fsyncs need.
    waiting = collections.deque(paths)
    tasks = [_executor().submit(_drain, waiting) for _ in range(min(_FSYNC_THREADS, len(paths)))]
    concurrent.futures.wait(tasks)  # all done before the first error is raised
    for task in tasks:
        task.result()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new content.

    ``durable=False`` skips the fsyncs: still atomic for a killed process, not for power loss.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` with every directory it creates 0700 (``Path.mkdir(parents=True)`` gives
    only the last one the mode; the umask decides the rest). Existing ones are left alone."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
        else:
            os.chmod(directory, 0o700)  # the umask may have taken bits away; never adds any


# --- the lock ----------------------------------------------------------------------------


def _flock(fd: int, wait: float) -> None:
    """Lock ``fd``, trying again for up to ``wait`` seconds (BlockingIOError after)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def take_lock(path: Path, *, wait: float = 0.0) -> int:
    """Hold ``path`` (flock) for this process, with our pid in it for the error others get;
    ``wait``: how long to wait for a holder that is expected to finish soon (the console
    holds the lock for one page)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _flock(fd, wait)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StoreLocked(
            f"the archive {path.parent} is in use by another exoimap process (pid {holder}); "
            "wait for it to finish, or stop it, and run again"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_lock(fd: int) -> None:
    os.close(fd)


# --- the tree ----------------------------------------------------------------------------


class Maildir:
    """The Maildir++ tree of an archive (``<root>/maildir``): every file operation on its
    folder directories and message files. Folders are named by their directory
    (:func:`encode_folder_dir`); ``durable=False`` skips the directory fsyncs."""

    def __init__(self, root: Path, *, durable: bool) -> None:
        self.root = root
        self.durable = durable

    def folder_dir(self, dirname: str) -> Path:
        return self.root / dirname

    def sync_dir(self, path: Path) -> None:
        """Make renames in ``path`` durable (skipped when not durable)."""
        if self.durable:
            fsync_dir(path)

    def make_folder(self, dirname: str, name: str) -> None:
        path = self.root / dirname
        for sub in ("cur", "new", "tmp"):
            make_private_dirs(path / sub)
        if dirname:
            os.close(os.open(path / "maildirfolder", os.O_WRONLY | os.O_CREAT, 0o600))
        self.name_folder(dirname, name)
        self.sync_dir(self.root)

    def name_folder(self, dirname: str, name: str) -> None:
        """Write the name of a folder whose directory is hashed into its name file (a
        rebuilt index reads it back); other directories tell their name themselves."""
        if is_hashed_dir(dirname) and (self.root / dirname).is_dir():
            data = name.encode("utf-8", "surrogatepass")
            atomic_write(self.root / dirname / NAME_FILE, data, durable=self.durable)

    def folder_name(self, dirname: str) -> str | None:
        """The name of the folder in ``dirname``: decoded from a plain form, read from a
        hashed directory's name file; None when neither tells it (a damaged or missing
        name file, a directory made by another program)."""
        if not is_hashed_dir(dirname):
            try:
                return decode_folder_dir(dirname)
            except StoreError:
                return None
        try:
            data = (self.root / dirname / NAME_FILE).read_bytes()
            name = data.decode("utf-8", "surrogatepass")
        except (OSError, UnicodeDecodeError):
            return None
        return name if encode_folder_dir(name) == dirname else None

    def empty_tmp(self, dirname: str) -> None:
        """Remove what an interrupted process left in the folder's ``tmp/``."""
        tmp = self.root / dirname / "tmp"
        if tmp.is_dir():
            for entry in os.scandir(tmp):
                if entry.is_file():
                    os.unlink(entry.path)

    def tmp_dir(self, dirname: str) -> str:
        return os.path.join(self.root, dirname, "tmp")  # str: the append hot path

    def cur_dir(self, dirname: str) -> str:
        return os.path.join(self.root, dirname, "cur")

    def find(self, dirname: str, base: str) -> Path | None:
        """The file of ``base`` in ``cur/`` or ``new/``, whatever its flag letters."""
        for sub in ("cur", "new"):
            path = self.root / dirname / sub
            if not path.is_dir():
                continue
            for entry in os.scandir(path):
                if entry.name.partition(":")[0] == base:
                    return Path(entry.path)
        return None

    def locate(self, dirname: str, base: str, flags: Iterable[str]) -> Path | None:
        """Like :meth:`find`, trying the name the flags give first (no directory scan)."""
        path = self.root / dirname / "cur" / f"{base}:2,{letters_for(flags)}"
        if path.exists():
            return path
        return self.find(dirname, base)

    def entries(self, dirname: str) -> Iterator[tuple[str, str]]:
        """``(base, "cur/NAME" or "new/NAME")`` of every message file of a folder, as the
        directory listing goes: never every name in memory at once."""
        directory = self.root / dirname
        for sub in ("cur", "new"):
            path = directory / sub
            if path.is_dir():
                with os.scandir(path) as found:
                    for entry in found:
                        yield split_name(entry.name)[0], f"{sub}/{entry.name}"

    def rename_flags(self, dirname: str, base: str, letters: str) -> None:
        """Give the file of ``base`` the flag letters ``letters`` (done already: nothing)."""
        target = self.root / dirname / "cur" / f"{base}:2,{letters}"
        if target.exists():
            return
        current = self.find(dirname, base)
        if current is not None:
            os.rename(current, target)

    def remove(self, dirname: str, base: str) -> None:
        path = self.find(dirname, base)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def move_folder(self, old_dir: str, new_dir: str) -> None:
        """Rename a folder directory (done already: nothing)."""
        old_path, new_path = self.root / old_dir, self.root / new_dir
        if old_path.exists() and not new_path.exists():
            os.rename(old_path, new_path)

    def remove_folder(self, dirname: str) -> None:
        path = self.root / dirname
        if dirname and path.exists():
            shutil.rmtree(path)

    def folder_dirnames(self) -> list[str]:
        """INBOX (``""``) and every Maildir++ folder directory, sorted."""
        return [
            "",
            *sorted(e.name for e in os.scandir(self.root) if e.is_dir() and e.name.startswith(".")),
        ]

    def message_files(self, dirname: str) -> list[Path]:
        files: list[Path] = []
        for sub in ("cur", "new"):
            path = self.root / dirname / sub
            if path.is_dir():
                files += [Path(e.path) for e in os.scandir(path) if e.is_file()]
        return files

    def has_message_files(self) -> bool:
        if not self.root.is_dir():
            return False
        return any(self.message_files(dirname) for dirname in self.folder_dirnames())
