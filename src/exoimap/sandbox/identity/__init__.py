"""The identity half of the sandbox tenant: an offline ``login.microsoftonline.com``.

An HTTPS server (Starlette on uvicorn, certificate from a local CA) that unmodified MSAL
completes every flow against: discovery, JWKS, authorize with a real sign-in page (PKCE,
``state``, ``nonce``, ``prompt``, ``login_hint``), token (authorization code, refresh with
rotation, device code, client credentials with a secret or a certificate assertion),
device code and a device-login page. Tokens look like the ones Exchange Online receives;
errors carry Microsoft's body shape, HTTP status and AADSTS codes.

Quick start (tests)::

    from exoimap.sandbox.identity import IdentitySandbox

    with IdentitySandbox.open(tmp_path / "sandbox").running() as idp:
        idp.authority        # https://127.0.0.1:PORT/<tenant id>
        idp.ca_file          # trust this CA (requests: session.verify = str(idp.ca_file))
        idp.admin.create_user("carol@contoso.onmicrosoft.com", password="...")
        idp.admin.fail_next(50076, upn="carol@contoso.onmicrosoft.com")

For the IMAP half (same process or another one reading the same state folder)::

    sandbox = IdentitySandbox.open(state_dir)           # or IdentitySandbox(state_dir)
    claims = sandbox.verifier.verify(token, audiences=EXCHANGE_AUDIENCES, now=sandbox.now())
    directory = sandbox.directory                       # live: reloads on change
    directory.find_user(upn)
    directory.exchange_principal(claims.app_id, claims.tenant_id)   # .object_id
    directory.has_full_access(claims.object_id, mailbox_upn, claims.tenant_id)

    sock = sandbox.bind()                              # one event loop for both servers
    async with asyncio.TaskGroup() as group:
        group.create_task(sandbox.serve(sock))
        ...                                            # sandbox.stop() ends serve()

Main types: :class:`IdentitySandbox` (state folder, server, admin),
:class:`SandboxAdmin` (users, apps, secrets, certificates, grants, mailbox permissions,
revocation, error injection, device-code approval, clock), :class:`Directory` and its
records, :class:`AccessTokenVerifier` / :class:`AccessTokenClaims`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exoimap.sandbox.identity.aadsts import CATALOG, AadstsError
from exoimap.sandbox.identity.admin import CertificateFiles, SandboxAdmin, generate_password
from exoimap.sandbox.identity.model import (
    AppCertificate,
    AppRegistration,
    ClientSecret,
    DeviceCode,
    Directory,
    ExchangeServicePrincipal,
    InjectedError,
    MailboxPermission,
    Settings,
    Tenant,
    User,
)
from exoimap.sandbox.identity.scopes import EXCHANGE_APP_ID, GRAPH_APP_ID
from exoimap.sandbox.identity.seed import DAEMON_APP, DEMO_DOMAIN, PUBLIC_APP
from exoimap.sandbox.identity.store import DirectoryStore
from exoimap.sandbox.identity.tokens import (
    AccessTokenClaims,
    AccessTokenVerifier,
    InvalidAccessToken,
    SigningKey,
)

if TYPE_CHECKING:
    from exoimap.sandbox.identity.server import IdentitySandbox, RunningIdentity


def __getattr__(name: str) -> Any:
    # The server pulls in Starlette and uvicorn; admin commands and the IMAP half's token
    # checks do not need them, so load it on first use.
    if name in ("IdentitySandbox", "RunningIdentity"):
        from exoimap.sandbox.identity import server

        return getattr(server, name)
    raise AttributeError(name)


#: Audiences Exchange Online accepts for IMAP (the resource as requested; see the spec 3.8).
EXCHANGE_AUDIENCES = frozenset(
    {
        "https://outlook.office.com",
        "https://outlook.office365.com",
        "https://ps.outlook.com",
        EXCHANGE_APP_ID,
    }
)

__all__ = [
    "CATALOG",
    "DAEMON_APP",
    "DEMO_DOMAIN",
    "EXCHANGE_APP_ID",
    "EXCHANGE_AUDIENCES",
    "GRAPH_APP_ID",
    "PUBLIC_APP",
    "AadstsError",
    "AccessTokenClaims",
    "AccessTokenVerifier",
    "AppCertificate",
    "AppRegistration",
    "CertificateFiles",
    "ClientSecret",
    "DeviceCode",
    "Directory",
    "DirectoryStore",
    "ExchangeServicePrincipal",
    "IdentitySandbox",
    "InjectedError",
    "InvalidAccessToken",
    "MailboxPermission",
    "RunningIdentity",
    "SandboxAdmin",
    "Settings",
    "SigningKey",
    "Tenant",
    "User",
    "generate_password",
]
