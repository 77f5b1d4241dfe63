"""``exoimap sandbox up`` as a real process: both halves, sandbox.json, persistence."""

from __future__ import annotations

import imaplib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msal
import requests

from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.tenant import TenantOptions, running_tenant


def _start(state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EXOIMAP_HOME": str(state.parent / "home")}
    settings = state.parent / "imap.toml"
    settings.write_text(
        'capability_profile = "basic-auth-disabled"\n[throttle]\nmax_bytes = 900000000\n'
    )
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "exoimap"), "sandbox", "up", "--state", str(state),
         "--messages", "15", "--imap-settings", str(settings)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _document(state: Path, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    path = state / "sandbox.json"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else b""
        if path.exists():
            document: dict[str, Any] = json.loads(path.read_text())
            if document.get("pid") == process.pid and "imap_port" in document:
                return document
        time.sleep(0.05)
    raise AssertionError("sandbox.json was not written")


def _stop(process: subprocess.Popen[bytes]) -> bytes:
    process.send_signal(signal.SIGTERM)  # as a service manager stops it
    out, _ = process.communicate(timeout=30)
    return out


def _inbox_count(document: dict[str, Any]) -> int:
    daemon = next(a for a in document["apps"] if a["name"] == "exoimap-daemon")
    session = requests.Session()
    session.verify = document["ca_file"]
    session.trust_env = False
    app = msal.ConfidentialClientApplication(
        daemon["client_id"],
        client_credential=daemon["client_secret"],
        authority=document["authority"],
        http_client=session,
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(["https://outlook.office365.com/.default"])
    import ssl

    context = ssl.create_default_context(cafile=document["ca_file"])
    alice = document["users"][0]["upn"]
    client = imaplib.IMAP4_SSL(
        document["imap_host"], document["imap_port"], ssl_context=context, timeout=10
    )
    with client:
        assert "LOGINDISABLED" in client.capabilities  # from --imap-settings
        client.authenticate(
            "XOAUTH2",
            lambda _: f"user={alice}\x01auth=Bearer {token['access_token']}\x01\x01".encode(),
        )
        status, data = client.select("INBOX")
        assert status == "OK"
        count = int(data[0])
        client.logout()
    return count


def test_sandbox_up_runs_both_halves_and_saves_mailboxes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    process = _start(state)
    try:
        document = _document(state, process)
        alice = document["users"][0]["upn"]
        assert document["imap_tls"] == "implicit"
        assert sum(document["mailboxes"][alice].values()) == 15
        assert set(document["mailboxes"][alice]) >= {"INBOX", "Sent Items", "Junk Email"}
        assert _inbox_count(document) == document["mailboxes"][alice]["INBOX"]
    finally:
        out = _stop(process)
    assert b"IMAP at 127.0.0.1:" in out
    assert out.rstrip().endswith(b"exoimap sandbox: stopped")
    assert b"Traceback" not in out
    assert (state / "mailboxes" / alice / "index.json").exists()


def test_persisted_mailboxes_survive_a_restart_without_reseeding(tmp_path: Path) -> None:
    options = TenantOptions(exchange=ExchangeSettings.for_tests(), seed_messages=5, persist=True)
    with running_tenant(tmp_path / "state", options) as tenant:
        alice = tenant.users[0][0]
        uid = tenant.exchange.deliver(alice, b"Subject: kept\r\n\r\nacross restarts\r\n")
        before = tenant.mailbox_summary()[alice]
    with running_tenant(tmp_path / "state", options) as tenant:
        assert tenant.mailbox_summary()[alice] == before
        data = tenant.exchange.run(
            lambda: tenant.server.mailboxes.get(alice).store.message_bytes("INBOX", uid)
        )
        assert data.endswith(b"across restarts\r\n")


def test_seed_maildir_command(tmp_path: Path) -> None:
    from exoimap.cli import main

    assert main(["sandbox", "seed-maildir", str(tmp_path / "md"), "--messages", "25"]) == 0
    assert len(list((tmp_path / "md").rglob("cur/*"))) == 25
