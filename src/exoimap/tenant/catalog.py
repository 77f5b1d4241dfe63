"""The tenant catalog in PostgreSQL: tenants and their mailboxes, shared by every worker
and every command (the database is the one truth; nothing is cached across calls)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from exoimap.errors import ConfigError, NetworkError
from exoimap.tenant.model import Mailbox, TenantRecord
from exoimap.tenant.schema import migrate

__all__ = ["Catalog", "open_catalog", "require_database"]

_TENANT_COLUMNS = (
    "name, tenant, client_id, certificate, archive_root, cloud, authority, imap_host,"
    " imap_port, ca_file, graph_url, include, exclude, max_parallel, tenant_requests,"
    " mailbox_requests, budget_window"
)


def require_database(url: str | None) -> str:
    """The catalog's URL, or a ConfigError saying how to give one."""
    if not url:
        raise ConfigError(
            "no tenant catalog database given: pass --database postgresql://... "
            "or set EXOIMAP_DATABASE_URL"
        )
    return url


@contextlib.contextmanager
def open_catalog(url: str | None) -> Iterator[Catalog]:
    """Connect to the catalog database (and bring its schema up to date)."""
    url = require_database(url)
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=15)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NetworkError(f"cannot reach the tenant catalog database: {first}") from None
    try:
        migrate(conn)
        yield Catalog(conn)
    finally:
        conn.close()


def _tenant_from(row: Sequence[object]) -> TenantRecord:
    (name, tenant, client_id, certificate, archive_root, cloud, authority, imap_host) = row[:8]
    imap_port, ca_file, graph_url, include, exclude, max_parallel = row[8:14]
    tenant_requests, mailbox_requests, budget_window = row[14:]
    return TenantRecord(
        name=str(name),
        tenant=str(tenant),
        client_id=str(client_id),
        certificate=Path(str(certificate)),
        archive_root=Path(str(archive_root)),
        cloud=str(cloud),
        authority=str(authority) if authority else None,
        imap_host=str(imap_host) if imap_host else None,
        imap_port=int(str(imap_port)),
        ca_file=Path(str(ca_file)) if ca_file else None,
        graph_url=str(graph_url),
        include=tuple(include) if isinstance(include, list) else (),
        exclude=tuple(exclude) if isinstance(exclude, list) else (),
        max_parallel=int(str(max_parallel)),
        tenant_requests=int(str(tenant_requests)),
        mailbox_requests=int(str(mailbox_requests)),
        budget_window=float(str(budget_window)),
    )


class Catalog:
    """Tenants and mailboxes over one connection (autocommit; one statement per change)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn

    def add_tenant(self, tenant: TenantRecord) -> None:
        """Add a tenant; a tenant of that name must not exist."""
        try:
            self.conn.execute(
                f"INSERT INTO tenants ({_TENANT_COLUMNS})"  # noqa: S608 - a constant list
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    tenant.name,
                    tenant.tenant,
                    tenant.client_id,
                    str(tenant.certificate),
                    str(tenant.archive_root),
                    tenant.cloud,
                    tenant.authority,
                    tenant.imap_host,
                    tenant.imap_port,
                    str(tenant.ca_file) if tenant.ca_file else None,
                    tenant.graph_url,
                    list(tenant.include),
                    list(tenant.exclude),
                    tenant.max_parallel,
                    tenant.tenant_requests,
                    tenant.mailbox_requests,
                    tenant.budget_window,
                ),
            )
        except psycopg.errors.UniqueViolation:
            raise ConfigError(f"tenant {tenant.name!r} is already in the catalog") from None

    def tenant(self, name: str) -> TenantRecord:
        """The tenant called ``name`` (ConfigError when there is none)."""
        row = self.conn.execute(
            f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE name = %s",  # noqa: S608
            (name,),
        ).fetchone()
        if row is None:
            raise ConfigError(
                f"no tenant {name!r} in the catalog; add it with `exoimap tenant add "
                f"{name} --tenant ... --client-id ... --certificate ...`"
            )
        return _tenant_from(row)

    def tenant_names(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT name FROM tenants ORDER BY name")]

    def replace_mailboxes(self, tenant: str, found: Sequence[Mailbox]) -> tuple[int, int]:
        """Record what discovery found: new and found-again mailboxes are active, the ones
        not found any more inactive (their runs are kept). Returns (new, gone)."""
        with self.conn.transaction():
            before = {m.upn: m for m in self.mailboxes(tenant, active_only=False)}
            for box in found:
                self.conn.execute(
                    "INSERT INTO mailboxes (tenant, upn, object_id, display_name, active)"
                    " VALUES (%s, %s, %s, %s, true) ON CONFLICT (tenant, upn) DO UPDATE SET"
                    " object_id = excluded.object_id, display_name = excluded.display_name,"
                    " active = true",
                    (tenant, box.upn, box.object_id, box.display_name),
                )
            found_upns = {m.upn for m in found}
            gone = [u for u, m in before.items() if m.active and u not in found_upns]
            if gone:
                self.conn.execute(
                    "UPDATE mailboxes SET active = false WHERE tenant = %s AND upn = ANY(%s)",
                    (tenant, gone),
                )
        new = len(found_upns - set(before))
        return new, len(gone)

    def mailboxes(self, tenant: str, *, active_only: bool = True) -> list[Mailbox]:
        rows = self.conn.execute(
            "SELECT upn, object_id, display_name, active FROM mailboxes WHERE tenant = %s"
            " AND (active OR NOT %s) ORDER BY upn",
            (tenant, active_only),
        )
        return [
            Mailbox(tenant, str(upn), str(oid), str(shown), bool(active))
            for upn, oid, shown, active in rows
        ]
