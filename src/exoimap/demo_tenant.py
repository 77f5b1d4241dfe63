"""``make demo-tenant``: a whole sandbox tenant backed up by two ``exoimap worker``
processes over a private Redis and PostgreSQL.

It starts the services and a sandbox tenant (in this process), registers a backup app with
a certificate, ``User.Read.All``, ``IMAP.AccessAsApp`` and FullAccess on 50 new mailboxes,
then runs the real CLI step by step: ``tenant add``, ``tenant discover``, two workers,
``tenant backup``, ``tenant status``, ``tenant verify --deep`` and ``audit verify``.
Everything lives in a temporary folder; any failed step says what failed and exits
non-zero.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg

from exoimap.demo import DemoFailed, exoimap_command, run, run_demo, say
from exoimap.sandbox.backup_app import make_backup_app, tenant_add_options
from exoimap.sandbox.services import running_postgres, running_redis, stop
from exoimap.sandbox.tenant import SandboxTenant, running_tenant
from exoimap.store.conformance import sample_message

__all__ = ["main"]

MAILBOXES = 50
MESSAGES = 8
WORKERS = 2
BACKUP_TIMEOUT = 600.0


def _mailboxes(sandbox: SandboxTenant) -> int:
    """50 staff mailboxes with mail, FullAccess for the backup app; the messages made."""
    for i in range(MAILBOXES):
        upn = f"staff-{i:02d}@{sandbox.tenant_domain}"
        sandbox.admin.create_user(upn)
        for n in range(MESSAGES):
            sandbox.exchange.deliver(upn, sample_message(n + 1, 600 + 97 * n + i))
        sandbox.admin.add_mailbox_permission(upn, "exoimap-tenant-backup")
    return MAILBOXES * MESSAGES


def _ok_count(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT upn) FROM runs WHERE tenant = 'demo' AND outcome = 'ok'"
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_for_backups(database: str, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + BACKUP_TIMEOUT
    shown = -1
    while (done := _ok_count(database)) < MAILBOXES:
        if any(w.poll() is not None for w in workers):
            raise DemoFailed("a worker stopped during the backup (see its log)")
        if time.monotonic() > deadline:
            raise DemoFailed(f"only {done} of {MAILBOXES} mailboxes backed up in time")
        if done // 10 != shown // 10:
            say(f"  {done} of {MAILBOXES} mailboxes backed up")
            shown = done
        time.sleep(1.0)
    say(f"  {MAILBOXES} of {MAILBOXES} mailboxes backed up")


def _start_workers(work: Path, database: str, redis_url: str) -> list[subprocess.Popen[bytes]]:
    args = ["worker", "--concurrency", "2", "--database", database, "--redis", redis_url]
    say(f"\n$ exoimap {' '.join(args)}   # twice, in the background (logs in {work})")
    workers = []
    for n in range(WORKERS):
        with (work / f"worker-{n}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(  # noqa: S603 - our own CLI, fixed argv
                    [*exoimap_command(), *args], stdout=log, stderr=subprocess.STDOUT
                )
            )
    return workers


def demo(work: Path) -> str:
    started = time.monotonic()
    home = work / "home"
    os.environ["EXOIMAP_HOME"] = str(home)
    os.environ["EXOIMAP_VAULT_PASSPHRASE"] = secrets.token_urlsafe(16)
    os.environ["EXOIMAP_NO_KEYRING"] = "1"
    say(f"exoimap tenant demo: everything happens in {work} (EXOIMAP_HOME={home}).")
    with ExitStack() as stack:
        say("# Starting a private Redis, a private PostgreSQL and a sandbox tenant")
        redis_url = stack.enter_context(running_redis())
        database = stack.enter_context(running_postgres())
        sandbox = stack.enter_context(running_tenant(work / "sandbox"))
        app = make_backup_app(sandbox, "exoimap-tenant-backup", work)
        messages = _mailboxes(sandbox)
        say(f"  {MAILBOXES} mailboxes of {MESSAGES} messages, FullAccess for the backup app")
        common = ["--database", database]
        run(
            [
                "tenant", "add", "demo",
                *tenant_add_options(sandbox, app.client_id, app.certificate),
                "--archive-root", str(work / "archives"),
                "--include", "staff-*@*",
                *common,
            ]
        )  # fmt: skip
        run(["tenant", "discover", "demo", *common])
        workers = _start_workers(work, database, redis_url)
        try:
            run(["tenant", "backup", "demo", *common, "--redis", redis_url])
            _wait_for_backups(database, workers)
        finally:
            say("\n# Stopping the workers (SIGTERM)")
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                stop(worker, wait=60)
        run(["tenant", "status", "demo", *common])
        run(["tenant", "verify", "demo", "--deep", *common])
        run(["audit", "verify"])
    seconds = time.monotonic() - started
    return (
        f"demo ok: {MAILBOXES} mailboxes ({messages} messages) backed up by {WORKERS} workers"
        f" and verified byte for byte in {seconds:.1f} s"
    )


def main() -> int:
    return run_demo("exoimap-demo-tenant-", demo)


if __name__ == "__main__":
    sys.exit(main())
