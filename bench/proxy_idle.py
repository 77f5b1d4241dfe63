"""Memory of ``exoimap proxy`` holding many idle clients: each signed in with an app
password, INBOX selected and in IDLE, each with its own upstream session.

The proxy runs as its own process (as users run it); its resident memory (VmRSS) is read
from /proc before any client, and with ``--clients`` clients idling. The sandbox's Exchange
allows that many connections per mailbox here (the real one allows 20: more clients need
more mailboxes; the proxy's memory is per connection either way). Then one message is
delivered and every client must wake with its EXISTS.

Run: ``.venv/bin/python -m bench.proxy_idle [--clients 100]``
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path

from bench.proxy_latency import Client, free_port, prepared, proxy_process
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.tenant import TenantOptions
from exoimap.store.conformance import sample_message


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS in /proc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    count = parser.parse_args(argv).clients
    load = os.getloadavg()[0]
    print(f"exoimap proxy: {count} idle clients, load {load:.1f}")
    settings = ExchangeSettings.for_tests(
        max_connections_per_mailbox=count + 10, authenticated_timeout=600.0
    )
    options = TenantOptions(exchange=settings, seed_messages=5)
    with (
        tempfile.TemporaryDirectory(prefix="exo-proxy-idle-", dir="/tmp") as tmp,
        prepared(Path(tmp), options) as (tenant, env, upn, password, ca_pem),
    ):
        port = free_port()
        limit = ("--max-per-mailbox", str(count + 10))
        with proxy_process(env, port, *limit) as process:
            before = rss_mb(process.pid)
            context = ssl.create_default_context(cadata=ca_pem)
            started = time.perf_counter()
            clients = []
            for _ in range(count):
                client = Client(port, context)
                client.run(b'LOGIN "%s" "%s"' % (upn.encode(), password.encode()))
                client.run(b"SELECT INBOX")
                client.sock.sendall(b"idle IDLE\r\n")
                if not client.file.readline().startswith(b"+"):
                    raise SystemExit("IDLE was not accepted")
                clients.append(client)
            opened = time.perf_counter() - started
            time.sleep(1.0)  # let the allocator settle
            idle = rss_mb(process.pid)
            tenant.exchange.deliver(upn, sample_message(900, 2_000))
            woken = sum(client.file.readline().endswith(b"EXISTS\r\n") for client in clients)
    print(f"proxy RSS before clients          {before:7.1f} MB")
    print(f"proxy RSS with {count:3d} idle clients  {idle:7.1f} MB")
    print(f"per client                        {(idle - before) * 1024 / count:7.1f} KB")
    print(f"sign-in + SELECT + IDLE, each     {opened * 1000 / count:7.1f} ms")
    print(f"clients woken by one new message  {woken:7d} of {count}")
    return 0 if woken == count else 1


if __name__ == "__main__":
    sys.exit(main())
