"""The seed generator: deterministic, realistic, and its Maildir++ / store outputs."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import mailbox
import statistics
from pathlib import Path

import pytest

from exoimap.errors import ConfigError
from exoimap.protocol.utf7 import decode_mailbox
from exoimap.sandbox.seed import (
    SeedOptions,
    generate,
    maildir_folder_path,
    seed_store,
    write_maildir,
)
from exoimap.store.memory import MemoryStore


def _digest(options: SeedOptions) -> str:
    h = hashlib.sha256()
    for m in generate(options):
        h.update(m.folder.encode() + repr(sorted(m.flags)).encode())
        h.update(m.internal_date.isoformat().encode() + m.data)
    return h.hexdigest()


def test_same_options_give_the_same_bytes_and_another_seed_differs() -> None:
    a = SeedOptions(messages=150, seed=3)
    assert _digest(a) == _digest(SeedOptions(messages=150, seed=3))
    assert _digest(a) != _digest(SeedOptions(messages=150, seed=4))


def test_exact_count_and_crlf_only() -> None:
    messages = list(generate(SeedOptions(messages=123, seed=1)))
    assert len(messages) == 123
    for m in messages:
        assert m.data.count(b"\n") == m.data.count(b"\r\n")
        assert m.data.endswith(b"\r\n")
        assert m.internal_date.tzinfo is not None


@pytest.fixture(scope="module")
def sample() -> list:  # type: ignore[type-arg]
    return list(generate(SeedOptions(messages=1500, seed=11)))


def test_sizes_look_like_real_mail(sample: list) -> None:  # type: ignore[type-arg]
    sizes = [len(m.data) for m in sample]
    assert 6_000 < statistics.median(sizes) < 16_000
    assert 18_000 < statistics.mean(sizes) < 60_000
    assert sum(s > 1_000_000 for s in sizes) >= 1  # the multi-MB tail


def test_dates_spread_over_years_and_roughly_ascend(sample: list) -> None:  # type: ignore[type-arg]
    years = {m.internal_date.year for m in sample}
    assert len(years) >= 6
    first, last = sample[0].internal_date, sample[-1].internal_date
    assert last - first > dt.timedelta(days=365 * 5)


def test_threads_attachments_and_encodings(sample: list) -> None:  # type: ignore[type-arg]
    ids: set[str] = set()
    replies_to_known = 0
    attachments: set[str] = set()
    encodings: set[str] = set()
    non_ascii_subjects = 0
    latin1_text = 0
    for m in sample[:250]:
        msg = email.message_from_bytes(m.data, policy=email.policy.default)
        reply_to = msg.get("In-Reply-To")
        if reply_to and str(reply_to) in ids:
            replies_to_known += 1
            assert str(msg["Subject"]).startswith("Re: ")
        ids.add(str(msg["Message-ID"]))
        subject = str(msg["Subject"])
        if not subject.isascii():
            non_ascii_subjects += 1
            assert b"=?" in m.data.split(b"\r\n\r\n", 1)[0]  # sent as RFC 2047 words
        for part in msg.walk():
            encodings.add(str(part.get("Content-Transfer-Encoding", "7bit")).lower())
            if part.get_content_disposition() == "attachment":
                attachments.add(part.get_content_type())
                assert len(part.get_payload(decode=True)) > 0
            if part.get_content_charset() == "iso-8859-1":
                latin1_text += 1
                assert "Hi," in part.get_content()
    assert replies_to_known > 20
    assert non_ascii_subjects > 8
    assert len(attachments) >= 5
    assert {"8bit", "quoted-printable", "base64"} <= encodings
    assert latin1_text > 0


def test_folders_and_flags(sample: list) -> None:  # type: ignore[type-arg]
    folders = {m.folder for m in sample}
    assert {"INBOX", "Sent Items", "Deleted Items", "Drafts", "Junk Email", "Archive"} <= folders
    assert any(not f.isascii() for f in folders)
    assert all("\\Draft" in m.flags for m in sample if m.folder == "Drafts")
    assert any("\\Answered" in m.flags for m in sample if m.folder != "Sent Items")
    assert all("\\Seen" in m.flags for m in sample if m.folder == "Sent Items")


def test_write_maildir_round_trips(tmp_path: Path) -> None:
    options = SeedOptions(messages=120, seed=5)
    report = write_maildir(tmp_path, options)
    assert report.messages == 120
    expected = list(generate(options))
    found: dict[bytes, tuple[str, str]] = {}
    for path in tmp_path.rglob("cur/*"):
        info = path.name.rsplit(":2,", 1)[1]
        found[path.read_bytes()] = (path.parent.parent.name, info)
        assert int(path.stat().st_mtime) == int(path.name.split(".", 1)[0])
        assert f"S={path.stat().st_size}," in path.name
    assert len(found) == 120
    letters = {"\\Seen": "S", "\\Answered": "R", "\\Flagged": "F", "\\Draft": "D"}
    for m in expected:
        folder_dir = maildir_folder_path(tmp_path, m.folder)
        assert found[m.data] == (folder_dir.name, "".join(sorted(letters[f] for f in m.flags)))
    box = mailbox.Maildir(tmp_path, create=False)
    listed = {decode_mailbox(name.encode()).replace(".", "/") for name in box.list_folders()}
    assert listed == {f for f in report.folders if f != "INBOX"}
    assert (tmp_path / "subscriptions").read_text().splitlines()[0] == "INBOX"


def test_seed_store_fills_a_memory_store() -> None:
    store = MemoryStore()
    report = seed_store(store, SeedOptions(messages=80, seed=2))
    assert report.messages == 80
    for folder, count in report.folders.items():
        assert len(store._get(folder).messages) == count


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        SeedOptions(messages=-1)
    with pytest.raises(ConfigError):
        SeedOptions(
            start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), end=dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
        )
