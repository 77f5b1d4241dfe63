"""Whole-tenant backups with 1, 2 and 4 ``exoimap worker`` processes against the sandbox.

    .venv/bin/python -m bench.tenant_scale [--mailboxes 1000] [--messages 200]
        [--workers 1,2,4] [--concurrency 2] [--budget 600] [--server-limit 900]
        [--window 10] [--out bench/work/tenant-scale.json] [--chart docs/tenant-scale.png]
        [--seed-only]

One sandbox tenant (in this process) holds ``--mailboxes`` mailboxes of ``--messages``
messages each (seeded straight into the sandbox's stores). For each worker count, on a fresh
catalog database, an empty Redis and an empty archive root: ``tenant add`` (with a request
budget of ``--budget`` IMAP commands per ``--window`` seconds for the whole tenant),
``tenant discover``, the workers, ``tenant backup``, and the time until every mailbox has a
successful run. The sandbox's IMAP server throttles the app past ``--server-limit`` commands
per window and counts what it was sent, so the table shows the budget held: the most
commands in any window, and how many were refused (0 when the budget held); and the
budget's own count of the commands it let go, which must equal the sandbox's.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis

from exoimap.sandbox.backup_app import BackupApp, make_backup_app, tenant_add_options
from exoimap.sandbox.exchange.config import ThrottlePolicy
from exoimap.sandbox.identity.model import FULL_ACCESS, MailboxPermission, User
from exoimap.sandbox.services import running_postgres, running_redis, stop
from exoimap.sandbox.tenant import SandboxTenant, running_tenant
from exoimap.store.conformance import sample_message
from exoimap.tenant.budget import requests_sent

__all__ = ["main"]

APP = "bench-tenant-backup"


def _seed(sandbox: SandboxTenant, mailboxes: int, messages: int) -> list[str]:
    """Users, FullAccess for the app and mail, in one directory change and one loop call
    per mailbox (the admin API's one-change-per-call is too slow for thousands)."""
    domain = sandbox.tenant_domain
    upns = [f"bench-{i:05d}@{domain}" for i in range(mailboxes)]
    with sandbox.admin.store.transaction() as directory:
        tenant = directory.tenant(domain)
        assert tenant is not None
        principal = next(p for p in tenant.exchange_principals if p.display_name == APP)
        for upn in upns:
            tenant.users.append(
                User(str(uuid.uuid4()), upn, tenant.tenant_id, upn, secrets.token_urlsafe(12))
            )
            tenant.mailbox_permissions.append(
                MailboxPermission(upn, principal.object_id, [FULL_ACCESS])
            )
    bodies = [sample_message(n + 1, 2000 + 37 * n) for n in range(messages)]
    boxes = sandbox.server.mailboxes
    for upn in upns:
        sandbox.exchange.run(
            lambda u=upn: [boxes.get(u).store.add_message("INBOX", b) for b in bodies]
        )
    return upns


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "exoimap", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"exoimap {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _fresh_database(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


def _ok(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(DISTINCT upn) FROM runs WHERE outcome = 'ok'").fetchone()
    return int(row[0]) if row else 0


def _round(
    sandbox: SandboxTenant, setup: dict[str, Any], workers: int, work: Path
) -> dict[str, Any]:
    database = _fresh_database(setup["postgres"])
    redis.Redis.from_url(setup["redis"]).flushall()
    args = setup["args"]
    _cli(
        "tenant", "add", "bench", *args,
        "--archive-root", str(work / f"archives-{workers}"),
        "--database", database,
    )  # fmt: skip
    _cli("tenant", "discover", "bench", "--database", database, "--redis", setup["redis"])
    logs = [(work / f"worker-{workers}-{n}.log").open("wb") for n in range(workers)]
    command = [
        sys.executable, "-m", "exoimap", "worker",
        "--concurrency", str(setup["concurrency"]),
        "--database", database, "--redis", setup["redis"],
    ]  # fmt: skip
    processes = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    server = setup["server"]
    before = server.app_requests(setup["client_id"], setup["window"])
    started = time.monotonic()
    try:
        _cli("tenant", "backup", "bench", "--database", database, "--redis", setup["redis"])
        while (done := _ok(database)) < setup["mailboxes"]:
            if any(p.poll() is not None for p in processes):
                raise SystemExit(f"a worker stopped; see {work}")
            time.sleep(0.5)
        seconds = time.monotonic() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            stop(process, wait=60)
        for log in logs:
            log.close()
    sent, busiest, throttled = server.app_requests(setup["client_id"], setup["window"], started)
    counted = requests_sent(redis.Redis.from_url(setup["redis"]), "bench")
    commands, refused = sent - before[0], throttled - before[2]
    mailboxes, messages = setup["mailboxes"], setup["mailboxes"] * setup["messages"]
    return {
        "workers": workers,
        "concurrency": setup["concurrency"],
        "mailboxes": done,
        "messages": messages,
        "seconds": round(seconds, 1),
        "mailboxes_per_s": round(mailboxes / seconds, 2),
        "messages_per_s": round(messages / seconds, 1),
        "commands": commands,
        "budget_counted": counted,
        "counts_agree": counted == commands + refused,
        "busiest_window": busiest,
        "refused": refused,
    }


def _chart(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no chart)")
        return
    figure, axis = plt.subplots(figsize=(5, 3.2))
    workers = [r["workers"] for r in results]
    axis.plot(workers, [r["messages_per_s"] for r in results], marker="o", label="measured")
    first = results[0]["messages_per_s"] / results[0]["workers"]
    axis.plot(workers, [first * w for w in workers], linestyle="--", label="linear")
    axis.set_xlabel("worker processes")
    axis.set_ylabel("messages per second")
    axis.set_xticks(workers)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _tenant_args(
    sandbox: SandboxTenant, port: int, app: BackupApp, opts: argparse.Namespace
) -> list[str]:
    return [
        *tenant_add_options(sandbox, app.client_id, app.certificate, port),
        "--tenant-requests", str(opts.budget), "--budget-window", str(opts.window),
        "--include", "bench-*@*",
    ]  # fmt: skip


def _measure(work: Path, opts: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with (
        running_redis() as redis_url,
        running_postgres() as postgres,
        running_tenant(work / "sandbox") as sandbox,
    ):
        policy = ThrottlePolicy(window_seconds=opts.window, max_app_requests=opts.server_limit)
        settings = dataclasses.replace(sandbox.server.settings, port=0, throttle=policy)
        app = make_backup_app(sandbox, APP, work)
        seeding = time.monotonic()
        _seed(sandbox, opts.mailboxes, opts.messages)
        # The seeded mailboxes are about a million Python objects that the run never frees:
        # frozen, the sandbox's full garbage collections no longer walk them. Those pauses
        # held its event loop, which then read the workers' commands late and in bursts,
        # so its count of the busiest window said more than the workers had sent in one.
        gc.collect()
        gc.freeze()
        took = time.monotonic() - seeding
        print(f"seeded {opts.mailboxes} x {opts.messages} in {took:.1f} s", flush=True)
        if opts.seed_only:
            return results
        with sandbox.extra_server(settings, share_mailboxes=True) as server:
            setup = {
                "postgres": postgres,
                "redis": redis_url,
                "server": server,
                "client_id": app.client_id,
                "mailboxes": opts.mailboxes,
                "messages": opts.messages,
                "concurrency": opts.concurrency,
                "window": opts.window,
                "args": _tenant_args(sandbox, server.port, app, opts),
            }
            for count in (int(w) for w in opts.workers.split(",")):
                result = _round(sandbox, setup, count, work)
                print(json.dumps(result), flush=True)
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tenant_scale")
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--budget", type=int, default=600)
    parser.add_argument("--server-limit", type=int, default=900)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--seed-only", action="store_true", help="Time the seeding only.")
    parser.add_argument("--out", type=Path, default=Path("bench/work/tenant-scale.json"))
    parser.add_argument("--chart", type=Path, default=Path("docs/tenant-scale.png"))
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="exoimap-tenant-scale-") as tmp:
        work = Path(tmp)
        os.environ["EXOIMAP_HOME"] = str(work / "home")
        os.environ["EXOIMAP_VAULT_PASSPHRASE"] = secrets.token_urlsafe(16)
        os.environ["EXOIMAP_NO_KEYRING"] = "1"
        results = _measure(work, opts)
    if opts.seed_only:
        return 0
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    document = {"settings": {k: str(v) for k, v in vars(opts).items()}, "results": results}
    opts.out.write_text(json.dumps(document, indent=2))
    _chart(results, opts.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
