"""``exoimap sandbox``: run the offline sandbox tenant and administer it.

``up`` serves it and writes ``<state>/sandbox.json`` (0600). Every other command changes the
directory file, which a running ``up`` picks up at its next request, and refreshes
``sandbox.json``. The state folder defaults to ``<data dir>/sandbox``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from exoimap.config import Paths
from exoimap.sandbox.state import SANDBOX_JSON
from exoimap.secrets import MASK

if TYPE_CHECKING:
    from exoimap.sandbox.identity import IdentitySandbox
    from exoimap.sandbox.identity.admin import SandboxAdmin

app = typer.Typer(help="Run and administer the offline sandbox tenant.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the sandbox tenant.", no_args_is_help=True)
app_app = typer.Typer(help="App registrations.", no_args_is_help=True)
mailbox_app = typer.Typer(help="Exchange: service principals and mailbox permissions.")
app.add_typer(user_app, name="user")
app.add_typer(app_app, name="app")
app.add_typer(mailbox_app, name="exchange")

StateOption = Annotated[
    Path | None,
    typer.Option("--state", help="State folder (default: <data dir>/sandbox).", show_default=False),
]


def _state(state: Path | None) -> Path:
    return (state or Paths.from_env().data_dir / "sandbox").expanduser().resolve()


def _open(state: Path | None) -> IdentitySandbox:
    from exoimap.sandbox.identity import IdentitySandbox

    return IdentitySandbox.open(_state(state))


def _admin(state: Path | None) -> SandboxAdmin:
    """The admin API on the directory file alone (no keys, no server: quick to start)."""
    from exoimap.sandbox.identity.admin import SandboxAdmin
    from exoimap.sandbox.identity.store import DirectoryStore

    folder = _state(state)
    if not (folder / "directory.json").exists():
        _open(state)  # first use: create the CA, keys and demo tenant
    return SandboxAdmin(DirectoryStore(folder))


def _done(admin: SandboxAdmin, message: str) -> None:
    from exoimap.sandbox.identity.publish import refresh_sandbox_json

    refresh_sandbox_json(admin.store)
    typer.echo(message)


@app.command("up")
def up(
    *,
    state: StateOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Identity (HTTPS) port (0: any free port).")] = 0,
    imap_port: Annotated[int, typer.Option(help="IMAP (implicit TLS) port (0: any).")] = 0,
    messages: Annotated[
        int, typer.Option(help="Messages generated into each empty demo mailbox.")
    ] = 200,
    persist: Annotated[
        bool, typer.Option(help="Keep mailboxes in STATE/mailboxes across restarts.")
    ] = True,
    basic_auth: Annotated[
        bool, typer.Option(help="Allow LOGIN / AUTHENTICATE PLAIN with user passwords.")
    ] = False,
) -> None:
    """Run both halves (identity + Exchange IMAP) until Ctrl-C; write STATE/sandbox.json."""
    import asyncio

    from exoimap.sandbox.exchange.config import ExchangeSettings
    from exoimap.sandbox.tenant import SandboxTenant, TenantOptions, serve

    _open(state)  # first use: create the CA, keys and demo tenant
    options = TenantOptions(
        exchange=ExchangeSettings(host=host, port=imap_port, allow_basic_auth=basic_auth),
        identity_host=host,
        identity_port=port,
        seed_messages=messages,
        persist=persist,
    )

    def ready(tenant: SandboxTenant) -> None:
        typer.echo(f"exoimap sandbox: identity at {tenant.authority}")
        typer.echo(f"exoimap sandbox: IMAP at {tenant.imap_host}:{tenant.imap_port} (TLS)")
        typer.echo(f"CA file: {tenant.ca_file}")
        typer.echo(f"details (users, apps, secrets, mailboxes): {tenant.state_dir / SANDBOX_JSON}")
        typer.echo("Press Ctrl-C to stop.")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(_state(state), options, ready=ready, stop=None))
    typer.echo("exoimap sandbox: stopped")


@app.command("info")
def info(state: StateOption = None) -> None:
    """Print sandbox.json without the passwords and secrets."""
    path = _state(state) / SANDBOX_JSON
    from exoimap.sandbox.state import read_sandbox_json

    document = read_sandbox_json(path.parent)
    for user in document.get("users", []):
        user["password"] = MASK
    for entry in document.get("apps", []):
        if "client_secret" in entry:
            entry["client_secret"] = MASK
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


@app.command("approve")
def approve(
    user_code: Annotated[str, typer.Argument(help="The code the device shows.")],
    as_user: Annotated[str | None, typer.Option("--as", help="Sign in as this UPN.")] = None,
    decline: Annotated[bool, typer.Option("--decline", help="Decline instead.")] = False,
    state: StateOption = None,
) -> None:
    """Approve (or decline) a pending device code, as the user would in a browser."""
    flow = _admin(state).approve_device_code(user_code, upn=as_user, approve=not decline)
    typer.echo(f"device code {flow.user_code}: {flow.status}")


@app.command("fail-next")
def fail_next(
    code: Annotated[int, typer.Argument(help="AADSTS code, e.g. 50076.")],
    user: Annotated[str | None, typer.Option("--user", help="Only for this UPN.")] = None,
    app_name: Annotated[str | None, typer.Option("--app", help="Only for this app.")] = None,
    count: Annotated[int, typer.Option(help="How many requests fail.")] = 1,
    state: StateOption = None,
) -> None:
    """Make the next token request(s) fail with an AADSTS error."""
    _admin(state).fail_next(code, upn=user, app=app_name, count=count)
    typer.echo(f"the next {count} matching token request(s) will fail with AADSTS{code}")


# --- users ------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    upn: str,
    password: Annotated[str | None, typer.Option(help="Default: a random one.")] = None,
    mfa: Annotated[bool, typer.Option("--mfa", help="Require MFA.")] = False,
    state: StateOption = None,
) -> None:
    """Create a user (the password is written to sandbox.json, not printed)."""
    admin = _admin(state)
    created = admin.create_user(upn, password=password, mfa_required=mfa)
    _done(admin, f"user {created.upn} created (oid {created.oid})")


@user_app.command("set")
def user_set(
    upn: str,
    mfa: Annotated[bool | None, typer.Option("--mfa/--no-mfa")] = None,
    blocked: Annotated[
        bool | None, typer.Option("--blocked/--not-blocked", help="Conditional Access block.")
    ] = None,
    state: StateOption = None,
) -> None:
    """Change a user's MFA requirement or Conditional Access block."""
    admin = _admin(state)
    admin.set_user_flags(upn, mfa_required=mfa, blocked_by_conditional_access=blocked)
    _done(admin, f"user {upn} updated")


@user_app.command("revoke")
def user_revoke(upn: str, state: StateOption = None) -> None:
    """Revoke a user's sessions: their refresh tokens stop working (AADSTS50173)."""
    _admin(state).revoke_sessions(upn)
    typer.echo(f"sessions of {upn} revoked")


# --- apps -------------------------------------------------------------------------------------


@app_app.command("add")
def app_add(
    name: str,
    *,
    public: Annotated[bool, typer.Option("--public/--confidential")] = True,
    redirect_uri: Annotated[list[str] | None, typer.Option("--redirect-uri")] = None,
    delegated: Annotated[list[str] | None, typer.Option("--delegated")] = None,
    application: Annotated[list[str] | None, typer.Option("--application")] = None,
    admin_consent: Annotated[bool, typer.Option("--admin-consent")] = False,
    state: StateOption = None,
) -> None:
    """Register an app (permissions as full scope strings, e.g.
    https://outlook.office.com/IMAP.AccessAsUser.All)."""
    admin = _admin(state)
    created = admin.create_app(
        name,
        public=public,
        redirect_uris=redirect_uri or [],
        delegated=delegated or [],
        application=application or [],
        admin_consent=admin_consent,
    )
    _done(admin, f"app {created.name} created: client id {created.client_id}")


@app_app.command("secret")
def app_secret(
    name: str,
    days: Annotated[float, typer.Option(help="Lifetime in days (negative: expired).")] = 730,
    state: StateOption = None,
) -> None:
    """Add a client secret (its value goes to sandbox.json)."""
    admin = _admin(state)
    secret = admin.add_client_secret(name, lifetime=days * 86400)
    _done(admin, f"secret {secret.secret_id} added to {name}")


@app_app.command("cert")
def app_cert(name: str, state: StateOption = None) -> None:
    """Create and register a certificate; print its files and thumbprints."""
    from exoimap.sandbox.identity.seed import app_cert_folder

    folder = app_cert_folder(_state(state), name)
    admin = _admin(state)
    files = admin.add_certificate(name, folder)
    _done(
        admin,
        f"certificate {files.certificate_file}\nprivate key {files.private_key_file}\n"
        f"SHA-1 thumbprint {files.thumbprint_sha1}\nSHA-256 thumbprint {files.thumbprint_sha256}",
    )


@app_app.command("grant")
def app_grant(
    name: str,
    *,
    delegated: Annotated[list[str] | None, typer.Option("--delegated")] = None,
    application: Annotated[list[str] | None, typer.Option("--application")] = None,
    admin_consent: Annotated[
        bool | None, typer.Option("--admin-consent/--no-admin-consent")
    ] = None,
    state: StateOption = None,
) -> None:
    """Add API permissions and grant (or withdraw) admin consent."""
    admin = _admin(state)
    admin.grant(
        name,
        delegated=delegated or [],
        application=application or [],
        admin_consent=admin_consent,
    )
    _done(admin, f"app {name} updated")


# --- Exchange ---------------------------------------------------------------------------------


@mailbox_app.command("register")
def exchange_register(
    name: str,
    object_id: Annotated[str | None, typer.Option(help="Default: the enterprise app's.")] = None,
    state: StateOption = None,
) -> None:
    """New-ServicePrincipal for an app."""
    principal = _admin(state).register_exchange_principal(name, object_id=object_id)
    typer.echo(f"service principal {principal.object_id} registered for {principal.app_id}")


@mailbox_app.command("grant")
def exchange_grant(mailbox: str, principal: str, state: StateOption = None) -> None:
    """Add-MailboxPermission -AccessRights FullAccess (principal: app, UPN or object id)."""
    _admin(state).add_mailbox_permission(mailbox, principal)
    typer.echo(f"{principal} has FullAccess on {mailbox}")


@mailbox_app.command("revoke")
def exchange_revoke(mailbox: str, principal: str, state: StateOption = None) -> None:
    """Remove-MailboxPermission."""
    _admin(state).remove_mailbox_permission(mailbox, principal)
    typer.echo(f"{principal} no longer has access to {mailbox}")
