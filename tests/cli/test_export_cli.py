"""``exoimap export`` end to end: a real archive made by a real backup (from the in-memory
store), exported through the CLI, and read back with the standard library's readers (and
the Maildir export by Dovecot)."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import mailbox
import os
import re
import shutil
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.app import export_writers
from exoimap.app.export import ExportOptions, export_account
from exoimap.app.operations import backup
from exoimap.cli import EXIT_FAILURE, EXIT_PARTIAL, EXIT_USAGE, main
from exoimap.config import Paths, load_config
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.store.archive import ArchiveStore
from exoimap.store.memory import MemoryStore
from exoimap.store.remote import RemoteImapStore

from .sync_helpers import isolated_home

UTC = dt.UTC
_UNQUOTE = re.compile(rb"^>(>*From )", re.MULTILINE)

TRICKY = (
    b"Return-Path: <ada@example.com>\r\nFrom: Ada <ada@example.com>\r\nSubject: quoting\r\n"
    b"Message-ID: <tricky@example.com>\r\n\r\nFrom the start of a line\r\n>From quoted\r\n"
    b">>From twice\r\nnot From here\r\nFrom"  # no line end at the very end
)
# Over 600 KB of "From " lines: the archive's 256 KB chunks end in the middle of them.
BIG = b"Subject: big\r\nMessage-ID: <big@example.com>\r\n\r\n" + b"".join(
    b"From line %06d with some text to make it longer\r\n>From %d\r\n" % (i, i) for i in range(9000)
)
HOSTILE = ["../x", "a/../../b", "ctrl\x01\x1b[31mred", "L" * 240, "Dup\x01", "Dup\x02"]


def _msg(n: int, extra: bytes = b"") -> bytes:
    return (
        b"From: Bob <bob@example.com>\r\nSubject: message %d\r\nMessage-ID: <m%d@example.com>"
        b"\r\n\r\nHello %d\r\n%s" % (n, n, n, extra)
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolated_home(tmp_path, monkeypatch)
    assert main(["account", "add", "work", "--email", "ada@example.com"]) == 0
    return home


def _source() -> MemoryStore:
    source = MemoryStore()
    for name in ("Sent Items", "Projects", "Projects/2024", "Old", *HOSTILE):
        source.create_folder_now(name)
    source.add_message(
        "INBOX", TRICKY, flags=["\\Seen"], internal_date=dt.datetime(2024, 5, 1, 8, tzinfo=UTC)
    )
    source.add_message("INBOX", BIG, internal_date=dt.datetime(2024, 6, 2, 9, tzinfo=UTC))
    source.add_message("INBOX", _msg(3), internal_date=dt.datetime(2023, 1, 9, tzinfo=UTC))
    source.add_message(
        "Sent Items",
        _msg(4),
        flags=["\\Seen", "\\Flagged", "\\Answered", "$Label1"],
        internal_date=dt.datetime(2024, 6, 3, 23, 59, 59, tzinfo=UTC),
    )
    source.add_message("Projects/2024", _msg(5), internal_date=dt.datetime(2024, 7, 1, tzinfo=UTC))
    source.add_message("Old", _msg(6), internal_date=dt.datetime(2022, 2, 2, tzinfo=UTC))
    for n, name in enumerate(HOSTILE, start=10):
        source.add_message(name, _msg(n), internal_date=dt.datetime(2024, 1, 1, tzinfo=UTC))
    return source


async def _back_up(root: Path, source: MemoryStore) -> None:
    archive = ArchiveStore.open(root, fsync_mode="none")
    try:
        report = await backup(source, archive)
        assert report.ok, report.errors
    finally:
        await archive.close()


@pytest.fixture
def archived(home: Path) -> MemoryStore:
    """An archive of ``work`` holding what ``_source`` had, after a second backup that saw
    INBOX's third message and the folder ``Old`` deleted on the server."""
    source = _source()
    root = Paths.from_env().archive_dir("work")
    asyncio.run(_back_up(root, source))
    source.expunge_now("INBOX", [3])
    source.delete_folder_now("Old")
    asyncio.run(_back_up(root, source))
    return source


def _exported_records() -> list[audit.AuditRecord]:
    return [
        r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == "archive.exported"
    ]


def _mbox_messages(path: Path) -> list[bytes]:
    box = mailbox.mbox(path, create=False)
    try:
        return [_UNQUOTE.sub(rb"\1", box.get_bytes(key)) for key in box.iterkeys()]
    finally:
        box.close()


def _inside(root: Path) -> list[Path]:
    found = sorted(root.rglob("*"))
    real = root.resolve()
    for path in found:
        assert path.resolve().is_relative_to(real), path
        assert not re.search(r"[\x00-\x1f\x7f]", path.name), path
        assert len(path.name.encode()) <= 255
    return found


def test_mbox_round_trips_byte_exact_and_is_audited(
    archived: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mbox"
    assert main(["export", "work", "--format", "mbox", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "work: exported 10 messages from 14 folders" in stdout
    inbox = _mbox_messages(out / "INBOX.mbox")
    # mbox needs a line end after each message: the one that had none gains "\n".
    assert inbox == [TRICKY + b"\n", BIG]  # the message deleted on the server is left out
    raw = (out / "INBOX.mbox").read_bytes()
    assert raw.startswith(b"From ada@example.com Wed May  1 08:00:00 2024\n")
    assert b"\nFrom MAILER-DAEMON Sun Jun  2 09:00:00 2024\n" in raw
    assert _mbox_messages(out / "Sent Items.mbox") == [_msg(4)]
    assert _mbox_messages(out / "Projects" / "2024.mbox") == [_msg(5)]
    assert not (out / "Old.mbox").exists()  # gone from the server
    assert not list(tmp_path.glob("mbox.partial-*"))
    [record] = _exported_records()
    assert record.outcome == "success"
    assert record.account == "work"
    assert record.data["destination"] == str(out)
    assert record.data["format"] == "mbox"
    assert record.data["messages"] == 10
    assert record.data["bytes"] == len(TRICKY) + len(BIG) + sum(
        len(_msg(n)) for n in (4, 5, *range(10, 16))
    )


def test_hostile_folder_names_stay_inside_out(archived: MemoryStore, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "mbox"
    out.parent.mkdir()
    assert main(["export", "work", "--format", "mbox", str(out)]) == 0
    files = [p for p in _inside(out) if p.is_file()]
    names = {str(p.relative_to(out)) for p in files}
    assert "_../x.mbox" in names
    assert "a/_../_../b.mbox" in names
    assert "ctrl__[31mred.mbox" in names
    assert {"Dup_.mbox", "Dup_~2.mbox"} <= names
    assert any(n.startswith("L" * 180) and n.endswith(".mbox") for n in names)
    assert not (tmp_path / "x.mbox").exists()
    assert not (tmp_path / "b.mbox").exists()
    every = sorted(m for p in files for m in _mbox_messages(p))
    wanted = [TRICKY + b"\n", BIG, *(_msg(n) for n in (4, 5, *range(10, 16)))]
    assert every == sorted(wanted)


def test_eml_zip_holds_each_message_byte_exact_with_its_date(
    archived: MemoryStore, tmp_path: Path
) -> None:
    out = tmp_path / "export.zip"
    assert main(["export", "work", "--format", "eml", "--include-deleted", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        by_name = {info.filename: info for info in archive.infolist()}
        assert archive.read("INBOX/1.eml") == TRICKY
        assert archive.read("INBOX/2.eml") == BIG
        assert archive.read("INBOX/3.eml") == _msg(3)  # --include-deleted
        assert archive.read("Old/1.eml") == _msg(6)
        assert archive.read("Projects/2024/1.eml") == _msg(5)
        assert "Projects/" in by_name  # the tree, empty levels included
        assert by_name["Sent Items/1.eml"].date_time == (2024, 6, 3, 23, 59, 58)
        assert by_name["INBOX/1.eml"].date_time == (2024, 5, 1, 8, 0, 0)
        for name in by_name:
            assert not name.startswith("/")
            assert ".." not in name.split("/"), name
        archive.extractall(tmp_path / "unzipped")
    _inside(tmp_path / "unzipped")


def test_maildir_copy_reads_back_with_flags_and_dates(
    archived: MemoryStore, tmp_path: Path
) -> None:
    out = tmp_path / "maildir"
    out.mkdir()  # an empty directory is accepted
    assert main(["export", "work", "--format", "maildir", str(out)]) == 0
    box = mailbox.Maildir(out, factory=None, create=False)
    inbox = sorted(box.get_bytes(key) for key in box.iterkeys())
    assert inbox == sorted([TRICKY, BIG])
    assert {box.get_message(k).get_flags() for k in box.iterkeys()} == {"S", ""}
    sent = box.get_folder("Sent Items")
    [key] = sent.keys()
    assert sent.get_bytes(key) == _msg(4)
    assert sent.get_message(key).get_flags() == "FRSa"
    assert (out / ".Sent Items" / "dovecot-keywords").read_text() == "0 $Label1\n"
    [path] = (out / ".Sent Items" / "cur").iterdir()
    assert os.stat(path).st_mtime == dt.datetime(2024, 6, 3, 23, 59, 59, tzinfo=UTC).timestamp()
    assert "Projects.2024" in box.list_folders()
    assert box.get_folder("Projects.2024").get_bytes(
        next(iter(box.get_folder("Projects.2024").keys()))
    ) == _msg(5)
    _inside(out)


def test_filters_pick_folders_and_days(
    archived: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "filtered"
    args = ["export", "work", "--format", "mbox", "--folder", "INBOX", "--folder", "Sent*"]
    args += ["--since", "2024-06-02", "--until", "2024-06-03", str(out)]
    assert main(args) == 0
    assert "exported 2 messages from 2 folders" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["INBOX.mbox", "Sent Items.mbox"]
    assert _mbox_messages(out / "INBOX.mbox") == [BIG]
    assert _mbox_messages(out / "Sent Items.mbox") == [_msg(4)]
    out2 = tmp_path / "excluded"
    args = ["export", "work", "--format", "mbox", "--exclude", "*", "--include-deleted", str(out2)]
    assert main(args) == 0
    assert list(out2.iterdir()) == []
    [_, record] = _exported_records()
    assert record.data["messages"] == 0


def test_a_non_empty_out_is_refused_and_left_alone(
    archived: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_bytes(b"mine")
    assert main(["export", "work", "--format", "mbox", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is a directory that is not empty; an export never overwrites" in err
    assert len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    zip_out = tmp_path / "old.zip"
    zip_out.write_bytes(b"old")
    assert main(["export", "work", "--format", "eml", str(zip_out)]) == EXIT_USAGE
    assert "is a file that is not empty" in capsys.readouterr().err
    assert zip_out.read_bytes() == b"old"
    assert main(["export", "work", "--format", "eml", str(out)]) == EXIT_USAGE
    assert main(["export", "work", "--format", "mbox", str(tmp_path / "no" / "dir")]) == EXIT_USAGE
    assert "the directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "home", "old.zip"]
    assert _exported_records() == []


def test_a_missing_or_cut_archive_file_is_reported_with_exit_4(
    archived: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cur = Paths.from_env().archive_dir("work") / "maildir" / "cur"
    [first] = [p for p in cur.iterdir() if "U1." in p.name]
    first.unlink()
    [second] = [p for p in cur.iterdir() if "U2." in p.name]
    cut = BIG.index(b"\r\n", 1000) + 2
    second.write_bytes(BIG[:cut])
    out = tmp_path / "mbox"
    assert main(["export", "work", "--format", "mbox", str(out)]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert (
        "skipped: 'INBOX': UID 1: the archive file of UID 1 in 'INBOX' is missing" in captured.err
    )
    assert f"UID 2: the archive file holds {cut} bytes, its index says {len(BIG)}" in captured.err
    assert "exported 9 messages" in captured.out
    assert _mbox_messages(out / "INBOX.mbox") == [BIG[:cut]]


def test_disk_full_is_one_line_and_removes_the_partial_output(
    archived: MemoryStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(self: object, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export_writers.MboxWriter, "write", full)
    out = tmp_path / "mbox"
    assert main(["export", "work", "--format", "mbox", str(out)]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no space left on the disk of " in err
    assert "while exporting to" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    [record] = _exported_records()
    assert record.outcome == "failure"


def test_usage_errors(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "o")
    assert main(["export", "work", "--format", "mbox", out]) == EXIT_FAILURE
    assert "has no archive at" in capsys.readouterr().err
    assert main(["export", "nobody", "--format", "mbox", out]) == EXIT_USAGE
    assert main(["export", "work", "--format", "pst", out]) == EXIT_USAGE
    args = ["export", "work", "--format", "mbox", "--since", "2024-02-01", "--until", "2024-01-01"]
    assert main([*args, out]) == EXIT_USAGE
    assert "is after --until" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_memory_stays_flat_for_a_large_message(home: Path, tmp_path: Path) -> None:
    body = b"Subject: large\r\n\r\n" + b"From here to there, a line of text.\r\n" * 500_000
    source = MemoryStore()
    source.add_message("INBOX", body, internal_date=dt.datetime(2024, 1, 1, tzinfo=UTC))
    paths = Paths.from_env()
    asyncio.run(_back_up(paths.archive_dir("work"), source))
    account = load_config(paths).account("work")
    del source
    for format_name in ("mbox", "eml", "maildir"):
        out = tmp_path / f"big-{format_name}"
        tracemalloc.start()
        try:
            result = asyncio.run(
                export_account(account, paths, out, ExportOptions(format=format_name))
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.bytes == len(body)  # 18.5 MB
        assert peak < 6 * 1024 * 1024, (format_name, peak)
    assert _mbox_messages(tmp_path / "big-mbox" / "INBOX.mbox") == [body]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(spare_users=1) as server:
        yield server


async def _read_back(
    dovecot: DovecotServer, user: str, folder: str
) -> list[tuple[bytes, frozenset[str], dt.datetime]]:
    endpoint = Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file))
    store = await RemoteImapStore.connect(
        endpoint, PasswordCredentials(user, dovecot.password(user)), max_connections=1
    )
    try:
        async with store.open_folder(folder) as opened:
            listing = await opened.list_messages()
            found = []
            async for message in opened.fetch([m.uid for m in listing.messages]):
                body = b"".join([chunk async for chunk in message.chunks])
                found.append((body, message.flags, message.internal_date))
            return found
    finally:
        await store.close()


def test_dovecot_serves_the_maildir_export(
    archived: MemoryStore, tmp_path: Path, dovecot: DovecotServer
) -> None:
    out = tmp_path / "maildir"
    args = ["export", "work", "--format", "maildir", "--folder", "INBOX", "--folder", "Sent*"]
    assert main([*args, str(out)]) == 0
    user = dovecot.new_mailbox()
    # The test server keeps folders as directories (LAYOUT=fs); the folders' own Maildirs,
    # file names and dovecot-keywords are what Dovecot reads either way.
    shutil.copytree(out, dovecot.maildir(user), ignore=shutil.ignore_patterns(".*"))
    shutil.copytree(out / ".Sent Items", dovecot.maildir(user, "Sent Items"))
    dovecot.fix_ownership(user)
    inbox = asyncio.run(_read_back(dovecot, user, "INBOX"))
    assert sorted(inbox) == sorted(
        [
            (TRICKY, frozenset({"\\Seen"}), dt.datetime(2024, 5, 1, 8, tzinfo=UTC)),
            (BIG, frozenset(), dt.datetime(2024, 6, 2, 9, tzinfo=UTC)),
        ]
    )
    [(body, flags, when)] = asyncio.run(_read_back(dovecot, user, "Sent Items"))
    assert body == _msg(4)
    assert flags == {"\\Seen", "\\Flagged", "\\Answered", "$Label1"}
    assert when == dt.datetime(2024, 6, 3, 23, 59, 59, tzinfo=UTC)
