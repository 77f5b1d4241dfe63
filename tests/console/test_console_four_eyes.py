"""Four eyes over HTTP with people signed in through the sandbox: legal holds block every
deletion, a release or a deletion needs another compliance officer's approval, nobody
approves their own request, an approved request is carried out once by its requester, and
every step is in the audit log's hash chain."""

from __future__ import annotations

import asyncio
import mailbox
import re
import time
import uuid
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.console.approvals import ApprovalBook, ApprovalError
from exoimap.console.policy import Principal
from exoimap.store.archive import ArchiveHeld, ArchiveStore, active_holds, place_hold

from .conftest import AUDIT_KEY, ConsoleWorld, TestClient


@pytest.fixture(scope="module")
def people(world: ConsoleWorld) -> dict[str, TestClient]:
    """A second compliance officer besides the world's, and the others, signed in."""
    admin = world.tenant.admin
    password = f"Pw-{uuid.uuid4().hex}"
    second = admin.create_user(
        f"officer2-{uuid.uuid4().hex[:6]}@{world.tenant.tenant_domain}", password=password
    )
    admin.assign_app_role(world.app_name, second.upn, "compliance_officer")
    console = world.console()
    clients = {}
    for person in ("compliance_officer", "auditor", "restore_operator"):
        clients[person] = world.client(console)
        world.sign_in(clients[person], person)
    clients["officer2"] = world.client(console)
    world.sign_in_as(clients["officer2"], second.upn, password)
    return clients


def _post(client: TestClient, path: str, **form: str) -> object:
    page = client.get("/approvals").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post(path, data={"csrf_token": token, **form})


def _file(client: TestClient, **form: str) -> str:
    response = _post(client, "/approvals/new", hours="2", **form)
    assert response.status_code == 303, response.text[:400]  # type: ignore[attr-defined]
    found = re.search(r"request=([0-9a-f]{12})$", response.headers["location"])  # type: ignore[attr-defined]
    assert found, response.headers["location"]  # type: ignore[attr-defined]
    return found[1]


def _archived_uids(root: Path, folder: str) -> list[int]:
    async def listing() -> list[int]:
        store = ArchiveStore.open(root, create=False)
        try:
            async with store.open_folder(folder) as opened:
                return [m.uid for m in (await opened.list_messages()).messages]
        finally:
            await store.close()

    return asyncio.run(listing())


def test_holds_block_deletion_until_a_second_officer_approves_the_release(
    world: ConsoleWorld, people: dict[str, TestClient]
) -> None:
    officer, second = people["compliance_officer"], people["officer2"]
    root = world.paths.archive_dir("other")
    placed = _post(officer, "/holds", account="other", reason="litigation 2026-17")
    assert placed.status_code == 303  # type: ignore[attr-defined]
    (hold,) = active_holds(root)
    # a deletion cannot even be asked for while the hold is on
    refused = _post(
        officer,
        "/approvals/new",
        kind="delete",
        account="other",
        folder="INBOX",
        uid="1",
        reason="clean-up",
        hours="2",
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert f"under legal hold {hold.id}" in refused.text  # type: ignore[attr-defined]

    release = _file(
        officer, kind="release_hold", account="other", hold=hold.id, reason="case closed"
    )
    own = _post(officer, "/approvals/decide", id=release, decision="approve")
    assert own.status_code == 409  # type: ignore[attr-defined]
    assert "you cannot approve your own request" in own.text  # type: ignore[attr-defined]
    early = _post(officer, "/approvals/run", id=release)
    assert early.status_code == 409  # type: ignore[attr-defined]
    assert "pending, not approved" in early.text  # type: ignore[attr-defined]
    assert _post(second, "/approvals/decide", id=release, decision="approve").status_code == 303  # type: ignore[attr-defined]
    # only the requester carries it out, once
    assert _post(second, "/approvals/run", id=release).status_code == 409  # type: ignore[attr-defined]
    assert _post(officer, "/approvals/run", id=release).status_code == 303  # type: ignore[attr-defined]
    assert active_holds(root) == []
    assert _post(officer, "/approvals/run", id=release).status_code == 409  # type: ignore[attr-defined]

    before = _archived_uids(root, "INBOX")
    assert 1 in before
    delete = _file(
        officer, kind="delete", account="other", folder="INBOX", uid="1", reason="GDPR erasure"
    )
    assert _post(second, "/approvals/decide", id=delete, decision="approve").status_code == 303  # type: ignore[attr-defined]
    assert _post(officer, "/approvals/run", id=delete).status_code == 303  # type: ignore[attr-defined]
    assert _archived_uids(root, "INBOX") == [u for u in before if u != 1]
    found = people["auditor"].get("/search", params={"q": "quarterly"}).text
    assert "1 messages" in found  # the search index forgot it at once (own is left)

    # the chain holds every step, and verifies
    states = [
        (r.data["kind"], r.data["state"], r.outcome) for r in world.records("console.approval")
    ]
    assert ("hold", "hold_placed", "success") in states
    assert ("release_hold", "requested", "success") in states
    assert ("release_hold", "refused", "denied") in states
    assert ("release_hold", "approved", "success") in states
    assert ("release_hold", "carried_out", "success") in states
    assert ("delete", "carried_out", "success") in states
    world.auditor.flush()
    assert audit.verify_log(world.audit_dir, AUDIT_KEY).ok


def test_a_hold_blocks_deletion_in_the_archive_itself(tmp_path: Path) -> None:
    """Not only the console: the archive refuses every expunge and folder deletion."""
    from exoimap.app import backup
    from exoimap.store.memory import MemoryStore

    source = MemoryStore()
    source.create_folder_now("Old")
    source.add_message("INBOX", b"Subject: x\r\n\r\nx\r\n")
    source.add_message("Old", b"Subject: y\r\n\r\ny\r\n")

    async def run() -> None:
        store = ArchiveStore.open(tmp_path / "a", fsync_mode="none")
        try:
            await backup(source, store)
            place_hold(tmp_path / "a", "audit", "officer@contoso.com")
            async with store.open_folder("INBOX") as inbox:
                with pytest.raises(ArchiveHeld, match="under legal hold"):
                    await inbox.expunge([1])
            with pytest.raises(ArchiveHeld, match="under legal hold"):
                await store.delete_folder("Old")
        finally:
            await store.close()

    asyncio.run(run())
    assert _archived_uids(tmp_path / "a", "INBOX") == [1]


def test_export_is_four_eyes_and_hands_over_an_mbox(
    world: ConsoleWorld, people: dict[str, TestClient]
) -> None:
    auditor, second = people["auditor"], people["officer2"]
    refused = _post(
        people["restore_operator"],
        "/approvals/new",
        kind="export",
        account="own",
        folder="INBOX",
        reason="x",
        hours="1",
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    outside = _post(
        auditor,
        "/approvals/new",
        kind="export",
        account="outside",
        folder="INBOX",
        reason="x",
        hours="1",
    )
    assert outside.status_code == 403  # type: ignore[attr-defined]
    export = _file(auditor, kind="export", account="own", folder="INBOX", reason="case 17")
    # an auditor is no approver
    assert _post(auditor, "/approvals/decide", id=export, decision="approve").status_code == 403  # type: ignore[attr-defined]
    assert _post(second, "/approvals/decide", id=export, decision="approve").status_code == 303  # type: ignore[attr-defined]
    handed = _post(auditor, "/approvals/run", id=export)
    assert handed.status_code == 200  # type: ignore[attr-defined]
    assert handed.headers["content-disposition"].startswith("attachment;")  # type: ignore[attr-defined]
    target = Path(world.paths.data_dir) / "exported.mbox"
    target.write_bytes(handed.content)  # type: ignore[attr-defined]
    subjects = sorted(str(m["subject"]) for m in mailbox.mbox(target))
    assert len(subjects) == 4
    assert "Quarterly numbers" in subjects
    exported = world.records("archive.exported")
    assert exported[-1].actor["console_user"] == world.users["auditor"][0]


def test_a_rejected_or_expired_request_cannot_be_carried_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = ApprovalBook(tmp_path / "approvals.sqlite")
    alice = Principal("oid-a", "alice@contoso.com", "Alice", frozenset({"auditor"}))
    bob = Principal("oid-b", "bob@contoso.com", "Bob", frozenset({"compliance_officer"}))
    alias = Principal("oid-a", "alice.alias@contoso.com", "A", frozenset({"compliance_officer"}))
    rejected = book.file(
        "export", alice, account="own", scope={"folder": "INBOX"}, reason="r", hours=1
    )
    with pytest.raises(ApprovalError, match="your own request"):
        book.decide(rejected.id, alias, approve=True)  # the same oid under another name
    assert book.decide(rejected.id, bob, approve=False).state == "rejected"
    with pytest.raises(ApprovalError, match="rejected, not approved"):
        book.take(rejected.id, alice)
    late = book.file("export", alice, account="own", scope={"folder": "INBOX"}, reason="r", hours=1)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3601)
    with pytest.raises(ApprovalError, match="expired"):
        book.decide(late.id, bob, approve=True)
    with pytest.raises(ApprovalError, match="needs a reason"):
        book.file("export", alice, account="own", scope={}, reason="  ", hours=1)
    with pytest.raises(ApprovalError, match="1 to 720 hours"):
        book.file("export", alice, account="own", scope={}, reason="r", hours=721)
    assert oct((tmp_path / "approvals.sqlite").stat().st_mode & 0o777) == "0o600"
