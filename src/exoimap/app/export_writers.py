"""The three export formats, each a writer fed one message at a time in chunks.

* :class:`MboxWriter`: one mboxrd file per folder (``Folder/Sub.mbox``), message bytes as
  stored (the line ends the server sent, usually CRLF), ``From `` lines quoted, a blank
  line after each message. Flags are not written: ``Status:`` / ``X-Status:`` headers
  would have to be spliced into the message's head, which changes the bytes a signature
  covers and which mbox readers disagree about; ``--format maildir`` keeps the flags.
* :class:`EmlZipWriter`: a zip with one ``Folder/Sub/<uid>.eml`` per message, each entry
  written as it streams (deflate, level 1: mail compresses well and level 1 keeps up with
  the disk), its modification time the internal date (DOS time in UTC, plus the
  extended-timestamp field that unzip uses for the exact time).
* :class:`MaildirWriter`: a Maildir++ tree that Dovecot and mutt read: folders named as in
  the archive (:func:`exoimap.store.archive.files.encode_folder_dir`), files in ``cur/``
  with the flag letters, keywords as Dovecot's lowercase letters (``dovecot-keywords``),
  the file's mtime the internal date.

Writers are synchronous: they write into the operating system's page cache, which does
not wait for the disk; the one flush to disk happens at the end (in a thread, see
:mod:`exoimap.app.export_output`). Memory is constant: a chunk is written as it comes.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from exoimap.app.export_paths import FolderPaths
from exoimap.app.mboxrd import MboxrdQuoter, envelope_sender, from_line
from exoimap.store.archive.files import FLAG_LETTERS, encode_folder_dir

__all__ = ["FORMATS", "ExportWriter", "MessageHead", "new_writer"]

#: Format name -> whether its output is a directory (else one file).
FORMATS: dict[str, bool] = {"mbox": True, "eml": False, "maildir": True}

_BUFFER = 1 << 20
_MAX_PIECES = 512  # below every system's IOV_MAX (1024 on Linux)
_KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"  # Dovecot's maildir keyword letters
# The zip format's DOS dates cover 1980 to 2107.
_ZIP_FIRST = _dt.datetime(1980, 1, 1, tzinfo=_dt.UTC)
_ZIP_LAST = _dt.datetime(2107, 12, 31, 23, 59, 58, tzinfo=_dt.UTC)


@dataclass(frozen=True, slots=True)
class MessageHead:
    """What a writer knows of a message before its bytes."""

    uid: int
    flags: frozenset[str]
    internal_date: _dt.datetime
    size: int


class ExportWriter(Protocol):
    """Folders in turn; in each, messages in turn, each given as its chunks."""

    def begin_folder(self, name: str, delimiter: str | None) -> None: ...

    def begin_message(self, head: MessageHead, first_chunk: bytes) -> None: ...

    def write(self, chunk: bytes) -> None: ...

    def end_message(self) -> None: ...

    def end_folder(self) -> None: ...

    def close(self) -> None:
        """Finish the output (a zip's central directory)."""
        ...

    def abort(self) -> None:
        """Release open files after a failure (the output is discarded)."""
        ...


def new_writer(format_name: str, root: Path) -> ExportWriter:
    """The writer of ``format_name`` into ``root`` (a directory, or the zip file)."""
    if format_name == "mbox":
        return MboxWriter(root)
    if format_name == "eml":
        return EmlZipWriter(root)
    if format_name == "maildir":
        return MaildirWriter(root)
    raise ValueError(f"unknown export format {format_name!r}")


class _GatherWriter:
    """Appends to a new file by ``writev`` of the pieces it was given, about 1 MB at a
    time: the chunks are written from where they are, never copied into a buffer first."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._pieces: list[bytes] = []
        self._pending = 0

    def write(self, piece: bytes) -> None:
        if piece:
            self._pieces.append(piece)
            self._pending += len(piece)
            if self._pending >= _BUFFER or len(self._pieces) >= _MAX_PIECES:
                self.flush()

    def flush(self) -> None:
        pieces, first = self._pieces, 0
        while first < len(pieces):
            done = os.writev(self._fd, pieces[first:] if first else pieces)
            while first < len(pieces) and done >= len(pieces[first]):
                done -= len(pieces[first])
                first += 1
            if done:  # a short write ended inside this piece
                pieces[first] = pieces[first][done:]
        self._pieces, self._pending = [], 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.abort()

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._pieces = []


class MboxWriter:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._paths = FolderPaths(".mbox")
        self._file: _GatherWriter | None = None
        self._quoter = MboxrdQuoter()

    def begin_folder(self, name: str, delimiter: str | None) -> None:
        *parents, last = self._paths.path_for(name, delimiter)
        directory = self._root.joinpath(*parents)
        directory.mkdir(parents=True, exist_ok=True)
        self._file = _GatherWriter(directory / f"{last}.mbox")

    def begin_message(self, head: MessageHead, first_chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(from_line(envelope_sender(first_chunk), head.internal_date))
        self._file.write(self._quoter.feed(first_chunk))

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(self._quoter.feed(chunk))

    def end_message(self) -> None:
        assert self._file is not None
        rest = self._quoter.finish()
        # The format needs the message to end a line, then one empty line.
        self._file.write(rest)
        self._file.write(b"\n" if self._quoter.ends_with_newline and not rest else b"\n\n")
        self._quoter = MboxrdQuoter()

    def end_folder(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self.end_folder()

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None


class EmlZipWriter:
    def __init__(self, path: Path) -> None:
        self._handle = open(path, "r+b", buffering=_BUFFER)  # noqa: SIM115 - closed in close/abort
        self._zip = zipfile.ZipFile(
            self._handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        )
        self._paths = FolderPaths(".eml")
        self._folder: tuple[str, ...] = ()
        self._entry: IO[bytes] | None = None

    def begin_folder(self, name: str, delimiter: str | None) -> None:
        self._folder = self._paths.path_for(name, delimiter)
        # A directory entry, so that an empty folder is part of the tree too.
        self._zip.writestr(zipfile.ZipInfo("/".join(self._folder) + "/"), b"")

    def begin_message(self, head: MessageHead, first_chunk: bytes) -> None:
        info = zipfile.ZipInfo("/".join((*self._folder, f"{head.uid}.eml")), _dos_time(head))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        # Extended timestamp (0x5455): the exact modification time in UTC seconds.
        seconds = int(head.internal_date.timestamp())
        info.extra = struct.pack("<HHBl", 0x5455, 5, 1, max(min(seconds, 2**31 - 1), -(2**31)))
        self._entry = self._zip.open(info, "w", force_zip64=head.size >= zipfile.ZIP64_LIMIT)
        self._entry.write(first_chunk)

    def write(self, chunk: bytes) -> None:
        assert self._entry is not None
        self._entry.write(chunk)

    def end_message(self) -> None:
        assert self._entry is not None
        self._entry.close()
        self._entry = None

    def end_folder(self) -> None:
        self._folder = ()

    def close(self) -> None:
        self._zip.close()
        self._handle.close()

    def abort(self) -> None:
        self._handle.close()  # the zip's own close would write a central directory


def _dos_time(head: MessageHead) -> tuple[int, int, int, int, int, int]:
    when = min(max(head.internal_date.astimezone(_dt.UTC), _ZIP_FIRST), _ZIP_LAST)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


class MaildirWriter:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._cur = root / "cur"
        self._file: _GatherWriter | None = None
        self._path: Path | None = None
        self._mtime = 0.0
        self._keywords: dict[str, str] = {}

    def begin_folder(self, name: str, delimiter: str | None) -> None:
        # Archive folder names use "/" and are valid there, so they are valid here too.
        folder_dir = self._root / encode_folder_dir(name) if name.upper() != "INBOX" else None
        base = folder_dir or self._root
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        if folder_dir is not None:
            (folder_dir / "maildirfolder").touch()  # Maildir++: a folder, not a root
        self._cur = base / "cur"
        self._keywords = {}

    def begin_message(self, head: MessageHead, first_chunk: bytes) -> None:
        seconds = int(head.internal_date.timestamp())
        name = f"{seconds}.E{head.uid}.exoimap-export:2,{self._letters(head.flags)}"
        self._path = self._cur / name
        self._mtime = head.internal_date.timestamp()
        self._file = _GatherWriter(self._path)
        self._file.write(first_chunk)

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)

    def end_message(self) -> None:
        assert self._file is not None
        assert self._path is not None
        self._file.close()
        self._file = None
        os.utime(self._path, (self._mtime, self._mtime))

    def end_folder(self) -> None:
        if self._keywords:
            lines = "".join(
                f"{_KEYWORD_LETTERS.index(letter)} {keyword}\n"
                for keyword, letter in self._keywords.items()
            )
            (self._cur.parent / "dovecot-keywords").write_text(lines, encoding="utf-8")

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None

    def _letters(self, flags: frozenset[str]) -> str:
        letters = [FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS]
        for flag in flags:
            if flag in FLAG_LETTERS or flag.startswith("\\"):
                continue
            letter = self._keyword_letter(flag)
            if letter:
                letters.append(letter)
        return "".join(sorted(letters))

    def _keyword_letter(self, keyword: str) -> str | None:
        letter = self._keywords.get(keyword)
        if letter is None and len(self._keywords) < len(_KEYWORD_LETTERS):
            # Keywords are IMAP atoms (no spaces or controls); anything else is not written.
            if not keyword.isprintable() or " " in keyword:
                return None
            letter = self._keywords[keyword] = _KEYWORD_LETTERS[len(self._keywords)]
        return letter
