"""exoimap's backup against the sandbox Exchange server with throttling on.

    .venv/bin/python -m bench.bench_throttle [--messages 1000] [--max-messages 40]
        [--window 2.0] [--backoff-ms 500] [--bye]

The sandbox answers ``NO Request is throttled. Suggested Backoff Time: N milliseconds``
(optionally followed by ``BYE``) once a mailbox was served more than ``--max-messages`` in
``--window`` seconds. The run signs in with XOAUTH2 (a token from the sandbox identity
half through real MSAL), backs the whole mailbox up into a durable archive and reports:
how often it was throttled, whether every wait was at least the suggested backoff, and
whether every message arrived (counted against the sandbox's own mailbox summary).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from exoimap.app import backup
from exoimap.net.credentials import OAuth2Credentials, StaticToken
from exoimap.net.session import Endpoint, NetEvent
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.tenant import TenantOptions, running_tenant
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.remote import RemoteImapStore

__all__ = ["throttled_run"]


def throttled_run(
    messages: int = 1000,
    max_messages: int = 40,
    window: float = 2.0,
    backoff_ms: int = 500,
    bye: bool = False,
) -> dict[str, Any]:
    policy = ThrottlePolicy(
        window_seconds=window, max_messages=max_messages, backoff_ms=backoff_ms, bye=bye
    )
    options = TenantOptions(
        exchange=ExchangeSettings.for_tests(throttle=policy), seed_messages=messages
    )
    with tempfile.TemporaryDirectory(prefix="exoimap-throttle-") as tmp:
        with running_tenant(Path(tmp) / "state", options) as tenant:
            tenant.admin.configure(device_code_interval=1)
            upn = tenant.users[0][0]
            expected = sum(tenant.mailbox_summary()[upn].values())
            token = Secret(tenant.user_token(upn))
            endpoint = Endpoint("127.0.0.1", tenant.imap_port, TLSPolicy(ca_file=tenant.ca_file))
            events: list[NetEvent] = []

            async def go() -> dict[str, Any]:
                source = await RemoteImapStore.connect(
                    endpoint,
                    OAuth2Credentials(upn, StaticToken(token)),
                    on_event=events.append,
                )
                archive = ArchiveStore.open(Path(tmp) / "archive")
                try:
                    report = await backup(source, archive)
                finally:
                    await archive.close()
                    await source.close()
                return report.summary()

            started = time.monotonic()
            summary = asyncio.run(go())
            wall = time.monotonic() - started
        db = sqlite3.connect(Path(tmp) / "archive" / "index.sqlite")
        stored = db.execute("SELECT count(*) FROM messages WHERE gone_at IS NULL").fetchone()[0]
        db.close()
    throttled = [e for e in events if e.kind == "throttled"]
    waits = [float(getattr(e, "wait", 0.0) or 0.0) for e in throttled]
    return {
        "messages": expected,
        "stored": stored,
        "complete": stored == expected and not summary.get("failed_folders"),
        "throttled": len(throttled),
        "min_wait_s": min(waits) if waits else None,
        "suggested_backoff_s": backoff_ms / 1000,
        "kept_to_backoff": all(w >= backoff_ms / 1000 for w in waits),
        "policy": f"{max_messages} messages per {window} s, backoff {backoff_ms} ms"
        + (", then BYE" if bye else ""),
        "wall_s": round(wall, 1),
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--max-messages", type=int, default=40)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--backoff-ms", type=int, default=500)
    parser.add_argument("--bye", action="store_true")
    args = parser.parse_args()
    result = throttled_run(args.messages, args.max_messages, args.window, args.backoff_ms, args.bye)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
