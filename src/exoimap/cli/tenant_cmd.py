"""``exoimap tenant add|discover|backup|status``: whole tenants, over the catalog in
PostgreSQL (``--database`` / ``EXOIMAP_DATABASE_URL``) and the job queue in Redis
(``--redis`` / ``EXOIMAP_REDIS_URL``). The work is in :mod:`exoimap.tenant`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import redis

from exoimap.cli.app import EXIT_PARTIAL, PATH, Group
from exoimap.cli.output import echo
from exoimap.config import Paths, load_config
from exoimap.errors import ConfigError, NetworkError
from exoimap.words import plural

if TYPE_CHECKING:
    from exoimap.tenant.model import MailboxStatus

__all__ = ["DATABASE_OPTION", "REDIS_OPTION", "app"]

DATABASE_OPTION = click.option(
    "--database",
    envvar="EXOIMAP_DATABASE_URL",
    metavar="URL",
    help="The tenant catalog: a PostgreSQL URL (or EXOIMAP_DATABASE_URL).",
)
REDIS_OPTION = click.option(
    "--redis",
    "redis_url",
    envvar="EXOIMAP_REDIS_URL",
    metavar="URL",
    help="The job queue: a Redis URL (or EXOIMAP_REDIS_URL).",
)


@click.group("tenant", cls=Group, no_args_is_help=True)
def app() -> None:
    """Back up every mailbox of a tenant with workers on any number of machines."""


@app.command("add")
@click.argument("name", help="A short name for the tenant in the catalog.")
@click.option("--tenant", "tenant_id", required=True, help="Directory (tenant) id or domain.")
@click.option("--client-id", required=True, help="The app registration's client id.")
@click.option(
    "--certificate", required=True, type=PATH, help="PEM with the app's private key and cert."
)
@click.option(
    "--archive-root", type=PATH, help="Where the mailboxes' archives go (one folder each)."
)
@click.option(
    "--cloud",
    default="worldwide",
    help="worldwide, gcc, gcc-high, dod, china, or custom with --authority.",
)
@click.option("--authority", help="Authority URL (custom cloud).")
@click.option("--imap-host", help="IMAP host (custom cloud).")
@click.option("--imap-port", type=int, default=993, help="IMAP port.")
@click.option("--ca-file", type=PATH, help="Trust this CA (custom cloud).")
@click.option("--graph-url", help="Microsoft Graph's base URL (custom cloud).")
@click.option(
    "--include", multiple=True, help="Only users matching @DOMAIN, a UPN glob or group:ID."
)
@click.option(
    "--exclude", multiple=True, help="Leave out users matching @DOMAIN, a glob or group:ID."
)
@click.option(
    "--max-parallel",
    type=click.IntRange(0),
    default=0,
    help="At most this many mailboxes at once across all workers (0: no limit).",
)
@click.option(
    "--tenant-requests",
    type=click.IntRange(0),
    default=0,
    help="IMAP commands per --budget-window for the whole tenant, all workers (0: no limit).",
)
@click.option(
    "--mailbox-requests",
    type=click.IntRange(0),
    default=0,
    help="IMAP commands per --budget-window for each mailbox (0: no limit).",
)
@click.option(
    "--budget-window",
    type=click.FloatRange(1, 86400),
    default=60.0,
    help="The window of the request budgets, in seconds.",
)
@DATABASE_OPTION
def add(**options: object) -> None:
    """Add a tenant (app-only sign-in with a certificate) to the catalog."""
    from exoimap.tenant.catalog import open_catalog
    from exoimap.tenant.discover import check_filters
    from exoimap.tenant.model import TenantRecord
    from exoimap.tenant.signin import check_tenant, default_graph_url

    name = str(options["name"])
    certificate = Path(str(options["certificate"])).expanduser().resolve()
    if not certificate.is_file():
        raise ConfigError(f"the certificate file {certificate} does not exist")
    root = options["archive_root"] or Paths.from_env().data_dir / "tenants" / name
    ca_file = options["ca_file"]
    cloud = str(options["cloud"])
    record = TenantRecord(
        name=name,
        tenant=str(options["tenant_id"]),
        client_id=str(options["client_id"]),
        certificate=certificate,
        archive_root=Path(str(root)).expanduser().resolve(),
        cloud=cloud,
        authority=str(options["authority"]) if options["authority"] else None,
        imap_host=str(options["imap_host"]) if options["imap_host"] else None,
        imap_port=int(str(options["imap_port"])),
        ca_file=Path(str(ca_file)).expanduser().resolve() if ca_file else None,
        graph_url=str(options["graph_url"] or default_graph_url(cloud)),
        include=check_filters(options["include"]),  # type: ignore[arg-type]
        exclude=check_filters(options["exclude"]),  # type: ignore[arg-type]
        max_parallel=int(str(options["max_parallel"])),
        tenant_requests=int(str(options["tenant_requests"])),
        mailbox_requests=int(str(options["mailbox_requests"])),
        budget_window=float(str(options["budget_window"])),
    )
    check_tenant(record)
    with open_catalog(_text(options["database"])) as catalog:
        catalog.add_tenant(record)
    echo(f"tenant {name} added; archives go to {record.archive_root}")
    echo(f"next: exoimap tenant discover {name}")


@app.command("discover")
@click.argument("name", help="The tenant.")
@click.option("--page-size", type=click.IntRange(1, 999), default=999, help="Users per page.")
@DATABASE_OPTION
@click.option(
    "--redis",
    "redis_url",
    envvar="EXOIMAP_REDIS_URL",
    metavar="URL",
    help="Share throttling backoffs with the tenant's workers through this Redis"
    " (or EXOIMAP_REDIS_URL).",
)
def discover(name: str, page_size: int, database: str | None, redis_url: str | None) -> None:
    """List the tenant's mailboxes through Microsoft Graph and record them in the catalog."""
    from exoimap.tenant.budget import TenantPause
    from exoimap.tenant.catalog import open_catalog
    from exoimap.tenant.discover import discover as run_discovery
    from exoimap.tenant.jobs import redis_client

    with open_catalog(database) as catalog:
        tenant = catalog.tenant(name)
        backoff = TenantPause(redis_client(redis_url), name, "discovery") if redis_url else None
        found = run_discovery(catalog, tenant, page_size=page_size, backoff=backoff)
    for box in found.kept:
        echo(f"  {box.upn}")
    echo(
        f"{plural(found.listed, 'user')} listed, {plural(len(found.kept), 'mailbox', 'mailboxes')}"
        f" kept "
        f"({found.new} new, {found.gone} gone)"
    )


@app.command("backup")
@click.argument("name", help="The tenant.")
@DATABASE_OPTION
@REDIS_OPTION
def backup(name: str, database: str | None, redis_url: str | None) -> None:
    """Queue one backup job per catalogued mailbox (workers run them: `exoimap worker`)."""
    from exoimap.tenant.catalog import open_catalog
    from exoimap.tenant.jobs import enqueue_backups, make_broker

    with open_catalog(database) as catalog:
        upns = [m.upn for m in catalog.mailboxes(catalog.tenant(name).name)]
    if not upns:
        raise ConfigError(
            f"tenant {name!r} has no mailboxes yet; run `exoimap tenant discover {name}`"
        )
    broker = make_broker(redis_url)
    try:
        enqueue_backups(broker, name, upns)
    except redis.RedisError as exc:
        raise NetworkError(f"cannot reach the job queue: {exc}") from None
    finally:
        broker.close()
    echo(f"{plural(len(upns), 'backup job')} queued for tenant {name}")


@app.command("verify")
@click.argument("name", help="The tenant.")
@click.option("--deep", is_flag=True, help="Also compare the SHA-256 of every message.")
@click.option(
    "--parallel", type=click.IntRange(1, 64), default=4, help="Mailboxes checked at once."
)
@DATABASE_OPTION
def verify(name: str, deep: bool, parallel: int, database: str | None) -> int:
    """Compare every catalogued mailbox's archive with its mailbox (as `exoimap verify`)."""
    import asyncio

    from exoimap.audit import auditing
    from exoimap.auth.audit_key import audit_key_for
    from exoimap.auth.vault import Vault
    from exoimap.tenant.catalog import open_catalog
    from exoimap.tenant.verify import verify_mailboxes

    with open_catalog(database) as catalog:
        tenant = catalog.tenant(name)
        upns = [m.upn for m in catalog.mailboxes(name)]
    paths = Paths.from_env()
    with auditing(paths, load_config(paths).audit, key=audit_key_for(paths)):
        checks = asyncio.run(
            verify_mailboxes(tenant, upns, Vault.from_paths(), paths, deep=deep, parallel=parallel)
        )
    for check in checks:
        if check.problem:
            echo(f"{check.upn}  {check.problem}")
    bad = sum(1 for c in checks if c.problem)
    messages = plural(sum(c.messages for c in checks), "message")
    echo(
        f"{plural(len(checks), 'mailbox', 'mailboxes')} verified{' deep' if deep else ''}:"
        f" {len(checks) - bad} match ({messages}), {bad} do not"
    )
    return EXIT_PARTIAL if bad else 0


@app.command("status")
@click.argument("name", help="The tenant.")
@DATABASE_OPTION
def status(name: str, database: str | None) -> int:
    """Each mailbox's last success, running job, failures and why, and totals."""
    from exoimap.tenant.catalog import open_catalog
    from exoimap.tenant.history import tenant_status

    with open_catalog(database) as catalog:
        rows = tenant_status(catalog, catalog.tenant(name).name)
    counts: dict[str, int] = {}
    for row in rows:
        state = row.latest.outcome if row.latest else "never"
        counts[state] = counts.get(state, 0) + 1
        echo(_status_line(row, state))
        for failure in row.failures if state != "ok" else []:
            echo(f"    attempt {failure.attempt} {failure.outcome}: {failure.detail}")
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    echo(f"{plural(len(rows), 'mailbox', 'mailboxes')}: {summary or 'none'}")
    return EXIT_PARTIAL if counts.get("dead") else 0


def _status_line(row: MailboxStatus, state: str) -> str:
    success = row.last_success
    last = "no success yet"
    if success is not None and success.finished_at is not None:
        copied = plural(success.copied, "message")
        last = f"last success {success.finished_at:%Y-%m-%d %H:%M:%S}, {copied} new"
    running = f" (on {row.latest.worker})" if row.latest and state == "running" else ""
    return f"{row.mailbox.upn}  {state}{running}  {last}"


def _text(value: object) -> str | None:
    return str(value) if value else None
