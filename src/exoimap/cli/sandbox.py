"""``exoimap sandbox``: run the offline sandbox tenant and administer it.

``up`` serves it and writes ``<state>/sandbox.json`` (0600); it serves on the ports of the
last run (``<state>/ports.json``) unless told otherwise. Every other command changes the
directory file (or ``faults.json``), which a running ``up`` picks up at its next request,
and refreshes ``sandbox.json``. The state folder defaults to ``<data dir>/sandbox``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from exoimap.cli.app import PATH, Group
from exoimap.config import Paths
from exoimap.sandbox.state import SANDBOX_JSON, serving_lock
from exoimap.secrets import MASK

if TYPE_CHECKING:
    from exoimap.sandbox.identity import IdentitySandbox
    from exoimap.sandbox.identity.admin import SandboxAdmin


@click.group("sandbox", cls=Group, no_args_is_help=True)
def app() -> None:
    """Run and administer the offline sandbox tenant."""


@app.group("user", cls=Group, no_args_is_help=True)
def user_app() -> None:
    """Users of the sandbox tenant."""


@app.group("app", cls=Group, no_args_is_help=True)
def app_app() -> None:
    """App registrations."""


@app.group("exchange", cls=Group, no_args_is_help=False)
def mailbox_app() -> None:
    """Exchange: service principals, mailbox permissions, IMAP faults."""


@app.group("clock", cls=Group, no_args_is_help=True)
def clock_app() -> None:
    """The sandbox clock (token expiry without waiting)."""


state_option = click.option(
    "--state",
    type=PATH,
    show_default=False,
    help="State folder (default: <data dir>/sandbox).",
)


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


def _shown(text: str) -> str:
    """``text`` with control characters made visible (names reach the terminal as typed
    into the directory, possibly by another program)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _done(admin: SandboxAdmin, message: str) -> None:
    from exoimap.sandbox.identity.publish import refresh_sandbox_json

    refresh_sandbox_json(admin.store)
    click.echo(message)


@app.command("up")
@state_option
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Identity (HTTPS) port (0: any free port)  [default: the last run's, else any]",
)
@click.option(
    "--imap-port",
    type=click.IntRange(0, 65535),
    help="IMAP (implicit TLS) port (0: any free port)  [default: the last run's, else any]",
)
@click.option("--messages", default=200, help="Messages generated into each empty demo mailbox.")
@click.option(
    "--persist/--no-persist",
    default=True,
    help="Keep mailboxes in STATE/mailboxes across restarts.",
)
@click.option(
    "--basic-auth/--no-basic-auth",
    default=False,
    help="Allow LOGIN / AUTHENTICATE PLAIN with user passwords.",
)
@click.option(
    "--imap-settings", type=PATH, help="TOML file of IMAP behaviour switches (see docs/sandbox.md)."
)
def up(
    *,
    state: Path | None,
    host: str,
    port: int | None,
    imap_port: int | None,
    messages: int,
    persist: bool,
    basic_auth: bool,
    imap_settings: Path | None,
) -> None:
    """Run both halves (identity + Exchange IMAP) until Ctrl-C; write STATE/sandbox.json.

    The ports are kept in STATE/ports.json and used again by the next `up`, so accounts
    configured against the sandbox keep working after a restart."""
    import asyncio
    import tomllib

    from exoimap.errors import ConfigError
    from exoimap.sandbox.exchange.config import ExchangeSettings
    from exoimap.sandbox.tenant import LAST_RUN_PORT, SandboxTenant, TenantOptions, serve

    table: dict[str, object] = {}
    if imap_settings is not None:
        try:
            table = tomllib.loads(imap_settings.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"cannot read the IMAP settings: {exc}", path=str(imap_settings)
            ) from None
    table.update(host=host, port=LAST_RUN_PORT if imap_port is None else imap_port)
    if basic_auth:
        table["allow_basic_auth"] = True
    _open(state)  # first use: create the CA, keys and demo tenant
    options = TenantOptions(
        exchange=ExchangeSettings.from_mapping(table),
        identity_host=host,
        identity_port=LAST_RUN_PORT if port is None else port,
        seed_messages=messages,
        persist=persist,
    )

    def ready(tenant: SandboxTenant) -> None:
        click.echo(f"exoimap sandbox: identity at {tenant.authority}")
        click.echo(f"exoimap sandbox: IMAP at {tenant.imap_host}:{tenant.imap_port} (TLS)")
        click.echo(f"exoimap sandbox: SMTP at {tenant.imap_host}:{tenant.smtp_port} (STARTTLS)")
        if tenant.server.faults.active:
            click.echo(f"IMAP faults (from faults.json): {tenant.server.faults.describe()}")
        click.echo(f"CA file: {tenant.ca_file}")
        click.echo(f"details (users, apps, secrets, mailboxes): {tenant.state_dir / SANDBOX_JSON}")
        click.echo("Press Ctrl-C to stop.")

    import signal

    def after_serving(signum: int, frame: object) -> None:
        # The identity server catches SIGTERM, stops, then re-raises it; by then the
        # shutdown (which saves the mailboxes) is under way, so the default action
        # (kill the process at once) must not run.
        return None

    previous = signal.signal(signal.SIGTERM, after_serving)
    try:
        with serving_lock(_state(state)), contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(_state(state), options, ready=ready, stop=None))
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("exoimap sandbox: stopped")


@app.command("seed-maildir")
@click.argument("path", type=PATH, help="Maildir++ root to write (created if missing).")
@click.option("--messages", default=1000, help="How many messages.")
@click.option("--seed", default=0, help="Random seed (same seed, same mail).")
@click.option("--owner", default="adele@contoso.example", help="The mailbox owner's address.")
def seed_maildir(path: Path, messages: int, seed: int, owner: str) -> None:
    """Write a generated, realistic mailbox as Maildir++ (e.g. for Dovecot)."""
    from exoimap.sandbox.seed import SeedOptions, write_maildir

    report = write_maildir(path, SeedOptions(messages=messages, seed=seed, owner_address=owner))
    click.echo(
        f"wrote {report.messages} messages ({report.bytes / 1e6:.1f} MB) "
        f"in {len(report.folders)} folders under {path}"
    )


@app.command("info")
@state_option
def info(state: Path | None) -> None:
    """Print sandbox.json without the passwords and secrets."""
    path = _state(state) / SANDBOX_JSON
    from exoimap.errors import ConfigError
    from exoimap.sandbox.state import read_sandbox_json

    if not path.exists():
        raise ConfigError(
            "no sandbox.json yet: start the sandbox with `exoimap sandbox up`", path=str(path)
        )
    document = read_sandbox_json(path.parent)
    for user in document.get("users", []):
        user["password"] = MASK
    for entry in document.get("apps", []):
        if "client_secret" in entry:
            entry["client_secret"] = MASK
        for secret in entry.get("client_secrets", []):
            secret["value"] = MASK
    click.echo(json.dumps(document, indent=2, sort_keys=True))


@app.command("approve")
@click.argument("user_code", help="The code the device shows.")
@click.option("--as", "as_user", help="Sign in as this UPN.")
@click.option("--decline", is_flag=True, help="Decline instead.")
@state_option
def approve(user_code: str, as_user: str | None, decline: bool, state: Path | None) -> None:
    """Approve (or decline) a pending device code, as the user would in a browser."""
    flow = _admin(state).approve_device_code(user_code, upn=as_user, approve=not decline)
    click.echo(f"device code {_shown(flow.user_code)}: {flow.status}.")


@app.command("fail-next")
@click.argument("code", type=int, help="AADSTS code, e.g. 50076.")
@click.option("--user", help="Only for this UPN.")
@click.option("--app", "app_name", help="Only for this app.")
@click.option("--count", default=1, help="How many requests fail.")
@state_option
def fail_next(
    code: int, user: str | None, app_name: str | None, count: int, state: Path | None
) -> None:
    """Make the next token request(s) fail with an AADSTS error."""
    _admin(state).fail_next(code, upn=user, app=app_name, count=count)
    click.echo(f"the next {count} matching token request(s) will fail with AADSTS{code}")


# --- users ------------------------------------------------------------------------------------


@user_app.command("add")
@click.argument("upn")
@click.option("--password", help="Default: a random one.")
@click.option("--mfa", is_flag=True, help="Require MFA.")
@state_option
def user_add(upn: str, password: str | None, mfa: bool, state: Path | None) -> None:
    """Create a user (the password is written to sandbox.json, not printed)."""
    admin = _admin(state)
    created = admin.create_user(upn, password=password, mfa_required=mfa)
    _done(admin, f"user {_shown(created.upn)} created (oid {created.oid})")


@user_app.command("set")
@click.argument("upn")
@click.option("--mfa/--no-mfa", default=None)
@click.option("--blocked/--not-blocked", default=None, help="Conditional Access block.")
@state_option
def user_set(upn: str, mfa: bool | None, blocked: bool | None, state: Path | None) -> None:
    """Change a user's MFA requirement or Conditional Access block."""
    admin = _admin(state)
    admin.set_user_flags(upn, mfa_required=mfa, blocked_by_conditional_access=blocked)
    _done(admin, f"user {_shown(upn)} updated")


@user_app.command("revoke")
@click.argument("upn")
@state_option
def user_revoke(upn: str, state: Path | None) -> None:
    """Revoke a user's sessions: their refresh tokens stop working (AADSTS50173)."""
    _admin(state).revoke_sessions(upn)
    click.echo(f"sessions of {_shown(upn)} revoked")


# --- apps -------------------------------------------------------------------------------------


@app_app.command("add")
@click.argument("name")
@click.option("--public/--confidential", default=True)
@click.option("--redirect-uri", multiple=True)
@click.option("--delegated", multiple=True)
@click.option("--application", multiple=True)
@click.option("--admin-consent", is_flag=True)
@state_option
def app_add(
    name: str,
    *,
    public: bool,
    redirect_uri: tuple[str, ...],
    delegated: tuple[str, ...],
    application: tuple[str, ...],
    admin_consent: bool,
    state: Path | None,
) -> None:
    """Register an app (permissions as full scope strings, e.g.
    https://outlook.office.com/IMAP.AccessAsUser.All)."""
    admin = _admin(state)
    created = admin.create_app(
        name,
        public=public,
        redirect_uris=list(redirect_uri),
        delegated=list(delegated),
        application=list(application),
        admin_consent=admin_consent,
    )
    _done(admin, f"app {_shown(created.name)} created: client id {created.client_id}")


@app_app.command("secret")
@click.argument("name")
@click.option("--days", type=float, default=730, help="Lifetime in days (negative: expired).")
@state_option
def app_secret(name: str, days: float, state: Path | None) -> None:
    """Add a client secret: its value is shown once here and kept in sandbox.json."""
    admin = _admin(state)
    secret = admin.add_client_secret(name, lifetime=days * 86400)
    path = _state(state) / SANDBOX_JSON
    _done(
        admin,
        f"secret {secret.secret_id} added to {_shown(name)}; its value (shown once here, "
        f"also in {path}):\n{secret.value}",
    )


@app_app.command("redirect-uri")
@click.argument("name")
@click.argument("uri")
@state_option
def app_redirect_uri(name: str, uri: str, state: Path | None) -> None:
    """Add a redirect URI to an existing app (http only for localhost / 127.0.0.1)."""
    admin = _admin(state)
    uris = admin.add_redirect_uri(name, uri)
    _done(admin, f"app {_shown(name)} redirect URIs: {_shown(' '.join(uris))}")


@app_app.command("role")
@click.argument("name")
@click.argument("values", nargs=-1, required=True)
@state_option
def app_role(name: str, values: tuple[str, ...], state: Path | None) -> None:
    """Define app roles (by value) on an app; assign them with `sandbox app assign`."""
    admin = _admin(state)
    admin.define_app_roles(name, values)
    _done(admin, f"app {_shown(name)} roles: {_shown(' '.join(values))}")


@app_app.command("assign")
@click.argument("name")
@click.argument("upn")
@click.argument("role")
@state_option
def app_assign(name: str, upn: str, role: str, state: Path | None) -> None:
    """Assign a user one of the app's roles (in the `roles` claim of their ID tokens)."""
    admin = _admin(state)
    admin.assign_app_role(name, upn, role)
    _done(admin, f"{_shown(upn)} has the role {_shown(role)} on {_shown(name)}")


@app_app.command("cert")
@click.argument("name")
@state_option
def app_cert(name: str, state: Path | None) -> None:
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
@click.argument("name")
@click.option("--delegated", multiple=True)
@click.option("--application", multiple=True)
@click.option("--admin-consent/--no-admin-consent", default=None)
@state_option
def app_grant(
    name: str,
    *,
    delegated: tuple[str, ...],
    application: tuple[str, ...],
    admin_consent: bool | None,
    state: Path | None,
) -> None:
    """Add API permissions and grant (or withdraw) admin consent."""
    admin = _admin(state)
    admin.grant(
        name,
        delegated=list(delegated),
        application=list(application),
        admin_consent=admin_consent,
    )
    _done(admin, f"app {_shown(name)} updated")


# --- Exchange ---------------------------------------------------------------------------------


@mailbox_app.command("register")
@click.argument("name")
@click.option("--object-id", help="Default: the enterprise app's.")
@state_option
def exchange_register(name: str, object_id: str | None, state: Path | None) -> None:
    """New-ServicePrincipal for an app."""
    principal = _admin(state).register_exchange_principal(name, object_id=object_id)
    click.echo(f"service principal {principal.object_id} registered for {principal.app_id}")


@mailbox_app.command("grant")
@click.argument("mailbox")
@click.argument("principal")
@state_option
def exchange_grant(mailbox: str, principal: str, state: Path | None) -> None:
    """Add-MailboxPermission -AccessRights FullAccess (principal: app, UPN or object id)."""
    _admin(state).add_mailbox_permission(mailbox, principal)
    click.echo(f"{_shown(principal)} has FullAccess on {_shown(mailbox)}")


@mailbox_app.command("revoke")
@click.argument("mailbox")
@click.argument("principal")
@state_option
def exchange_revoke(mailbox: str, principal: str, state: Path | None) -> None:
    """Remove-MailboxPermission."""
    _admin(state).remove_mailbox_permission(mailbox, principal)
    click.echo(f"{_shown(principal)} no longer has access to {_shown(mailbox)}")


@mailbox_app.command("faults")
@click.option(
    "--drop-after-bytes", type=click.IntRange(min=0), help="Abort each connection after N bytes."
)
@click.option(
    "--drop-probability",
    type=click.FloatRange(0, 1),
    help="Chance per write of aborting the connection part-way.",
)
@click.option("--delay", type=click.FloatRange(min=0), help="Seconds to wait before each write.")
@click.option("--seed", type=int, help="Seed of the random drops (same seed, same drops).")
@click.option("--clear", is_flag=True, help="Turn every fault off first.")
@state_option
def exchange_faults(
    *,
    drop_after_bytes: int | None,
    drop_probability: float | None,
    delay: float | None,
    seed: int | None,
    clear: bool,
    state: Path | None,
) -> None:
    """Show or change the IMAP transport faults (a running `up` applies them within a
    second; the next `up` starts with them). With no option: show them."""
    from exoimap.sandbox.faults import FAULTS_FILE, read_faults, write_faults
    from exoimap.sandbox.state import ensure_private_dir

    path = ensure_private_dir(_state(state)) / FAULTS_FILE
    faults = read_faults(path)
    changes = {
        "drop_after_bytes": drop_after_bytes,
        "drop_probability": drop_probability,
        "delay": delay,
        "seed": seed,
    }
    if clear or any(v is not None for v in changes.values()):
        if clear:
            faults.clear()
        for name, value in changes.items():
            if value is not None:
                setattr(faults, name, value)
        write_faults(path, faults)
    click.echo(f"IMAP faults: {faults.describe()}")


# --- settings and clock -----------------------------------------------------------------------

#: ``sandbox settings`` options: (directory setting, help).
_SETTINGS = (
    ("access_token_lifetime", "Access token lifetime (expires_in)."),
    ("id_token_lifetime", "ID token lifetime."),
    ("refresh_token_inactivity", "A refresh token unused this long fails (AADSTS700082)."),
    ("refresh_token_max_age", "A refresh token older than this fails (AADSTS70008); 0: never."),
    ("auth_code_lifetime", "Authorization code lifetime."),
    ("device_code_lifetime", "Device code lifetime."),
    ("device_code_interval", "Device code poll interval the client is told."),
    ("http_keep_alive", "Idle HTTPS connections stay open this long (from the next `up`)."),
)


def _settings_options(command: click.decorators.FC) -> click.decorators.FC:
    for name, text in reversed(_SETTINGS):
        flag = "--" + name.replace("_", "-")
        command = click.option(flag, name, type=click.IntRange(min=0), help=f"{text} Seconds.")(
            command
        )
    return command


@app.command("settings")
@_settings_options
@state_option
def settings(state: Path | None, **changes: int | None) -> None:
    """Show or change token lifetimes, device-code pacing and the HTTPS keep-alive; a
    running `up` applies them at its next request (keep-alive: at its next start)."""
    admin = _admin(state)
    wanted: dict[str, int | None] = {k: v for k, v in changes.items() if v is not None}
    if wanted.get("refresh_token_max_age") == 0:
        wanted["refresh_token_max_age"] = None
    current = admin.configure(**wanted) if wanted else admin.directory.settings
    for name, _text in _SETTINGS:
        value = getattr(current, name)
        click.echo(f"{name.replace('_', '-')}: {'none' if value is None else f'{value} s'}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` (a sign allowed) as seconds."""
    unit = text[-1:].lower()
    number = text[:-1] if unit in _UNITS else text
    try:
        return float(number) * _UNITS.get(unit, 1)
    except ValueError:
        raise click.BadParameter(
            f"{_shown(text)!r} is not a duration such as 90, 15m, 2h or 1d"
        ) from None


def _clock_line(admin: SandboxAdmin) -> str:
    import datetime as dt

    now = dt.datetime.fromtimestamp(admin.store.now(), dt.UTC).isoformat(timespec="seconds")
    offset = admin.directory.settings.clock_offset
    return f"sandbox clock: {now} (real time {offset:+g} s)"


@clock_app.command("advance")
@click.argument("duration")
@state_option
def clock_advance(duration: str, state: Path | None) -> None:
    """Move the sandbox clock forward by DURATION (90, 15m, 2h, 1d): tokens and codes
    expire as if that time had passed."""
    admin = _admin(state)
    admin.advance_clock(_seconds(duration))
    _done(admin, _clock_line(admin))


@clock_app.command("show")
@state_option
def clock_show(state: Path | None) -> None:
    """Print the sandbox time and how far it is from real time."""
    click.echo(_clock_line(_admin(state)))


@clock_app.command("reset")
@state_option
def clock_reset(state: Path | None) -> None:
    """Put the sandbox clock back to real time."""
    admin = _admin(state)
    admin.configure(clock_offset=0.0)
    _done(admin, _clock_line(admin))
