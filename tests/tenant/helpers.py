"""A sandbox app set up as a tenant-wide backup app (certificate, IMAP.AccessAsApp and
User.Read.All with admin consent, FullAccess on the mailboxes it is given), and mailboxes
with mail for it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from exoimap.cli import main
from exoimap.sandbox.backup_app import make_backup_app, tenant_add_options
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message


@dataclass(frozen=True)
class TenantApp:
    name: str
    client_id: str
    certificate: Path
    #: Users this test made are named ``<prefix>-N@<domain>``: discovery filters on it.
    prefix: str


def make_tenant_app(sandbox: SandboxTenant, folder: Path) -> TenantApp:
    made = make_backup_app(
        sandbox,
        f"backup-{uuid.uuid4().hex[:8]}",
        folder,
        graph=("User.Read.All", "GroupMember.Read.All"),
    )
    return TenantApp(made.name, made.client_id, made.certificate, f"t{uuid.uuid4().hex[:8]}")


def make_mailboxes(
    sandbox: SandboxTenant, app: TenantApp, count: int, messages: int = 3, first: int = 0
) -> list[str]:
    """``count`` new users (numbered from ``first``) whose mailboxes hold ``messages``
    messages in INBOX and one in Sent Items, with FullAccess for the app."""
    upns = []
    for i in range(first, first + count):
        upn = f"{app.prefix}-{i:03d}@{sandbox.tenant_domain}"
        sandbox.admin.create_user(upn, password="Sandbox-Pass-1!")
        for n in range(messages):
            sandbox.exchange.deliver(upn, sample_message(n + 1, 400 + 53 * n + i))
        sandbox.exchange.deliver(upn, sample_message(99, 700 + i), folder="Sent Items")
        sandbox.admin.add_mailbox_permission(upn, app.name)
        upns.append(upn)
    return upns


def add_tenant(
    sandbox: SandboxTenant, app: TenantApp, database: str, archive_root: Path, *extra: str
) -> None:
    args = [
        "tenant", "add", "acme",
        *tenant_add_options(sandbox, app.client_id, app.certificate),
        "--archive-root", str(archive_root),
        "--include", f"{app.prefix}-*@*",
        "--database", database,
        *extra,
    ]  # fmt: skip
    assert main(args) == 0


def delivered(app: TenantApp, i: int, messages: int = 3) -> list[bytes]:
    """The bytes :func:`make_mailboxes` delivered to mailbox ``i``."""
    inbox = [sample_message(n + 1, 400 + 53 * n + i) for n in range(messages)]
    return [*inbox, sample_message(99, 700 + i)]


def archived(root: Path) -> list[bytes]:
    """Every message file of an archive (every folder), in no particular order."""
    return [p.read_bytes() for p in sorted((root / "maildir").rglob("cur/*")) if p.is_file()]


@dataclass
class Setup:
    """A test's sandbox tenant app, catalog, queue, archive root and worker logs."""

    sandbox: SandboxTenant
    app: TenantApp
    database: str
    redis_url: str
    archives: Path
    logs: Path

    def add_and_discover(self, *extra: str) -> None:
        add_tenant(self.sandbox, self.app, self.database, self.archives, *extra)
        assert main(["tenant", "discover", "acme", "--database", self.database]) == 0

    def backup(self) -> None:
        args = ["tenant", "backup", "acme", "--database", self.database, "--redis", self.redis_url]
        assert main(args) == 0

    def log(self) -> str:
        """The workers' shared log file (JSON lines)."""
        return (self.logs.parent / "home" / "logs" / "exoimap.log").read_text()
