"""Events are typed, secrets cannot get in, and the emitting API stamps and batches."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.audit import events
from exoimap.config import AuditConfig, Paths
from exoimap.secrets import Secret

from .conftest import KEY


def test_secret_values_are_rejected() -> None:
    with pytest.raises(TypeError, match="Secret"):
        audit.TokenFailed(flow="device", error=Secret("an access token"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Secret"):
        audit.TokenRequested(flow="device", scopes=("IMAP", Secret("x" * 10)))  # type: ignore[arg-type]


def test_wrong_types_are_rejected() -> None:
    with pytest.raises(TypeError, match="bytes"):
        audit.ImapConnected(host=b"imap")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict"):
        audit.ConfigChanged(key={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outcome"):
        audit.ArchiveRead(outcome="maybe")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="abstract"):
        audit.AuditEvent()


def test_events_take_keywords_only_and_never_change() -> None:
    event = audit.TokenRequested(flow="device", scopes=("IMAP.AccessAsUser.All",))
    assert (event.flow, event.client_id, event.scopes) == (
        "device",
        None,
        ("IMAP.AccessAsUser.All",),
    )
    assert event.data()["from_cache"] is False  # the default
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.flow = "browser"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del event.flow  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing keyword argument 'flow'"):
        audit.TokenRequested()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'flows'"):
        audit.TokenRequested(flow="device", flows="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        audit.TokenRequested("device")  # type: ignore[misc]
    copy = dataclasses.replace(event, flow="browser")
    assert (copy.flow, event.flow) == ("browser", "device")
    assert repr(event).startswith("TokenRequested(account=None, outcome='success', flow='device'")


def test_strings_are_redacted() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJl"
    event = audit.TokenFailed(
        flow="device",
        error=f"AADSTS50126 password=hunter22 Bearer {jwt}",
        scopes=(f"refresh_token={jwt}",),
    )
    assert "hunter22" not in event.error
    assert jwt not in event.error
    assert "AADSTS50126" in event.error
    assert jwt not in event.scopes[0]


def test_vocabulary_is_closed() -> None:
    assert set(audit.EVENT_NAMES) == {
        "token.requested", "token.refreshed", "token.failed", "token.handed_out",
        "imap.connected", "imap.authenticated", "imap.auth_failed", "imap.closed",
        "imap.throttled", "sync.folder", "sync.account", "archive.read", "archive.exported",
        "archive.verified", "archive.restored", "config.changed", "vault.changed", "access.denied",
        "console.access", "console.search", "console.approval", "console.break_glass",
        "audit.recovered",
        "audit.reset_detected", "audit.segment_started",
        "watch.state", "worker.job", "worker.lease_lost", "smtp.submitted",
    }  # fmt: skip
    assert events.event_class("imap.closed") is audit.ImapClosed
    assert audit.TokenFailed(flow="x").outcome == "failure"
    assert audit.AccessDenied(action="export").outcome == "denied"


def test_envelope_is_stamped(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "a", KEY)
    with audit.Auditor(log, correlation_id="run-42", user="ann") as auditor:
        auditor.emit(audit.ImapConnected(account="work", host="outlook.office365.com"))
        with audit.acting_as("console-admin"):
            auditor.emit(audit.ArchiveExported(account="work", destination="/tmp/x.mbox"))
    first, second = audit.read_records(tmp_path / "a")
    assert first.run == "run-42"
    assert first.actor == {"os_user": "ann", "console_user": None}
    assert second.actor["console_user"] == "console-admin"
    assert first.account == "work"
    assert first.data["host"] == "outlook.office365.com"
    assert first.time.endswith("Z")
    assert first.when.tzinfo is not None


def test_failures_are_durable_at_once_successes_are_batched(tmp_path: Path) -> None:
    directory = tmp_path / "a"
    auditor = audit.Auditor(audit.AuditLog(directory, KEY), batch_size=100, max_delay=3600)
    auditor.emit(audit.ImapConnected(host="h"))
    assert list(audit.read_records(directory)) == []
    auditor.emit(audit.ImapAuthFailed(host="h", mechanism="XOAUTH2"))
    assert [r.event for r in audit.read_records(directory)] == [
        "imap.connected",
        "imap.auth_failed",
    ]
    auditor.emit(audit.ImapClosed(host="h"))
    auditor.flush()
    assert len(list(audit.read_records(directory))) == 3


def test_max_delay_flushes(tmp_path: Path) -> None:
    directory = tmp_path / "a"
    auditor = audit.Auditor(audit.AuditLog(directory, KEY), batch_size=100, max_delay=0)
    auditor.emit(audit.ImapConnected(host="h"))
    assert len(list(audit.read_records(directory))) == 1


def test_default_auditor_checks_but_writes_nothing() -> None:
    assert audit.current_auditor().log is None
    audit.emit(audit.ImapConnected(host="h"))
    with pytest.raises(TypeError):
        audit.emit(audit.ImapConnected(host=Secret("pw-123456")))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        audit.emit("token.requested")  # type: ignore[arg-type]


def test_use_auditor_and_set_auditor(tmp_path: Path) -> None:
    process = audit.Auditor(audit.AuditLog(tmp_path / "p", KEY), batch_size=1)
    scoped = audit.Auditor(audit.AuditLog(tmp_path / "s", KEY), batch_size=1)
    audit.set_auditor(process)
    try:
        audit.emit(audit.VaultChanged(item="client-secret", action="set"))
        with audit.use_auditor(scoped):

            async def task() -> None:
                audit.emit(audit.ConfigChanged(key="accounts.work.flow"))

            asyncio.run(task())
        audit.emit(audit.VaultChanged(item="client-secret", action="removed"))
    finally:
        audit.set_auditor(None)
    assert [r.data["action"] for r in audit.read_records(tmp_path / "p")] == ["set", "removed"]
    assert [r.event for r in audit.read_records(tmp_path / "s")] == ["config.changed"]
    assert audit.current_auditor().log is None


def test_listener_sees_every_event(tmp_path: Path) -> None:
    seen: list[str] = []
    auditor = audit.Auditor(None)
    auditor.add_listener(lambda e: seen.append(e.name))
    auditor.emit(audit.ArchiveVerified(messages=3))
    assert seen == ["archive.verified"]


def test_open_auditor_uses_config_and_the_key_it_is_given(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    with audit.open_auditor(paths, AuditConfig(max_file_bytes=900), key=KEY) as auditor:
        for n in range(10):
            auditor.emit(audit.ArchiveRead(account="w", messages=n))
    assert len(list(paths.audit_dir.glob("audit-*.jsonl"))) > 1
    assert audit.verify_log(paths.audit_dir, KEY).ok
    other_key = Secret(b"\xff" * 32)  # not UTF-8: never scrubbed from other tests' text
    assert not audit.verify_log(paths.audit_dir, other_key).ok


def test_a_key_source_is_asked_only_when_auditing_is_enabled(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    asked: list[str] = []

    def key_source() -> Secret[bytes]:
        asked.append("key")
        return KEY

    disabled = audit.open_auditor(paths, AuditConfig(enabled=False), key=key_source)
    assert disabled.log is None
    assert asked == []
    with audit.open_auditor(paths, key=key_source) as enabled:
        enabled.emit(audit.ArchiveVerified(messages=1))
    assert asked == ["key"]
    assert audit.verify_log(paths.audit_dir, KEY).ok


def test_records_are_single_json_lines(tmp_path: Path) -> None:
    with audit.Auditor(audit.AuditLog(tmp_path / "a", KEY)) as auditor:
        auditor.emit(audit.FolderSynced(folder="Inbox\nwith newline \u2028 and é", bytes=1))
    raw = (tmp_path / "a" / "audit-000001.jsonl").read_bytes()
    assert raw.count(b"\n") == 1
    assert raw.isascii()
    assert json.loads(raw)["data"]["folder"] == "Inbox\nwith newline \u2028 and é"


def test_auditing_installs_and_restores(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    seen: list[str] = []

    def command() -> None:
        with audit.auditing(paths, key=KEY, listeners=[lambda e: seen.append(e.name)]):
            audit.emit(audit.ArchiveRestored(account="w", target="INBOX", messages=1))
            audit.emit(audit.ArchiveVerified(account="w", messages=5))
            raise RuntimeError("the command failed; its records must still be on disk")

    with pytest.raises(RuntimeError):
        command()
    assert audit.current_auditor().log is None
    assert seen == ["archive.restored", "archive.verified"]
    assert [r.event for r in audit.read_records(paths.audit_dir)] == seen
