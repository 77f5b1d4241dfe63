"""The catalog's migrations: an older catalog is brought up to date, keeping its rows."""

from __future__ import annotations

import psycopg
import pytest

from exoimap.tenant.catalog import open_catalog
from exoimap.tenant.schema import MIGRATIONS, migrate

pytestmark = pytest.mark.xdist_group("tenant")


def test_a_catalog_of_the_first_version_is_migrated_and_keeps_its_tenants(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE exoimap_schema"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(MIGRATIONS[0].encode())
        conn.execute("INSERT INTO exoimap_schema (version) VALUES (1)")
        conn.execute(
            "INSERT INTO tenants (name, tenant, client_id, certificate, graph_url, archive_root)"
            " VALUES ('old', 'contoso.com', 'id', '/c.pem', 'https://graph.microsoft.com', '/a')"
        )
    with open_catalog(database_url) as catalog:
        assert catalog.tenant("old").max_parallel == 0
        versions = catalog.conn.execute("SELECT version FROM exoimap_schema ORDER BY 1")
        assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
        # running it again changes nothing
        assert migrate(catalog.conn) == len(MIGRATIONS)
        assert catalog.tenant_names() == ["old"]
