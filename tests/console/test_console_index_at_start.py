"""Archives backed up before the console first ran: ``exoimap console`` indexes them in the
background when it starts, so their owners can open their mail without waiting for the
next sync; an archive a sync holds is left to that sync."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # Starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from exoimap.cli import main
from exoimap.config import Paths
from exoimap.console.archives import Mailboxes
from exoimap.console.web import build_app
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.archive import ArchiveStore
from tests.cli.sync_helpers import isolated_home, signed_in_account

from .conftest import PUBLIC_URL, ConsoleWorld


def _archived_before_any_console(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> tuple[str, Paths]:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, name, {"INBOX": 3})
    assert main(["sync", name]) == 0
    paths = Paths.from_env()
    assert not Mailboxes(paths).search.exists  # no console yet: the sync made no index
    return upn, paths


def _mailboxes_with_an_empty_index(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> Mailboxes:
    """``name`` archived before any console, and the search index the console creates."""
    _, paths = _archived_before_any_console(sandbox_tenant, tmp_path, monkeypatch, name)
    mailboxes = Mailboxes(paths)
    mailboxes.search.create()
    return mailboxes


def test_index_all_indexes_each_archive_once(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailboxes = _mailboxes_with_an_empty_index(sandbox_tenant, tmp_path, monkeypatch, "early")
    assert mailboxes.search.marks("early") == {}
    assert asyncio.run(mailboxes.index_all()) == 3
    assert mailboxes.search.marks("early")["INBOX"].messages == 3
    assert asyncio.run(mailboxes.index_all()) == 0  # nothing new: nothing read again


def test_an_archive_a_sync_holds_is_left_to_that_sync(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailboxes = _mailboxes_with_an_empty_index(sandbox_tenant, tmp_path, monkeypatch, "busy")
    mailbox = mailboxes.find("busy")
    assert mailbox is not None

    async def while_held() -> int:
        held = ArchiveStore.open(mailbox.archive, create=False)  # what a sync holds
        try:
            return await mailboxes.index_all(attempts=3, pause=0.01)
        finally:
            await held.close()

    assert asyncio.run(while_held()) == 0
    assert mailboxes.search.marks("busy") == {}
    assert asyncio.run(mailboxes.index_all()) == 3  # once free


def test_the_console_indexes_at_start_and_the_owner_opens_a_message(
    world: ConsoleWorld,
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upn, paths = _archived_before_any_console(sandbox_tenant, tmp_path, monkeypatch, "mine")
    sandbox_tenant.admin.assign_app_role(world.app_name, upn, "self")
    console = dataclasses.replace(world.console(paths), index_at_start=True)
    console.mailboxes.search.create()  # as `exoimap console` does before it serves
    with TestClient(build_app(console), base_url=PUBLIC_URL, follow_redirects=False) as client:
        deadline = time.monotonic() + 60
        while "INBOX" not in console.mailboxes.search.marks("mine"):
            assert time.monotonic() < deadline, "the console did not index the archive"
            time.sleep(0.05)
        world.sign_in_as(client, upn, "Sandbox-Pass-1!")
        listing = client.get("/m/mine/folder", params={"name": "INBOX"})
        assert listing.status_code == 200, listing.text
        uids = re.findall(r'name="uid" value="(\d+)"', listing.text)
        assert len(uids) == 3
        # while the other folders are indexed the archive is busy, as during a sync
        message = client.get("/m/mine/message", params={"folder": "INBOX", "uid": uids[0]})
        while message.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
            message = client.get("/m/mine/message", params={"folder": "INBOX", "uid": uids[0]})
        assert message.status_code == 200, message.text


def test_a_config_broken_while_serving_stops_the_indexing_not_the_console(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailboxes = _mailboxes_with_an_empty_index(sandbox_tenant, tmp_path, monkeypatch, "edited")
    mailboxes.paths.config_file.write_text("[accounts.edited\n")  # no longer TOML
    assert asyncio.run(mailboxes.index_all()) == 0
    assert mailboxes.search.marks("edited") == {}
