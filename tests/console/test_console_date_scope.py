"""A role's scope limited to a window of archive dates (``after``/``before`` in
console.toml), over HTTP with people signed in through the sandbox: a message outside the
window is not found by search, not listed, and its direct URL answers exactly like a
message that does not exist; the one inside opens."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import mailbox
import re
from pathlib import Path

import pytest

from exoimap.app.operations import backup
from exoimap.config import Paths
from exoimap.console.policy import DateRange
from exoimap.store.archive import ArchiveStore
from exoimap.store.memory import MemoryStore
from exoimap.store.search import SearchIndex, SearchScope, index_path, parse_query, update_search

from .conftest import ConsoleWorld, TestClient
from .hostile import mime
from .test_console_four_eyes import _file, _post

YEAR_2024 = DateRange(dt.date(2024, 1, 1), dt.date(2025, 1, 1))
#: subject -> archive date: the last second of 2023, 2024's first and last, 2025's first.
DATED = {
    "zebra before": dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    "zebra first day": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    "zebra last day": dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    "zebra after": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
}
INSIDE = {"zebra first day", "zebra last day"}


@dataclasses.dataclass
class Dated:
    client: dict[str, TestClient]
    uids: dict[str, int]  # subject -> UID in INBOX


def _archive(paths: Paths, email: str) -> dict[str, int]:
    source = MemoryStore()
    for subject, when in DATED.items():
        source.add_message("INBOX", mime(subject, "ann@example.com", None, "x"), internal_date=when)
    index = SearchIndex(index_path(paths))

    async def run() -> None:
        archive = ArchiveStore.open(paths.archive_dir("dated"), fsync_mode="none")
        try:
            assert (await backup(source, archive)).ok
            await update_search(archive, index, account="dated", mailbox=email)
        finally:
            await archive.close()

    asyncio.run(run())
    hits = index.search(parse_query("zebra"), SearchScope(content=("*",)), page=1, size=10).hits
    return {hit.subject: hit.uid for hit in hits}


@pytest.fixture(scope="module")
def dated(world: ConsoleWorld, tmp_path_factory: pytest.TempPathFactory) -> Dated:
    home = tmp_path_factory.mktemp("dated-home")
    paths = Paths(config_dir=home / "config", data_dir=home / "data")
    paths.config_dir.mkdir(parents=True)
    email = f"erin@{world.tenant.tenant_domain}"
    paths.config_file.write_text(f'[accounts.dated]\nemail = "{email}"\n')
    uids = _archive(paths, email)
    assert set(uids) == set(DATED)
    console = world.console(paths)
    ranges = {"auditor": YEAR_2024, "restore_operator": YEAR_2024}
    console.settings = dataclasses.replace(world.settings, date_ranges=ranges)
    clients = {}
    for person in ("auditor", "restore_operator", "compliance_officer"):
        clients[person] = world.client(console)
        world.sign_in(clients[person], person)
    return Dated(clients, uids)


def _subjects(page: str) -> set[str]:
    return set(re.findall(r"zebra [a-z ]+?(?=<)", page))


def test_search_finds_only_what_lies_inside_the_window(dated: Dated) -> None:
    for person in ("auditor", "restore_operator"):  # text, and headers only
        page = dated.client[person].get("/search", params={"q": "zebra"})
        assert page.status_code == 200
        assert _subjects(page.text) == INSIDE, person
        assert re.search(r'id="hit-count">\s*2 messages', page.text), page.text
    page = dated.client["auditor"].get("/search", params={"q": "before:2030-01-01"}).text
    assert _subjects(page) == INSIDE  # no text: the window is in that SQL too


def test_the_folder_lists_only_what_lies_inside_the_window(dated: Dated) -> None:
    page = dated.client["auditor"].get("/m/dated/folder", params={"name": "INBOX"}).text
    assert _subjects(page) == INSIDE
    folders = dated.client["auditor"].get("/m/dated").text
    assert re.search(r">INBOX</a>\s*</td>\s*<td>2</td>", folders), folders


@pytest.mark.parametrize("route", ["message", "body"])
def test_a_direct_url_outside_the_window_is_not_found_like_no_message(
    dated: Dated, route: str
) -> None:
    client = dated.client["auditor"]
    missing = client.get(f"/m/dated/{route}", params={"folder": "INBOX", "uid": 999})
    assert missing.status_code == 404
    for subject, uid in dated.uids.items():
        response = client.get(f"/m/dated/{route}", params={"folder": "INBOX", "uid": uid})
        if subject in INSIDE:
            assert response.status_code == 200, subject
        else:
            assert (response.status_code, response.text) == (404, missing.text), subject


def test_a_restore_outside_the_window_is_not_found_like_no_message(dated: Dated) -> None:
    client = dated.client["restore_operator"]
    page = client.get("/m/dated/folder", params={"name": "INBOX"}).text
    token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]

    def restore(uid: int) -> tuple[int, str]:
        done = client.post(
            "/m/dated/restore", data={"csrf_token": token, "folder": "INBOX", "uid": str(uid)}
        )
        return done.status_code, done.text

    missing = restore(999)
    assert missing[0] == 404
    assert restore(dated.uids["zebra before"]) == missing
    assert restore(dated.uids["zebra after"]) == missing


def test_an_export_selects_only_the_days_inside_the_window(dated: Dated, tmp_path: Path) -> None:
    auditor = dated.client["auditor"]
    export = _file(auditor, kind="export", account="dated", folder="INBOX", reason="case 18")
    approved = _post(
        dated.client["compliance_officer"], "/approvals/decide", id=export, decision="approve"
    )
    assert approved.status_code == 303  # type: ignore[attr-defined]
    handed = _post(auditor, "/approvals/run", id=export)
    assert handed.status_code == 200  # type: ignore[attr-defined]
    target = tmp_path / "exported.mbox"
    target.write_bytes(handed.content)  # type: ignore[attr-defined]
    assert {str(m["subject"]) for m in mailbox.mbox(target)} == INSIDE
