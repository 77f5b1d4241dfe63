"""Fixtures of the tenant tests: one private Redis and one private PostgreSQL per test
process (session scope), a fresh database and an empty Redis for each test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from exoimap.auth.vault import Vault
from exoimap.sandbox.services import running_postgres, running_redis
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from tests.cli.sync_helpers import isolated_home
from tests.tenant.helpers import Setup, make_tenant_app


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture
def database_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def setup(
    sandbox_tenant: SandboxTenant,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Setup:
    """A tenant app in the sandbox, an empty catalog and queue, and this test's home."""
    isolated_home(tmp_path, monkeypatch)
    # the workers open this vault (made here with the tests' cheap key stretching)
    Vault.from_paths().set_secret("created", Secret(b"by the test"))
    (tmp_path / "logs").mkdir()
    return Setup(
        sandbox_tenant,
        make_tenant_app(sandbox_tenant, tmp_path),
        database_url,
        redis_url,
        tmp_path / "archives",
        tmp_path / "logs",
    )


@pytest.fixture
def graph_budget(sandbox_tenant: SandboxTenant) -> Iterator[Callable[..., object]]:
    """Lets a test tighten the sandbox Graph's budget; puts it back after."""
    before = sandbox_tenant.admin.directory.settings
    saved = (before.graph_budget, before.graph_budget_window)
    yield sandbox_tenant.admin.configure
    sandbox_tenant.admin.configure(graph_budget=saved[0], graph_budget_window=saved[1])
