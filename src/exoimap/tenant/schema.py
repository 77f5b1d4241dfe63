"""The tenant catalog's tables, as numbered migrations applied in order.

Each migration runs once, in its own transaction, recorded in ``exoimap_schema``; an
advisory lock keeps two processes starting at once from applying the same one twice. A
migration is never edited once released: a change is a new one at the end.
"""

from __future__ import annotations

import psycopg

__all__ = ["MIGRATIONS", "migrate"]

#: Any constant: the advisory lock that serialises migrations across processes.
_LOCK_ID = 0x6578_6F69

MIGRATIONS: tuple[str, ...] = (
    # 1: tenants, their mailboxes, and every run of a mailbox's backup
    """
    CREATE TABLE tenants (
        name          text PRIMARY KEY,
        tenant        text NOT NULL,
        client_id     text NOT NULL,
        certificate   text NOT NULL,
        cloud         text NOT NULL DEFAULT 'worldwide',
        authority     text,
        imap_host     text,
        imap_port     integer NOT NULL DEFAULT 993,
        ca_file       text,
        graph_url     text NOT NULL,
        archive_root  text NOT NULL,
        include       text[] NOT NULL DEFAULT '{}',
        exclude       text[] NOT NULL DEFAULT '{}',
        created_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE mailboxes (
        tenant        text NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
        upn           text NOT NULL,
        object_id     text NOT NULL,
        display_name  text NOT NULL DEFAULT '',
        active        boolean NOT NULL DEFAULT true,
        discovered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, upn)
    );
    CREATE TABLE runs (
        id            bigserial PRIMARY KEY,
        tenant        text NOT NULL,
        upn           text NOT NULL,
        message_id    text NOT NULL,
        attempt       integer NOT NULL,
        worker        text NOT NULL,
        started_at    timestamptz NOT NULL DEFAULT now(),
        finished_at   timestamptz,
        outcome       text NOT NULL DEFAULT 'running'
                      CHECK (outcome IN ('running', 'ok', 'failed', 'dead', 'abandoned')),
        detail        text NOT NULL DEFAULT '',
        copied        integer NOT NULL DEFAULT 0,
        bytes         bigint NOT NULL DEFAULT 0,
        FOREIGN KEY (tenant, upn) REFERENCES mailboxes(tenant, upn) ON DELETE CASCADE
    );
    CREATE INDEX runs_by_mailbox ON runs (tenant, upn, id DESC);
    """,
    # 2: at most this many mailboxes of a tenant at once, across all workers (0: no limit)
    """
    ALTER TABLE tenants ADD COLUMN max_parallel integer NOT NULL DEFAULT 0
        CHECK (max_parallel >= 0);
    """,
    # 3: the request budget of the tenant and of each mailbox, shared by all workers
    """
    ALTER TABLE tenants
        ADD COLUMN tenant_requests integer NOT NULL DEFAULT 0 CHECK (tenant_requests >= 0),
        ADD COLUMN mailbox_requests integer NOT NULL DEFAULT 0 CHECK (mailbox_requests >= 0),
        ADD COLUMN budget_window double precision NOT NULL DEFAULT 60 CHECK (budget_window > 0);
    """,
)


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bring the catalog up to date; returns the schema version it is at."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS exoimap_schema"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM exoimap_schema").fetchone()
        current = int(row[0]) if row else 0  # type: ignore[call-overload]
        for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.execute(sql.encode())
            conn.execute("INSERT INTO exoimap_schema (version) VALUES (%s)", (version,))
    return len(MIGRATIONS)
