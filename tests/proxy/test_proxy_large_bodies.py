"""Two large bodies in one FETCH response (``BODY[]`` and ``BODY[TEXT]`` of a 12 MB
message) pass through ``exoimap proxy`` byte for byte, streamed: the proxy process's peak
memory (VmHWM) grows by less than one body while they pass."""

from __future__ import annotations

import imaplib
from pathlib import Path

import pytest

from exoimap.sandbox.tenant import SandboxTenant
from tests.proxy.conftest import WorkAccount
from tests.proxy.proxy_helpers import EXOIMAP, cli_password_and_ca, free_port, proxy_process

pytestmark = pytest.mark.xdist_group("sandbox")

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
    work_account: WorkAccount,
    sandbox_tenant: SandboxTenant,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upn = work_account({})
    message = big_message()
    sandbox_tenant.exchange.deliver(upn, message)
    password, context = cli_password_and_ca("big", capsys)
    port = free_port()
    command = [EXOIMAP, "proxy", "--listen", f"127.0.0.1:{port}"]
    with (
        proxy_process(command, port) as proxy,
        imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=120) as client,
    ):
        client.login(upn, password)
        client.select("INBOX", readonly=True)
        client.noop()
        before = peak_rss(proxy.process.pid)
        status, data = client.uid("FETCH", "1", "(BODY.PEEK[] UID BODY.PEEK[TEXT] FLAGS)")
        after = peak_rss(proxy.process.pid)
        client.noop()  # the session goes on after the response
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
