"""Run one exoimap backup through the library (what ``exoimap sync NAME`` does).

    python -m bench.bench_exoimap --port P --ca F --user U --password W --archive DIR

Password (PLAIN) sign-in, a :class:`RemoteImapStore`, a durable :class:`ArchiveStore`
(the default ``fsync_mode="auto"``: every batch flushed before it is committed). With
``--ignore-extensions CONDSTORE,QRESYNC`` the server is treated as Exchange is (no
modification sequences: every folder's flags are listed and compared). Prints the run's
summary as JSON. The harness runs this under ``/usr/bin/time -v``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from exoimap.app import backup
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.session import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import SyncPolicy


async def run(args: argparse.Namespace) -> dict[str, object]:
    endpoint = Endpoint("127.0.0.1", args.port, TLSPolicy(ca_file=args.ca))
    creds = PasswordCredentials(args.user, Secret(args.password))
    ignored = tuple(e.strip().upper() for e in args.ignore_extensions.split(",") if e.strip())
    source = await RemoteImapStore.connect(
        endpoint, creds, max_connections=args.connections, ignore_extensions=ignored
    )
    archive = ArchiveStore.open(args.archive, fsync_mode=args.fsync)
    try:
        report = await backup(source, archive, SyncPolicy(max_parallel_folders=args.connections))
    finally:
        await archive.close()
        await source.close()
    return report.summary()


def main() -> int:
    parser = argparse.ArgumentParser(description="one exoimap backup run")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--fsync", default="auto")
    parser.add_argument(
        "--ignore-extensions", default="", help="server extensions to leave unused, e.g. CONDSTORE"
    )
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(json.dumps(summary, default=str))
    return 1 if summary.get("failed_folders") else 0


if __name__ == "__main__":
    sys.exit(main())
