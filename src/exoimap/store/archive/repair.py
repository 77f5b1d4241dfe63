"""Opening the archive index, rebuilding a damaged one, and checking the files against it.

A damaged index (not a database, or failing ``PRAGMA quick_check``: :class:`IndexDamaged`)
is moved to ``damaged/`` and a new one is rebuilt from the message files: folder names from
directory names, archive UIDVALIDITY and UIDs from file names, flags from the ``:2,``
letters, SHA-256, size and Message-ID from the bytes. What the files cannot tell is lost
from the index, and the notes say so: keywords other than ``$Forwarded``, the time zone of
internal dates, the name of a folder whose directory is hashed and whose name file is lost
(it is then named ``unnamed/<directory>``), and the origin of each message (the next
backup matches the messages to the source again by Message-ID and size, so nothing is
downloaded twice).

Only the archive's worker thread calls this (see :mod:`exoimap.store.archive.worker`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from exoimap.protocol.headers import parse_message_id
from exoimap.store.archive.files import (
    Maildir,
    flags_from_letters,
    letters_for,
    parse_base,
    sha256_of,
    split_name,
)
from exoimap.store.archive.index import (
    Index,
    IndexDamaged,
    IndexStamp,
    MessageRow,
    RebuiltFolder,
    index_stamp,
)

__all__ = ["FileReport", "open_index", "verify_files"]


def open_index(
    base: Path, maildir: Maildir, *, trusted: IndexStamp | None = None
) -> tuple[Index, list[str]]:
    """Open ``base/index.sqlite``; if it is damaged, keep it aside and rebuild it.

    An index that is missing or empty (truncated to nothing) while message files exist is
    rebuilt too: otherwise the next backup would store every message a second time.
    ``trusted`` is the stamp of the file as a clean session of this process left it; while
    the file still has that stamp, its integrity check is skipped."""
    path = base / "index.sqlite"
    unchanged = trusted is not None and index_stamp(path) == trusted
    index: Index | None = None
    try:
        index = Index(path, durable=maildir.durable)
        index.check_and_init(quick_check=not unchanged)
        if index.initialized():
            return index, []
        if not maildir.has_message_files():
            index.mark_initialized()
            return index, []
        index.close()
        reason = "the index is missing or empty but message files exist"
    except IndexDamaged as exc:
        if index is not None:
            index.close()
        reason = str(exc.__cause__ or exc)
    except BaseException:
        if index is not None:
            index.close()
        raise
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    kept = base / "damaged" / f"index-{stamp}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            os.replace(source, Path(str(kept) + suffix))
    index = Index(path, durable=maildir.durable)
    try:
        index.check_and_init()
        folders = _folders_from_files(maildir)
        index.rebuild(folders)
        index.mark_initialized()
    except BaseException:
        index.close()
        raise
    count = sum(len(f.rows) for f in folders)
    unnamed = [f.name for f in folders if f.name.startswith(UNNAMED)]
    lost = (
        f" The names of {len(unnamed)} folders could not be recovered (their name files are "
        f"missing or damaged); they are kept as {', '.join(unnamed)}."
        if unnamed
        else ""
    )
    return index, [
        f"the archive index was damaged ({reason}); it was kept as {kept} and rebuilt from "
        f"{count} message files in {len(folders)} folders. Keywords other than $Forwarded and "
        "time zones of internal dates could not be recovered; the next backup matches the "
        f"messages to the server again without downloading them twice.{lost}"
    ]


#: Where a rebuilt index puts a folder whose name its directory cannot tell.
UNNAMED = "unnamed/"


def _folders_from_files(maildir: Maildir) -> list[RebuiltFolder]:
    folders: list[RebuiltFolder] = []
    names: set[str] = set()
    for dirname in maildir.folder_dirnames():
        parsed = [(p, parse_base(split_name(p.name)[0])) for p in maildir.message_files(dirname)]
        validities = Counter(info[1] for _p, info in parsed if info is not None)
        uidvalidity = validities.most_common(1)[0][0] if validities else None
        rows: list[MessageRow] = []
        foreign: list[Path] = []
        for file_path, info in parsed:
            if info is None or info[1] != uidvalidity:
                foreign.append(file_path)
                continue
            rows.append(_row_for_file(file_path, info[2], info[0]))
        next_uid = max((r.uid for r in rows), default=0) + 1
        for file_path in sorted(foreign):  # files of other programs get the next UIDs
            rows.append(_row_for_file(file_path, next_uid, int(file_path.stat().st_mtime)))
            next_uid += 1
        name = maildir.folder_name(dirname)
        if name is None or name in names:  # two hand-made directories may decode alike
            name = f"{UNNAMED}{dirname}"
        names.add(name)
        folders.append(
            RebuiltFolder(
                name=name,
                dirname=dirname,
                role="inbox" if dirname == "" else None,
                uidvalidity=uidvalidity,
                uidnext=next_uid,
                rows=rows,
            )
        )
    return folders


def _row_for_file(path: Path, uid: int, epoch: int) -> MessageRow:
    data_head = b""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if not data_head:
                data_head = chunk[:65536]
            digest.update(chunk)
            size += len(chunk)
    base, letters = split_name(path.name)
    return MessageRow(
        uid=uid,
        sha256=digest.hexdigest(),
        size=size,
        message_id=parse_message_id(data_head),
        internal_date=_dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(),
        flags=flags_from_letters(letters),
        file=base,
        origin_uidvalidity=None,
        origin_uid=None,
        state="stored",
        gone_at=None,
    )


# --- verification ------------------------------------------------------------------------


@dataclass(slots=True)
class FileReport:
    """What :func:`verify_files` found; ``ok`` when the files and the index agree."""

    checked: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    corrupt: list[tuple[str, int]] = field(default_factory=list)
    misnamed: list[tuple[str, int]] = field(default_factory=list)
    unindexed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.unindexed)


def verify_files(index: Index, maildir: Maildir, *, deep: bool) -> FileReport:
    """Compare every folder's files with its index rows (``deep``: re-hash every file)."""
    report = FileReport()
    for folder in index.folders():
        directory = maildir.folder_dir(folder.dirname)
        with index.files_on_disk(folder.id, maildir.entries(folder.dirname)):
            for row, found in index.rows_with_files(folder.id):
                report.checked += 1
                if found is None:
                    report.missing.append((folder.name, row.uid))
                    continue
                path = directory / found
                if split_name(path.name)[1] != letters_for(row.flags):
                    report.misnamed.append((folder.name, row.uid))
                if path.stat().st_size != row.size or (deep and sha256_of(path) != row.sha256):
                    report.corrupt.append((folder.name, row.uid))
            unindexed = index.unindexed_files()
        report.unindexed += [(folder.name, base) for base in unindexed]
    return report
