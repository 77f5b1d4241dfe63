"""What a *resident* exoimap would pay for a no-change resync (input for a design decision).

    .venv/bin/python -m bench.warm_resync [--messages 20000] [--runs 7]

A cold ``exoimap sync`` pays for the interpreter and its imports on every run (see the
"Python floor" in docs/benchmarks.md). This measures the rest, inside one process that
has already imported everything: after one initial backup of the seeded Dovecot mailbox,
``--runs`` no-change backups, each done two ways:

- *reconnect*: a new :class:`RemoteImapStore` (TLS handshake, sign-in) and a fresh
  :meth:`ArchiveStore.open` per run, as a command server answering one request at a time
  would do;
- *kept open*: the same store and archive for every run (an agent holding its
  connections and its archive lock between runs).

mbsync's cold resync is timed the same number of times on the same server for reference.
Nothing here is a product feature; it only says how far a resident process could go.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.bench_check import Target, command
from bench.bench_server import BENCH_PASSWORD, BENCH_USER, SeededServer, ensure_tools
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.session import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import backup


async def _runs(server: SeededServer, archive_dir: Path, runs: int) -> dict[str, list[float]]:
    endpoint = Endpoint("127.0.0.1", server.port, TLSPolicy(ca_file=server.ca_file))
    creds = PasswordCredentials(BENCH_USER, Secret(BENCH_PASSWORD))

    async def once(source: RemoteImapStore, archive: ArchiveStore, *, expect: int) -> None:
        report = await backup(source, archive)
        fetched = report.summary()["fetched"]
        if fetched != expect or not report.ok:
            raise SystemExit(f"unexpected backup: {report.summary()}")

    source = await RemoteImapStore.connect(endpoint, creds)
    archive = ArchiveStore.open(archive_dir)
    await once(source, archive, expect=int(str(server.info["messages"])))
    await asyncio.sleep(0.1)  # the archive's directory stamps settle
    times: dict[str, list[float]] = {"kept open": [], "reconnect": []}
    for _ in range(runs):
        started = time.perf_counter()
        await once(source, archive, expect=0)
        times["kept open"].append(time.perf_counter() - started)
    await archive.close()
    await source.close()
    for _ in range(runs):
        started = time.perf_counter()
        fresh_source = await RemoteImapStore.connect(endpoint, creds)
        fresh_archive = ArchiveStore.open(archive_dir)
        try:
            await once(fresh_source, fresh_archive, expect=0)
        finally:
            await fresh_archive.close()
            await fresh_source.close()
        times["reconnect"].append(time.perf_counter() - started)
    return times


def _mbsync(server: SeededServer, home: Path, runs: int) -> list[float]:
    argv = command("mbsync", Target(server.port, server.ca_file, BENCH_USER, BENCH_PASSWORD), home)
    subprocess.run(argv, check=True)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ensure_tools()
    server = SeededServer.start(args.messages, 0)
    try:
        with tempfile.TemporaryDirectory(prefix="exoimap-warm-") as scratch:
            times = asyncio.run(_runs(server, Path(scratch) / "archive", args.runs))
            times["mbsync (cold process)"] = _mbsync(server, Path(scratch), args.runs)
    finally:
        server.stop()
    for label, values in times.items():
        print(
            f"{label:22s} median {statistics.median(values) * 1000:6.1f} ms  "
            f"min {min(values) * 1000:6.1f}  max {max(values) * 1000:6.1f}  ({len(values)} runs)"
        )


if __name__ == "__main__":
    main()
