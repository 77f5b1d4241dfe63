"""``exoimap console``: the web console over the archives (see docs/console.md)."""

from __future__ import annotations

from pathlib import Path

import click

from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.app import PATH
from exoimap.config import Paths, load_config

__all__ = ["console"]


@click.command("console")
@click.option(
    "--listen",
    default="127.0.0.1:8443",
    help="HOST:PORT to serve on; an address other than loopback needs --cert and --key.",
)
@click.option("--cert", type=PATH, help="TLS certificate chain (PEM) to serve HTTPS with.")
@click.option("--key", type=PATH, help="The private key (PEM) of --cert.")
@click.option(
    "--settings",
    "settings_path",
    type=PATH,
    help="The console's settings file [default: console.toml next to config.toml].",
)
def console(listen: str, cert: Path | None, key: Path | None, settings_path: Path | None) -> None:
    """Serve the web console: people sign in with Entra ID and see the archives their app
    roles allow (self, restore_operator, auditor, compliance_officer, admin, audit_reader).

    Every request is checked by one policy and recorded in the audit log. Put it behind a
    reverse proxy that terminates TLS, or give --cert and --key.
    """
    from exoimap.console.archives import Mailboxes
    from exoimap.console.server import ConsoleServer, is_loopback, parse_listen
    from exoimap.console.sessions import SessionStore
    from exoimap.console.settings import load_settings, settings_file
    from exoimap.console.signin import SignIn
    from exoimap.console.trail import Trail
    from exoimap.console.web import Console, build_app
    from exoimap.net.listen import listening_socket

    host, port = parse_listen(listen)
    if (cert is None) != (key is None):
        raise click.UsageError("--cert and --key go together")
    if cert is None and not is_loopback(host):
        raise click.UsageError(
            f"{host} is not a loopback address: give --cert and --key, or listen on "
            "127.0.0.1 behind a reverse proxy that terminates TLS (docs/console.md)"
        )
    paths = Paths.from_env()
    config = load_config(paths)
    scheme = "https" if cert else "http"
    shown_host = f"[{host}]" if ":" in host else host
    settings = load_settings(
        settings_path or settings_file(paths), public_url=f"{scheme}://{shown_host}:{port}"
    )
    sock = listening_socket(host, port)
    with auditing(paths, config.audit, key=audit_key_for(paths)):
        sessions = SessionStore(idle=settings.idle_timeout, absolute=settings.absolute_timeout)
        mailboxes = Mailboxes(paths)
        mailboxes.search.create()  # from now on every sync keeps it current
        console = Console(
            settings, mailboxes, sessions, SignIn(settings), Trail(), index_at_start=True
        )
        app = build_app(console)
        click.echo(f"exoimap console at {settings.public_url} (Ctrl-C stops it)")
        click.echo(f"reply URL to register on the app: {settings.redirect_uri}")
        ConsoleServer(app, sock, cert=cert, key=key).run()
