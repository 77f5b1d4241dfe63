"""Seed generation speed and the sandbox IMAP server's bulk FETCH throughput.

Run: ``.venv/bin/python -m bench.sandbox_seed [messages]`` (default 20000 for the seed,
2000 for the IMAP part). Prints messages/s and MB/s.
"""

from __future__ import annotations

import base64
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from exoimap.protocol.utf7 import encode_mailbox
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.seed import SeedOptions, generate, write_maildir
from exoimap.sandbox.tenant import TenantOptions, running_tenant


def bench_generate(count: int) -> None:
    start = time.perf_counter()
    sizes = [len(m.data) for m in generate(SeedOptions(messages=count, seed=1))]
    elapsed = time.perf_counter() - start
    print(
        f"generate: {count} messages, {sum(sizes) / 1e6:.0f} MB in {elapsed:.1f} s "
        f"= {count / elapsed:.0f} msg/s; median {statistics.median(sizes):.0f} B, "
        f"mean {statistics.mean(sizes):.0f} B, max {max(sizes)} B"
    )


def bench_maildir(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        report = write_maildir(Path(folder) / "Maildir", SeedOptions(messages=count, seed=1))
        elapsed = time.perf_counter() - start
    print(
        f"maildir: {report.messages} files, {report.bytes / 1e6:.0f} MB in {elapsed:.1f} s "
        f"= {report.messages / elapsed:.0f} msg/s"
    )


def bench_imap_fetch(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        options = TenantOptions(exchange=ExchangeSettings(), seed_messages=count)
        with running_tenant(Path(folder) / "state", options) as tenant:
            upn = tenant.users[0][0]
            token = tenant.user_token(upn)
            raw = socket.create_connection((tenant.imap_host, tenant.imap_port))
            sock = tenant.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
            folders = list(tenant.mailbox_summary()[upn])
            buffer = bytearray()

            def until(tag: bytes) -> None:
                marker = b"\r\n" + tag + b" "
                while marker not in buffer[-65536 - len(marker) :]:
                    data = sock.recv(65536)
                    if not data:
                        raise EOFError
                    buffer.extend(data)

            buffer.extend(b"\r\n")  # so the first tagged line also follows a CRLF
            xo = base64.b64encode(tenant.xoauth2(upn, token))
            sock.sendall(b"a AUTHENTICATE XOAUTH2 " + xo + b"\r\n")
            until(b"a")
            start = time.perf_counter()
            del buffer[:]
            for index, name in enumerate(folders):
                quoted = b'"' + encode_mailbox(name) + b'"'
                sock.sendall(
                    b"s%d EXAMINE %s\r\nf%d UID FETCH 1:* (UID BODY.PEEK[])\r\n"
                    % (index, quoted, index)
                )
                until(b"f%d" % index)
            elapsed = time.perf_counter() - start
            size = len(buffer)
            sock.close()
    print(
        f"imap fetch: {count} messages, {size / 1e6:.0f} MB over TLS in {elapsed:.1f} s "
        f"= {size / 1e6 / elapsed:.0f} MB/s, {count / elapsed:.0f} msg/s"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    bench_generate(count)
    bench_maildir(count)
    bench_imap_fetch(min(count, 2000))


if __name__ == "__main__":
    main()
