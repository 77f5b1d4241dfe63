"""``exoimap tenant backup`` run by real ``exoimap worker`` processes over the real Redis,
PostgreSQL and sandbox tenant: every mailbox archived once and byte-exact, a killed worker's
job finished by another with nothing duplicated, one run per mailbox at a time."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from exoimap import audit
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.tenant.lease import lease_key
from tests.tenant.helpers import Setup, archived, delivered, make_mailboxes
from tests.tenant.workers import Workers, all_runs, wait_for, wait_until_ok, worker_pool

pytestmark = [pytest.mark.xdist_group("tenant"), pytest.mark.slow]


def test_two_workers_archive_every_mailbox_once_byte_exact(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 6)
    setup.add_and_discover()
    with worker_pool(setup.database, setup.redis_url, setup.logs) as workers:
        workers.start()
        workers.start()
        setup.backup()
        wait_until_ok(setup.database, upns)
    runs = all_runs(setup.database)
    assert Counter(r.outcome for r in runs) == {"ok": 6}
    assert len({r.worker for r in runs}) == 2
    for i, upn in enumerate(upns):
        assert sorted(archived(setup.archives / upn.lower())) == sorted(delivered(setup.app, i))
    # each job's start and end in the audit log, one hash chain over both worker processes
    assert sorted(r.data["mailbox"] for r in _jobs("finished")) == [u.lower() for u in upns]
    assert len(_jobs("started")) == 6
    assert {r.account for r in _jobs()} == {"tenant-acme"}
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["tenant", "status", "acme", "--database", setup.database]) == 0
    out = capsys.readouterr().out
    assert "6 mailboxes: 6 ok" in out
    assert f"{upns[0].lower()}  ok  last success" in out


def _jobs(state: str | None = None) -> list[audit.AuditRecord]:
    """The workers' ``worker.job`` audit records (in the test's home), of one state."""
    records = audit.read_records(Paths.from_env().audit_dir)
    return [r for r in records if r.event == "worker.job" and state in (None, r.data["state"])]


def _slow_server(setup: Setup) -> ExchangeSettings:
    """The sandbox's IMAP settings with a port of its own, for a slowed-down server."""
    return dataclasses.replace(setup.sandbox.server.settings, port=0)


@dataclass
class HalfWay:
    """One mailbox being backed up by one worker, its first messages already archived."""

    upn: str
    root: Path
    workers: Workers
    worker: subprocess.Popen[bytes]


@contextlib.contextmanager
def backup_half_way(setup: Setup, messages: int) -> Iterator[HalfWay]:
    """A mailbox of ``messages`` on a slowed-down IMAP server (every write waits 0.2 s, so
    the backup takes seconds), one worker backing it up, past its first messages."""
    (upn,) = make_mailboxes(setup.sandbox, setup.app, 1, messages=messages)
    root = setup.archives / upn.lower()
    with setup.sandbox.extra_server(_slow_server(setup), share_mailboxes=True) as slow:
        slow.faults.delay = 0.2
        setup.add_and_discover("--imap-port", str(slow.port))
        with worker_pool(setup.database, setup.redis_url, setup.logs) as workers:
            worker = workers.start()
            setup.backup()
            wait_for(
                lambda: (root / "maildir").is_dir() and len(archived(root)) >= 3,
                "the first messages in the archive",
                worker,
            )
            yield HalfWay(upn, root, workers, worker)


def test_killed_worker_job_is_redelivered_and_resumes_without_duplicates(setup: Setup) -> None:
    messages = 40
    with backup_half_way(setup, messages) as job:
        os.kill(job.worker.pid, signal.SIGKILL)
        job.worker.wait(30)
        kept = len(archived(job.root))
        job.workers.start()
        wait_until_ok(setup.database, [job.upn])
    runs = all_runs(setup.database)
    assert [r.outcome for r in runs] == ["abandoned", "ok"]
    assert runs[0].message_id == runs[1].message_id  # the same job, redelivered
    assert runs[0].worker != runs[1].worker
    # resumed from the archive: what the dead worker had archived was not fetched again
    assert runs[1].copied <= messages + 1 - kept
    assert sorted(archived(job.root)) == sorted(delivered(setup.app, 0, messages))


def test_the_same_mailbox_queued_twice_never_runs_twice_at_once(setup: Setup) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 1, messages=20)
    with setup.sandbox.extra_server(_slow_server(setup), share_mailboxes=True) as slow:
        slow.faults.delay = 0.2  # long enough for the other worker to take the second job
        setup.add_and_discover("--imap-port", str(slow.port))
        with worker_pool(setup.database, setup.redis_url, setup.logs) as workers:
            workers.start()
            workers.start()
            setup.backup()
            setup.backup()
            wait_until_ok(setup.database, upns, count=2)
    first, second = all_runs(setup.database)
    assert (first.outcome, second.outcome) == ("ok", "ok")
    # each worker took one message: the second found the lease taken and waited its turn
    log = setup.log()
    assert "held by another worker" in log
    assert first.finished_at is not None
    assert second.started_at >= first.finished_at
    assert (first.copied, second.copied) == (21, 0)
    assert sorted(archived(setup.archives / upns[0].lower())) == sorted(delivered(setup.app, 0, 20))


def test_mailbox_whose_permission_is_removed_is_dead_lettered_with_its_reason(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 3)
    setup.add_and_discover()
    setup.sandbox.admin.remove_mailbox_permission(upns[1], setup.app.name)
    with worker_pool(setup.database, setup.redis_url, setup.logs) as workers:
        workers.start()
        setup.backup()
        wait_until_ok(setup.database, [upns[0], upns[2]])
        wait_for(
            lambda: any(r.outcome == "dead" for r in all_runs(setup.database)),
            "the refused mailbox to be dead-lettered",
        )
    dead = [r for r in all_runs(setup.database) if r.outcome == "dead"]
    assert [r.upn for r in dead] == [upns[1].lower()]
    (dead_lettered,) = _jobs("dead_lettered")
    assert dead_lettered.data["mailbox"] == upns[1].lower()
    assert dead_lettered.outcome == "failure"
    assert "Add-MailboxPermission" in dead_lettered.data["error"]
    assert dead[0].attempt == 1  # a permanent refusal is not retried
    # the message itself is in Dramatiq's dead-letter queue
    dead_letters = redis.Redis.from_url(setup.redis_url).zcard("exoimap:exoimap-mailboxes.XQ")
    assert dead_letters == 1
    capsys.readouterr()
    assert main(["tenant", "status", "acme", "--database", setup.database]) == 4
    out = capsys.readouterr().out
    assert f"{upns[1].lower()}  dead  no success yet" in out
    assert "attempt 1 dead:" in out
    assert "Add-MailboxPermission" in out  # the reason comes with its fix
    assert "3 mailboxes: 1 dead, 2 ok" in out


def test_a_job_that_loses_its_lease_stops_and_is_retried(setup: Setup) -> None:
    messages = 40
    with backup_half_way(setup, messages) as job:
        # the lease lapses under the job (as when Redis was out of reach too long)
        redis.Redis.from_url(setup.redis_url).delete(lease_key("acme", job.upn))
        wait_until_ok(setup.database, [job.upn])
    runs = all_runs(setup.database)
    assert [r.outcome for r in runs] == ["failed", "ok"]
    assert "lease was lost" in runs[0].detail
    lost = [
        r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == "worker.lease_lost"
    ]
    assert [r.data["mailbox"] for r in lost] == [job.upn.lower()]
    assert [r.data["state"] for r in _jobs()] == ["started", "failed", "started", "finished"]
    assert runs[1].attempt == 2
    assert sorted(archived(job.root)) == sorted(delivered(setup.app, 0, messages))


def test_a_tenants_parallel_limit_holds_across_workers(setup: Setup) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 3)
    with setup.sandbox.extra_server(_slow_server(setup), share_mailboxes=True) as slow:
        slow.faults.delay = 0.2  # long enough for the other worker to try a second mailbox
        setup.add_and_discover("--imap-port", str(slow.port), "--max-parallel", "1")
        with worker_pool(setup.database, setup.redis_url, setup.logs) as workers:
            workers.start()
            workers.start()
            setup.backup()
            wait_until_ok(setup.database, upns)
    runs = sorted(all_runs(setup.database), key=lambda r: r.started_at)
    assert [r.outcome for r in runs] == ["ok", "ok", "ok"]
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None
        assert later.started_at >= earlier.finished_at
    log = setup.log()
    assert "is at its limit (1 at once)" in log
