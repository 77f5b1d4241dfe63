"""Restore from the console, for real: a mailbox owner signed in to the console brings a
message of their archive back into their sandbox mailbox, and the restore is audited as
done by them."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.config import Paths
from exoimap.console.archives import Mailboxes
from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, signed_in_account

from .conftest import ConsoleWorld


def test_owner_restores_a_message_into_their_mailbox(
    world: ConsoleWorld,
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "mine", {"INBOX": 2})
    paths = Paths.from_env()
    Mailboxes(paths).search.create()  # as the console does when it starts: syncs index
    assert main(["sync", "mine"]) == 0
    sandbox_tenant.admin.assign_app_role(world.app_name, upn, "self")
    client = world.client(world.console(paths))
    world.sign_in_as(client, upn, "Sandbox-Pass-1!")

    listing = client.get("/m/mine/folder", params={"name": "INBOX"}).text
    uid = re.findall(r'name="uid" value="(\d+)"', listing)[0]
    token = re.findall(r'name="csrf_token" value="([^"]+)"', listing)[0]
    done = client.post("/m/mine/restore", data={"csrf_token": token, "folder": "INBOX", "uid": uid})
    assert done.status_code == 200, done.text
    restored = re.search(r"in the folder <strong>(Restored [^<]+/INBOX)</strong>", done.text)
    assert restored is not None, done.text
    assert "1 message restored" in done.text

    assert main(["sync", "mine"]) == 0  # what the server now holds comes into the archive
    mailbox = Mailboxes(paths).find("mine")
    assert mailbox is not None
    folders = {f.name: f.messages for f in asyncio.run(Mailboxes(paths).folders(mailbox))}
    assert folders[restored.group(1)] == 1

    records = world.records("archive.restored")
    assert records[-1].account == "mine"
    assert records[-1].actor["console_user"] == upn
    assert records[-1].data["messages"] == 1


def test_restore_into_another_mailbox_takes_a_second_persons_approval(
    world: ConsoleWorld,
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "leaver", {"INBOX": 2})
    signed_in_account(sandbox_tenant, "successor", {"INBOX": 1})
    assert main(["sync", "leaver"]) == 0
    paths = Paths.from_env()
    mailboxes = Mailboxes(paths)
    leaver = mailboxes.find("leaver")
    assert leaver is not None
    info = asyncio.run(mailboxes.info(leaver, "INBOX", 1))
    assert info is not None
    assert info.message_id
    console = world.console(paths)
    operator, officer = world.client(console), world.client(console)
    world.sign_in(operator, "restore_operator")
    world.sign_in(officer, "compliance_officer")

    def post(client: object, path: str, **form: str) -> object:
        page = client.get("/approvals").text  # type: ignore[attr-defined]
        token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
        return client.post(path, data={"csrf_token": token, **form})  # type: ignore[attr-defined]

    filed = post(
        operator,
        "/approvals/new",
        kind="restore_elsewhere",
        account="leaver",
        folder="INBOX",
        message_id=info.message_id,
        target="successor",
        reason="the successor needs the thread",
        hours="4",
    )
    assert filed.status_code == 303  # type: ignore[attr-defined]
    request_id = filed.headers["location"].rsplit("=", 1)[1]  # type: ignore[attr-defined]
    assert post(operator, "/approvals/run", id=request_id).status_code == 409  # not approved
    assert post(officer, "/approvals/decide", id=request_id, decision="approve").status_code == 303
    done = post(operator, "/approvals/run", id=request_id)
    assert done.status_code == 303, done.text  # type: ignore[attr-defined]

    assert main(["sync", "successor"]) == 0
    successor = mailboxes.find("successor")
    assert successor is not None
    folders = {f.name: f.messages for f in asyncio.run(mailboxes.folders(successor))}
    restored = [name for name in folders if name.startswith("Restored ")]
    assert [folders[name] for name in restored if name.endswith("/INBOX")] == [1]
    records = world.records("archive.restored")
    assert records[-1].actor["console_user"] == world.users["restore_operator"][0]
