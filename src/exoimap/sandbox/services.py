"""Private Redis and PostgreSQL servers for the tenant tests and ``make demo-tenant``:
Debian's own binaries, started in temporary folders on free loopback ports, stopped (and
their folders removed) after.

PostgreSQL refuses to run as root; as root the cluster belongs to the unprivileged
``postgres`` user that Debian's package creates (``runuser``), in a folder under the system
temporary directory that user can reach (pytest's own folders are private to root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import redis

__all__ = ["free_port", "running_postgres", "running_redis", "stop"]

_START_TIMEOUT = 60.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in {_START_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen[bytes], wait: float = 30.0) -> None:
    """SIGTERM, and SIGKILL when it has not ended within ``wait`` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """A Redis server with no persistence; yields its ``redis://`` URL."""
    folder = Path(tempfile.mkdtemp(prefix="exoimap-redis-"))
    port = free_port()
    command = [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(folder / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    url = f"redis://127.0.0.1:{port}/0"

    def ready() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
        except redis.ConnectionError:
            return False

    try:
        _wait_until(ready, "redis-server", process)
        yield url
    finally:
        stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _postgres_bin() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (tools/system-packages installs it)")
    return versions[-1].parent


def _as_postgres_user() -> tuple[list[str], int | None]:
    """The command prefix (and owner uid) to run PostgreSQL unprivileged."""
    if os.geteuid() != 0:
        return [], None
    user = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], user.pw_uid


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster (trust auth on loopback); yields a ``postgresql://`` URL of
    its ``postgres`` database."""
    binaries = _postgres_bin()
    prefix, owner = _as_postgres_user()
    folder = Path(tempfile.mkdtemp(prefix="exoimap-postgres-"))
    if owner is not None:
        os.chown(folder, owner, -1)
    data = folder / "data"
    subprocess.run(  # noqa: S603 - Debian's initdb, fixed argv
        [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust", "--encoding=UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    port = free_port()
    command = [
        *prefix, str(binaries / "postgres"), "-D", str(data),
        "-h", "127.0.0.1", "-p", str(port), "-k", str(folder),
        "-c", "fsync=off", "-c", "max_connections=100",
    ]  # fmt: skip
    log = (folder / "postgres.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - Debian's postgres, fixed argv
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def ready() -> bool:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    try:
        _wait_until(ready, "postgres", process)
        yield url
    finally:
        stop(process)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
