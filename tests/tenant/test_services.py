"""The private Redis and PostgreSQL the tenant tests run against are real and isolated."""

from __future__ import annotations

import psycopg
import pytest
import redis

pytestmark = pytest.mark.xdist_group("tenant")


def test_redis_answers_and_starts_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_each_test_gets_its_own_empty_database(database_url: str, postgres_server: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (x int)")
    assert database_url != postgres_server
    # the cluster lives in its own temporary folder, not a system one
    with psycopg.connect(postgres_server) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        assert row is not None
        assert "exoimap-postgres-" in row[0]
