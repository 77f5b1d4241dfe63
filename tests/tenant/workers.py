"""``exoimap worker`` processes for the tenant tests, and waiting on the catalog."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from exoimap.sandbox.services import stop
from exoimap.tenant.catalog import open_catalog
from exoimap.tenant.history import runs
from exoimap.tenant.model import Run

#: Short enough that the tests of dead workers finish quickly, long enough not to lapse
#: while a loaded machine runs a job.
LEASE_SECONDS = "4"
HEARTBEAT_SECONDS = "3"


class Workers:
    """Starts worker processes with the test's home and services; stops them all after."""

    def __init__(self, database: str, redis_url: str, logs: Path) -> None:
        self.database, self.redis_url, self.logs = database, redis_url, logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.processes)}.log"
        command = [
            sys.executable, "-m", "exoimap", "worker",
            "--concurrency", str(concurrency),
            "--lease-seconds", LEASE_SECONDS,
            "--heartbeat-seconds", HEARTBEAT_SECONDS,
            "--retry-seconds", "0.5",
            "--database", self.database,
            "--redis", self.redis_url,
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        self.processes.append(process)
        wait_for(
            lambda: b"stop with" in log.read_bytes(),
            f"worker {len(self.processes)} to start",
            process,
        )
        return process

    def log(self, n: int) -> str:
        return (self.logs / f"worker-{n}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            stop(process, wait=60)


@contextlib.contextmanager
def worker_pool(database: str, redis_url: str, logs: Path) -> Iterator[Workers]:
    workers = Workers(database, redis_url, logs)
    try:
        yield workers
    finally:
        workers.stop_all()


def wait_for(
    done: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 120.0,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.returncode}) waiting for {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def all_runs(database: str, tenant: str = "acme") -> list[Run]:
    with open_catalog(database) as catalog:
        return runs(catalog, tenant)


def wait_until_ok(database: str, upns: list[str], count: int = 1, timeout: float = 180.0) -> None:
    """Until each mailbox has ``count`` successful runs."""

    def done() -> bool:
        ok = [r.upn for r in all_runs(database) if r.outcome == "ok"]
        return all(ok.count(u.lower()) >= count for u in upns)

    wait_for(done, "every mailbox to be backed up", timeout=timeout)
