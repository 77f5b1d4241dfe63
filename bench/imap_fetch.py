"""Fetch throughput and memory of exoimap's IMAP client against a local Dovecot over TLS.

    .venv/bin/python -m bench.imap_fetch [--messages 20000] [--runs 3] [--big-mb 150]

Seeds a throw-away Dovecot mailbox with N synthetic messages (median ~10 KB, p99 ~50 KB,
0.5 % of 1-5 MB), then measures, median of ``--runs``:

(a) our client: every message fetched with pipelined UID FETCH batches, bodies read to
    nowhere, and again written to one file per message (no fsync);
(b) the limit: one pipelined ``UID FETCH 1:* (BODY.PEEK[])`` read with a plain ``ssl``
    socket (``recv_into`` a reused buffer, ``bytes.find`` on new data only);
(c) peak RSS of a fresh process that fetches one ``--big-mb`` MB message with our client
    (target: under 100 MB).

Wall time depends on the machine's load; the client's CPU time (user + system) is printed
too, as it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import random
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint, ImapClient
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.secrets import Secret

WORDS = (
    "the",
    "quarterly",
    "report",
    "meeting",
    "invoice",
    "project",
    "update",
    "please",
    "review",
    "attached",
    "deadline",
    "budget",
    "customer",
    "server",
    "migration",
    "office",
    "account",
    "policy",
    "team",
    "schedule",
    "tomorrow",
    "regards",
)


def _text(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14)))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines)


def make_message(rng: random.Random, n: int, size: int, when: datetime) -> bytes:
    head = (
        f"From: Sender {n % 500} <user{n % 500}@corp.example>\r\nTo: Alice <alice@lab.test>\r\n"
        f"Subject: message {n}\r\nDate: {when:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Message-ID: <{n}.{rng.getrandbits(40):x}@corp.example>\r\nMIME-Version: 1.0\r\n"
    )
    attachment = size - 1500 if size > 1_000_000 else (size // 2 if rng.random() < 0.3 else 0)
    if not attachment:
        body = _text(rng, size - len(head))
        return f"{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n".encode()
    raw = base64.encodebytes(rng.randbytes(attachment * 3 // 4)).replace(b"\n", b"\r\n").decode()
    text = _text(rng, max(200, size - len(head) - len(raw) - 300))
    b = f"=_b{n}"
    return (
        f'{head}Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n--{b}\r\n'
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{b}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{raw}--{b}--\r\n"
    ).encode()


def seed(server: DovecotServer, user: str, count: int) -> int:
    rng = random.Random(42)
    start = datetime(2019, 1, 1, tzinfo=UTC)
    total = 0
    for n in range(count):
        if rng.random() < 0.005:
            size = rng.randint(1_000_000, 5_000_000)
        else:
            size = int(math.exp(rng.uniform(math.log(2_000), math.log(50_000))))
        data = make_message(rng, n, size, start + timedelta(seconds=n * 4000))
        server.write_message(user, data, flags="S", when=start + timedelta(seconds=n), serial=n)
        total += len(data)
    server.fix_ownership(user)
    return total


async def fetch_ours(
    endpoint: Endpoint, user: str, password: Secret[str], out: Path | None
) -> tuple[int, int]:
    creds = PasswordCredentials(user, password)
    count = size = 0
    async with ImapClient(endpoint, creds) as client:
        status = await client.select("INBOX", read_only=True)
        async for message in client.fetch("INBOX", range(1, status.uidnext)):
            if out is None:
                async for chunk in message.chunks:
                    size += len(chunk)
            else:
                with open(out / str(message.uid), "wb") as f:
                    async for chunk in message.chunks:
                        f.write(chunk)
                        size += len(chunk)
            count += 1
    return count, size


def fetch_raw(host: str, port: int, ca_file: Path, user: str, password: str) -> int:
    """The reference: one pipelined FETCH on a plain ssl socket, bytes counted."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    sock = ctx.wrap_socket(socket.create_connection((host, port)), server_hostname=host)
    buf = bytearray(1 << 18)
    view = memoryview(buf)

    def until(marker: bytes) -> int:
        tail = b""
        total = 0
        while True:
            n = sock.recv_into(buf)
            if n == 0:
                raise ConnectionError("closed")
            total += n
            chunk = tail + bytes(view[:n]) if tail else bytes(view[:n])
            if chunk.find(marker) >= 0:
                return total
            tail = chunk[-64:]

    until(b"\r\n")
    sock.sendall(f"a LOGIN {user} {password}\r\nb EXAMINE INBOX\r\n".encode())
    until(b"\r\nb OK")
    sock.sendall(b"c UID FETCH 1:* (BODY.PEEK[])\r\n")
    received = until(b"\r\nc OK")
    sock.sendall(b"d LOGOUT\r\n")
    sock.close()
    return received


def _cpu() -> float:
    """User + system CPU seconds of this process (robust when the machine is busy)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_child(port: int, ca_file: str, user: str, password: str) -> None:
    endpoint = Endpoint("127.0.0.1", port, TLSPolicy(ca_file=Path(ca_file)))
    count, size = asyncio.run(fetch_ours(endpoint, user, Secret(password), None))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    status = Path("/proc/self/status").read_text()
    peak_kb = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
    )
    print(f"{count} {size} {peak_kb}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=150)
    parser.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        port, ca, user, password = args.rss_child
        rss_child(int(port), ca, user, password)
        return
    with DovecotServer() as server:
        user = server.new_mailbox()
        t0 = time.perf_counter()
        total = seed(server, user, args.messages)
        print(
            f"seeded {args.messages} messages, {total / 1e6:.0f} MB "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        endpoint = Endpoint(server.host, server.imaps_port, TLSPolicy(ca_file=server.ca_file))
        password = server.password(user)
        cpu_used: dict[str, list[float]] = {
            k: [] for k in ("ours, to nowhere", "ours, to files", "raw ssl socket")
        }
        results: dict[str, list[float]] = {
            "ours, to nowhere": [],
            "ours, to files": [],
            "raw ssl socket": [],
        }
        work = Path(tempfile.mkdtemp(prefix="exoimap-bench-"))
        try:
            for _ in range(args.runs):
                t, cpu = time.perf_counter(), _cpu()
                count, size = asyncio.run(fetch_ours(endpoint, user, password, None))
                results["ours, to nowhere"].append(time.perf_counter() - t)
                cpu_used["ours, to nowhere"].append(_cpu() - cpu)
                assert count == args.messages, count
                out = work / "files"
                out.mkdir()
                t, cpu = time.perf_counter(), _cpu()
                asyncio.run(fetch_ours(endpoint, user, password, out))
                results["ours, to files"].append(time.perf_counter() - t)
                cpu_used["ours, to files"].append(_cpu() - cpu)
                shutil.rmtree(out)
                t, cpu = time.perf_counter(), _cpu()
                received = fetch_raw(
                    server.host, server.imaps_port, server.ca_file, user, password.reveal()
                )
                results["raw ssl socket"].append(time.perf_counter() - t)
                cpu_used["raw ssl socket"].append(_cpu() - cpu)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"fetched {count} messages, {size / 1e6:.0f} MB of bodies "
            f"(raw read {received / 1e6:.0f} MB on the wire)"
        )
        for name, times in results.items():
            med = statistics.median(times)
            print(
                f"  {name:18s} median {med:6.2f} s  ({size / 1e6 / med:6.1f} MB/s)  "
                f"client CPU {statistics.median(cpu_used[name]):5.2f} s  "
                f"runs: {', '.join(f'{x:.2f}' for x in times)}"
            )

        big_user = server.new_mailbox()
        rng = random.Random(7)
        big = make_message(rng, 0, args.big_mb * 1_000_000, datetime(2024, 1, 1, tzinfo=UTC))
        server.write_message(big_user, big, serial=0)
        server.fix_ownership(big_user)
        del big
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.imap_fetch",
                "--rss-child",
                str(server.imaps_port),
                str(server.ca_file),
                big_user,
                server.password(big_user).reveal(),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        count, size, peak_kb = (int(x) for x in child.stdout.split())
        verdict = "OK" if peak_kb < 100_000 else "OVER the 100 MB target"
        print(f"one {size / 1e6:.0f} MB message: peak RSS {peak_kb / 1024:.0f} MB ({verdict})")


if __name__ == "__main__":
    main()
