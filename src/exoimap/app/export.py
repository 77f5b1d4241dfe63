"""Export an account's archive to mbox, a zip of ``.eml`` files, or a Maildir.

Reads only the archive, through the :class:`~exoimap.store.base.Store` API: folders are
listed, messages selected from the index (folder globs, internal-date range, messages
deleted on the server only when asked), and bodies streamed chunk by chunk into one of the
writers of :mod:`exoimap.app.export_writers`, so memory stays constant whatever the
message sizes. The output appears at OUT only once it is complete and on disk
(:mod:`exoimap.app.export_output`). The whole export is one ``archive.exported`` audit
record.

A message whose file is missing from the archive is skipped and reported, one whose file
has another length than the index says is exported and reported (the export finishes, the
CLI exits with 4); a failure in the middle of a message's bytes, a full disk
or any other write error stops the export and removes the partial output.

Not exported from :mod:`exoimap.app` itself, so that a sync (which imports that package)
does not load the writers and ``zipfile``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import errno
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exoimap import audit
from exoimap.app.accounts import archive_path, folder_filter
from exoimap.app.export_output import ExportOutput, os_error
from exoimap.app.export_writers import FORMATS, ExportWriter, MessageHead, new_writer
from exoimap.config import AccountConfig, Paths
from exoimap.errors import ConfigError, ExoimapError, MessageError, StoreError
from exoimap.store.archive import ArchiveFolder, ArchiveStore
from exoimap.store.base import FetchedMessage, FolderInfo, MessageInfo

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "export_account", "export_archive"]

# UIDs per fetch: the archive locates a batch's files in one hop to its worker thread.
_FETCH_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export, and how. ``since``/``until`` are inclusive days in UTC."""

    format: str
    folders: Sequence[str] = ()
    exclude: Sequence[str] = ()
    since: _dt.date | None = None
    until: _dt.date | None = None
    include_deleted: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"unknown export format {self.format!r}; use one of {', '.join(FORMATS)}"
            )
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"--since {self.since} is after --until {self.until}")

    def wants(self, message: MessageInfo) -> bool:
        if message.gone_at is not None and not self.include_deleted:
            return False
        date = message.internal_date
        if date is None:
            return self.since is None and self.until is None
        day = date.astimezone(_dt.UTC).date()
        if self.since is not None and day < self.since:
            return False
        return self.until is None or day <= self.until


@dataclass(slots=True)
class ExportResult:
    """What an export wrote (``failed``: one line per message skipped, or exported from a
    file whose length differs from the index, saying why)."""

    out: Path
    format: str
    folders: int = 0
    messages: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


async def export_account(
    account: AccountConfig, paths: Paths, out: Path, options: ExportOptions
) -> ExportResult:
    """Export the account's archive to ``out`` (an audited archive read)."""
    root = archive_path(account, paths)
    if not (root / "index.sqlite").is_file():
        raise StoreError(
            f"account {account.name!r} has no archive at {root}; "
            f"back it up first: `exoimap sync {account.name}`"
        )
    output = ExportOutput.prepare(out, directory=FORMATS[options.format])
    result = ExportResult(out=output.out, format=options.format)
    exported: list[str] = []
    try:
        store = ArchiveStore.open(root, create=False)
        try:
            result.notes.extend(store.recovery_notes)
            exported = await export_archive(store, output, options, result)
        finally:
            await store.close()
    except BaseException:
        _emit(account.name, result, exported, ok=False)
        note = output.discard()
        if note:
            result.notes.append(note)
        raise
    _emit(account.name, result, exported, ok=True)
    return result


async def export_archive(
    store: ArchiveStore, output: ExportOutput, options: ExportOptions, result: ExportResult
) -> list[str]:
    """Write the selected folders of an open archive into ``output`` and put it in place;
    counts go into ``result``. Returns the names of the folders exported."""
    writer: ExportWriter | None = None
    exported: list[str] = []
    try:
        writer = new_writer(options.format, output.partial)
        for info in _selected(await store.list_folders(), options):
            async with store.open_folder(info.name) as folder:
                writer.begin_folder(info.name, info.delimiter)
                await _export_folder(folder, writer, options, result)
                writer.end_folder()
            exported.append(info.name)
            result.folders += 1
        writer.close()
    except OSError as exc:
        if writer is not None:
            writer.abort()
        needed = await _export_size(store, options) if exc.errno == errno.ENOSPC else None
        raise os_error(exc, output.out, needed=needed) from exc
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    await asyncio.to_thread(output.commit)
    return exported


async def _export_size(store: ArchiveStore, options: ExportOptions) -> int | None:
    """The bytes of every message the export selects (None when the index cannot say)."""
    total = 0
    try:
        for info in _selected(await store.list_folders(), options):
            async with store.open_folder(info.name) as folder:
                listing = await folder.list_messages(detail=True)
            total += sum(m.size or 0 for m in listing.messages if options.wants(m))
    except ExoimapError:
        return None
    return total


def _selected(folders: list[FolderInfo], options: ExportOptions) -> list[FolderInfo]:
    include: Callable[[str], bool] = folder_filter(options.folders, options.exclude) or (
        lambda _name: True
    )
    return sorted(
        (
            info
            for info in folders
            if info.selectable
            and include(info.name)
            and (info.gone_at is None or options.include_deleted)
        ),
        key=lambda info: info.name,
    )


async def _export_folder(
    folder: ArchiveFolder, writer: ExportWriter, options: ExportOptions, result: ExportResult
) -> None:
    listing = await folder.list_messages(detail=True)
    pending = [m.uid for m in listing.messages if options.wants(m)]
    while pending:
        batch = pending[:_FETCH_BATCH]
        try:
            async for message in folder.fetch(batch):
                await _export_message(folder.name, message, writer, result)
        except MessageError as exc:
            if exc.uid is None or exc.uid not in batch:
                raise StoreError(f"exporting {folder.name!r} failed: {exc}") from exc
            # The archive's file of that message is missing: report it, go on after it.
            result.failed.append(f"{folder.name!r}: UID {exc.uid}: {exc}")
            pending = [uid for uid in pending if uid > exc.uid]
            continue
        pending = pending[len(batch) :]


async def _export_message(
    folder: str, message: FetchedMessage, writer: ExportWriter, result: ExportResult
) -> None:
    chunks = message.chunks
    try:
        first = await anext(chunks, b"")
    except MessageError as exc:  # nothing written yet: skip just this one
        result.failed.append(f"{folder!r}: UID {message.uid}: {exc}")
        return
    writer.begin_message(
        MessageHead(message.uid, message.flags, message.internal_date, message.size), first
    )
    written = len(first)
    try:
        # Stop at the message's size instead of asking the store for the end once more
        # (for most messages that would double the hops to the archive's worker thread).
        while written < message.size:
            chunk = await anext(chunks, b"")
            if not chunk:
                break
            writer.write(chunk)
            written += len(chunk)
    except MessageError as exc:  # half a message is in the output: stop, do not skip
        raise StoreError(f"reading UID {message.uid} of {folder!r} failed midway: {exc}") from exc
    finally:
        await _abandon(chunks)
    writer.end_message()
    result.messages += 1
    result.bytes += written
    if written != message.size:  # a file cut short (or grown) outside any sync
        result.failed.append(
            f"{folder!r}: UID {message.uid}: the archive file holds {written} bytes, "
            f"its index says {message.size}; exported as it is"
        )


async def _abandon(chunks: AsyncIterator[bytes]) -> None:
    """Close a body stream that was read up to its size (the store need not read on)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def _emit(account: str, result: ExportResult, folders: list[str], *, ok: bool) -> None:
    audit.emit(
        audit.ArchiveExported(
            account=account,
            outcome="success" if ok else "failure",
            destination=str(result.out),
            format=result.format,
            folder=folders[0] if len(folders) == 1 else None,
            messages=result.messages,
            bytes=result.bytes,
        )
    )
