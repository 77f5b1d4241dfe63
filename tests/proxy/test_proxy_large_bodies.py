"""Two large bodies in one FETCH response (``BODY[]`` and ``BODY[TEXT]`` of a 12 MB
message) pass through ``exoimap proxy`` byte for byte, streamed: the proxy process's peak
memory (VmHWM) grows by less than one body while they pass."""

from __future__ import annotations

import imaplib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.proxy.proxy_helpers import cli_password_and_ca, free_port, wait_for_port

pytestmark = pytest.mark.xdist_group("sandbox")

EXOIMAP = str(Path(sys.executable).with_name("exoimap"))
TEXT_SIZE = 12 << 20


def big_message() -> bytes:
    line = b"".join(bytes([65 + (i % 26)]) for i in range(76)) + b"\r\n"  # 78 bytes a line
    text = line * (TEXT_SIZE // len(line))
    head = b"From: a@example.test\r\nSubject: two large bodies\r\nMessage-ID: <big@test>\r\n\r\n"
    return head + text


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def test_two_large_bodies_in_one_fetch_are_streamed(
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {})
    message = big_message()
    sandbox_tenant.exchange.deliver(upn, message)
    password, context = cli_password_and_ca("big", capsys)
    port = free_port()
    process = subprocess.Popen(
        [EXOIMAP, "proxy", "--listen", f"127.0.0.1:{port}"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(process, port)
        with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=120) as client:
            client.login(upn, password)
            client.select("INBOX", readonly=True)
            client.noop()
            before = peak_rss(process.pid)
            status, data = client.uid("FETCH", "1", "(BODY.PEEK[] UID BODY.PEEK[TEXT] FLAGS)")
            after = peak_rss(process.pid)
            client.noop()  # the session goes on after the response
    finally:
        process.terminate()
        process.wait(30)
    assert status == "OK"
    # imaplib splits the response at each literal: (head, BODY[]), (middle, BODY[TEXT]), tail
    (first_head, whole), (middle, text), tail = data
    assert whole == message
    assert text == message.split(b"\r\n\r\n", 1)[1]
    assert first_head.endswith(b"BODY[] {%d}" % len(message))
    assert middle.endswith(b"BODY[TEXT] {%d}" % len(text))
    # every small item once, wherever Exchange put it
    items = first_head + middle + tail
    assert items.count(b"UID 1") == 1
    assert items.count(b"FLAGS ()") == 1
    assert tail.endswith(b")")
    grown = after - before
    print(f"proxy peak RSS {before >> 20} -> {after >> 20} MB, two {TEXT_SIZE >> 20} MB bodies")
    assert grown < TEXT_SIZE // 2, f"the proxy held a body: peak RSS grew {grown >> 20} MB"
