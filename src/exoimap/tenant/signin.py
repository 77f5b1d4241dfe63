"""A tenant's app-only sign-in: the certificate flow of :mod:`exoimap.auth`, once for IMAP
(one account per mailbox, all sharing the tenant's token cache) and once for Graph."""

from __future__ import annotations

from pathlib import Path

from exoimap.auth.flows import MsalAdapter, certificate_credential
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.clouds import get_cloud, resolve_cloud
from exoimap.config import AccountConfig
from exoimap.errors import AuthError
from exoimap.secrets import Secret
from exoimap.tenant.model import DEFAULT_GRAPH_URL, TenantRecord

__all__ = [
    "check_tenant",
    "default_graph_url",
    "graph_token",
    "mailbox_account",
    "mailbox_provider",
]


def _account(tenant: TenantRecord, upn: str, archive: Path | None) -> AccountConfig:
    # One account name per tenant: the vault keeps one app-only token for all its mailboxes
    # (and serialises its refresh across workers); the mailbox is the IMAP user name.
    return AccountConfig(
        name=f"tenant-{tenant.name}",
        email=upn,
        username=upn,
        cloud=tenant.cloud,
        tenant=tenant.tenant,
        client_id=tenant.client_id,
        flow="client-certificate",
        certificate=tenant.certificate,
        authority=tenant.authority,
        imap_host=tenant.imap_host,
        imap_port=tenant.imap_port,
        ca_file=tenant.ca_file,
        archive=archive,
        # one connection per mailbox: a worker's parallelism comes from running many
        # mailboxes, and every connection costs a TLS handshake and a sign-in
        max_connections=1,
    )


def mailbox_account(tenant: TenantRecord, upn: str) -> AccountConfig:
    """The account that backs up ``upn`` into ``<archive root>/<upn>``."""
    return _account(tenant, upn, tenant.archive_root / upn.lower())


def mailbox_provider(tenant: TenantRecord, upn: str, vault: Vault) -> TokenProvider:
    return TokenProvider(mailbox_account(tenant, upn), vault=vault, say=lambda _text: None)


def check_tenant(tenant: TenantRecord) -> None:
    """Refuse, before anything is stored, a tenant no worker could sign in for: an unknown
    cloud, a custom cloud without its authority, a certificate file without key and cert."""
    account = _account(tenant, f"check@{tenant.tenant}", None)
    resolve_cloud(
        account.cloud,
        authority=account.authority,
        imap_host=account.imap_host,
        imap_port=account.imap_port,
    )
    certificate_credential(tenant.certificate, None)


def default_graph_url(cloud: str) -> str:
    """Microsoft Graph's base URL in ``cloud`` (a custom cloud: the worldwide one)."""
    return get_cloud(cloud).graph_url if cloud != "custom" else DEFAULT_GRAPH_URL


def graph_token(tenant: TenantRecord, *, http_timeout: float = 30.0) -> Secret[str]:
    """An app-only access token for Microsoft Graph (``User.Read.All`` for discovery)."""
    import msal

    account = _account(tenant, tenant.tenant, None)
    cloud = resolve_cloud(
        account.cloud,
        authority=account.authority,
        imap_host=account.imap_host,
        imap_port=account.imap_port,
    )
    adapter = MsalAdapter(account, cloud, http_timeout=http_timeout, say=lambda _text: None)
    # app-only Graph access: every application permission the app was consented to
    adapter.scopes = [f"{cloud.graph_url}/.default"]
    result = adapter.client_token(adapter.build(msal.SerializableTokenCache()))
    token = result.get("access_token")
    if not isinstance(token, str):
        raise AuthError(f"tenant {tenant.name!r}: no Graph token in the sign-in answer")
    return Secret(token)
