"""A sandbox app set up as a tenant-wide backup app: a certificate credential (its key and
certificate in one 0600 PEM, as ``tenant add --certificate`` takes it), ``IMAP.AccessAsApp``
and Graph application permissions with admin consent, and its Exchange service principal.
For the tenant tests, ``make demo-tenant`` and the tenant benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exoimap.sandbox.tenant import SandboxTenant

__all__ = ["BackupApp", "make_backup_app", "tenant_add_options"]


@dataclass(frozen=True, slots=True)
class BackupApp:
    name: str
    client_id: str
    #: The PEM with the private key and the certificate (0600).
    certificate: Path


def make_backup_app(
    sandbox: SandboxTenant,
    name: str,
    folder: Path,
    graph: Sequence[str] = ("User.Read.All",),
) -> BackupApp:
    """Register ``name`` with a new certificate written under ``folder``."""
    app = sandbox.admin.create_app(
        name,
        public=False,
        application=["https://outlook.office365.com/IMAP.AccessAsApp", *graph],
        admin_consent=True,
    )
    files = sandbox.admin.add_certificate(name, folder / "cert")
    pem = folder / f"{name}.pem"
    pem.write_bytes(files.private_key_file.read_bytes() + files.certificate_file.read_bytes())
    pem.chmod(0o600)
    sandbox.admin.register_exchange_principal(name)
    return BackupApp(name, app.client_id, pem)


def tenant_add_options(
    sandbox: SandboxTenant, client_id: str, certificate: Path, imap_port: int = 0
) -> list[str]:
    """The ``exoimap tenant add`` options that point a tenant at ``sandbox`` with the app
    ``client_id`` (``imap_port``: another of its IMAP servers than the main one)."""
    return [
        "--tenant", sandbox.tenant_id,
        "--client-id", client_id,
        "--certificate", str(certificate),
        "--cloud", "custom",
        "--authority", sandbox.authority,
        "--imap-host", sandbox.imap_host,
        "--imap-port", str(imap_port or sandbox.imap_port),
        "--ca-file", str(sandbox.ca_file),
        "--graph-url", sandbox.identity_url,
    ]  # fmt: skip
