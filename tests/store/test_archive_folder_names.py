"""Every legal IMAP folder name has an archive directory: inside the archive, one path
component of at most 255 bytes, the same on every run, never shared by two names; a
rebuilt index recovers the names; a folder that truly cannot be created fails alone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from exoimap.app import backup
from exoimap.errors import FolderError, StoreError
from exoimap.store.archive import ArchiveStore
from exoimap.store.archive.files import NAME_FILE, encode_folder_dir, is_hashed_dir
from exoimap.store.base import AppendItem, chunks_of
from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.sync import SyncPolicy

#: 281 characters, an ordinary nested path whose Maildir++ form passes 255 bytes
LONG = "/".join(["Projects 2024 - Customer correspondence and contracts"] * 5) + "/Closed 2023"
HOSTILE = [
    "a//b",
    "a/",
    "/etc/x",
    "/",
    "..",
    "../../../etc/passwd",
    "a/../../b",
    "x\x00y",
    "evil\x1b[2J\x07",
    "&Jjo-&",  # what an invalid modified UTF-7 name decodes to: kept as sent
    "~/.ssh",
    LONG,
    LONG + "/" + LONG,
    "é" * 300,
]
#: what bytes that were neither modified UTF-7 nor UTF-8 decode to (surrogate escapes)
NOT_UNICODE = "bad\udcff\udc80name"


def test_the_281_character_path_gets_a_short_hashed_directory() -> None:
    assert len(LONG) == 281
    dirname = encode_folder_dir(LONG)
    assert is_hashed_dir(dirname)
    assert len(dirname.encode()) <= 255
    assert encode_folder_dir(LONG) == dirname  # stable
    assert encode_folder_dir(LONG + "x") != dirname


def _is_safe_component(dirname: str) -> bool:
    return (
        dirname.startswith(".")
        and dirname not in (".", "..")
        and "/" not in dirname
        and "\x00" not in dirname
        and len(dirname.encode()) <= 255
        and all(0x20 <= ord(ch) < 0x7F for ch in dirname)
    )


def test_hostile_names_map_to_one_safe_component_each() -> None:
    names = [*HOSTILE, NOT_UNICODE]
    dirnames = [encode_folder_dir(name) for name in names]
    assert all(_is_safe_component(d) for d in dirnames), dirnames
    assert len(set(dirnames)) == len(names)


_HOSTILE_TEXT = st.text(
    alphabet=st.sampled_from(["/", ".", "~", "\\", "&", "-", "a", "\x00", "\x1b", "é", "😀"]),
    max_size=120,
)


@given(st.lists(_HOSTILE_TEXT, min_size=2, max_size=6, unique=True))
def test_no_two_names_share_a_directory(names: list[str]) -> None:
    names = [n for n in names if n.upper() != "INBOX"]
    dirnames = [encode_folder_dir(n) for n in names]
    assert all(_is_safe_component(d) for d in dirnames if d)
    assert len(set(dirnames)) == len(names)


async def _items(n: int) -> AsyncIterator[AppendItem]:
    data = sample_message(n)
    yield AppendItem(chunks=chunks_of(data), size=len(data), flags=frozenset())


async def _create_and_fill(root: Path) -> list[str]:
    archive = ArchiveStore.open(root, fsync_mode="none")
    try:
        for n, name in enumerate(HOSTILE):
            if await archive.folder_record(name) is None:  # "a/" came with "a//b"
                await archive.create_folder(name)
            async with archive.open_folder(name) as folder:
                await folder.append(_items(n))
        return sorted(f.name for f in await archive.list_folders())
    finally:
        await archive.close()


def _every_path(top: Path) -> set[Path]:
    return {Path(d) / f for d, dirs, files in os.walk(top) for f in [*dirs, *files]}


def test_hostile_names_are_created_inside_the_archive_and_listed_back(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "archive"
    listed = asyncio.run(_create_and_fill(root))
    for name in HOSTILE:
        assert name in listed
    # nothing was written anywhere but inside the archive
    assert _every_path(tmp_path) - _every_path(root) == {tmp_path / "deep", root}
    # every folder directory sits directly in the Maildir root
    maildir = root / "maildir"
    assert all(p.parent == maildir for p in maildir.glob(".*") if p.is_dir())


def test_a_rebuilt_index_recovers_hashed_names_or_says_which_it_could_not(
    tmp_path: Path,
) -> None:
    root = tmp_path / "archive"
    asyncio.run(_create_and_fill(root))
    lost = root / "maildir" / encode_folder_dir("a//b") / NAME_FILE
    lost.unlink()
    (root / "index.sqlite").unlink()

    async def reopen() -> tuple[list[str], list[str], dict[str, int]]:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            names = [f.name for f in await archive.list_folders()]
            counts = {n: (await archive.folder_state(n)).exists for n in names}
            return names, archive.recovery_notes, counts
        finally:
            await archive.close()

    names, notes, counts = asyncio.run(reopen())
    unnamed = "unnamed/" + encode_folder_dir("a//b")
    for name in HOSTILE:
        if name != "a//b":
            assert name in names
    assert unnamed in names
    assert counts[unnamed] == 1  # its message is kept
    assert any("could not be recovered" in n and unnamed in n for n in notes)


def test_renaming_a_hashed_folder_keeps_its_name_recoverable(tmp_path: Path) -> None:
    root = tmp_path / "archive"

    async def rename() -> None:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            await archive.create_folder("old//name")
            async with archive.open_folder("old//name") as folder:
                await folder.append(_items(1))  # a rebuild needs message files
            await archive.rename_folder("old//name", LONG)
        finally:
            await archive.close()

    asyncio.run(rename())
    (root / "index.sqlite").unlink()

    async def names() -> list[str]:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            return [f.name for f in await archive.list_folders()]
        finally:
            await archive.close()

    assert LONG in asyncio.run(names())


def test_a_folder_that_cannot_be_created_fails_alone(tmp_path: Path) -> None:
    source = MemoryStore()
    for name in ("Blocked", "a//b", LONG, NOT_UNICODE):
        source.create_folder_now(name)
        source.add_message(name, sample_message(len(name)))
    source.add_message("INBOX", sample_message(1))
    root = tmp_path / "archive"
    (root / "maildir").mkdir(parents=True)
    (root / "maildir" / ".Blocked").write_bytes(b"a file where the folder should go")

    async def run() -> tuple[object, dict[str, int]]:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            report = await backup(source, archive, SyncPolicy())
            names = [f.name for f in await archive.list_folders()]
            counts = {n: (await archive.folder_state(n)).exists for n in names}
            return report, counts
        finally:
            await archive.close()

    report, counts = asyncio.run(run())
    failed = {f.source: f.errors for f in report.folders if f.errors}  # type: ignore[attr-defined]
    assert sorted(failed) == sorted(["Blocked", NOT_UNICODE])
    assert all(isinstance(e, StoreError) for errors in failed.values() for e in errors)
    assert "\n" not in str(failed["Blocked"][0])
    assert "neither modified UTF-7 nor UTF-8" in str(failed[NOT_UNICODE][0])
    assert counts["INBOX"] == 1
    assert counts["a//b"] == 1
    assert counts[LONG] == 1


def test_a_name_sqlite_cannot_hold_is_refused_clearly_on_create_and_rename(
    tmp_path: Path,
) -> None:
    async def attempt() -> list[str]:
        archive = ArchiveStore.open(tmp_path / "archive", fsync_mode="none")
        errors: list[str] = []
        try:
            await archive.create_folder("fine")
            for action in (
                archive.create_folder(NOT_UNICODE),
                archive.rename_folder("fine", NOT_UNICODE),
            ):
                try:
                    await action
                except FolderError as exc:
                    errors.append(str(exc))
            assert [f.name for f in await archive.list_folders()] == ["INBOX", "fine"]
        finally:
            await archive.close()
        return errors

    errors = asyncio.run(attempt())
    assert len(errors) == 2
    assert all("neither modified UTF-7 nor UTF-8" in e for e in errors)
