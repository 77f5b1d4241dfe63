"""``exoimap proxy``: serve mail clients that only know passwords (see docs/proxy.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from exoimap.cli.app import PATH, Group
from exoimap.cli.metrics import metrics_endpoint, metrics_listeners, metrics_port_option
from exoimap.cli.output import echo
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.errors import ConfigError

if TYPE_CHECKING:
    import ssl

    from exoimap.proxy.gate import Gate
    from exoimap.proxy.meter import ProxyMeter
    from exoimap.proxy.passwords import PasswordBook
    from exoimap.proxy.server import ProxyServer
    from exoimap.proxy.submission import SubmissionServer, TlsMode
    from exoimap.proxy.upstream import Upstreams

__all__ = ["app"]


def _folder(paths: Paths) -> Path:
    return paths.data_dir / "proxy"


def _book(paths: Paths) -> PasswordBook:
    from exoimap.proxy.passwords import PasswordBook

    return PasswordBook(_folder(paths) / "passwords.json")


@click.group("proxy", cls=Group, invoke_without_command=True)
@click.option(
    "--listen",
    default="127.0.0.1:1993",
    show_default=True,
    help="HOST:PORT to accept IMAP clients on.",
)
@click.option("--cert", type=PATH, help="Serve this certificate (PEM) instead of the local CA's.")
@click.option("--key", type=PATH, help="The private key (PEM) of --cert.")
@click.option(
    "--plaintext-on-loopback",
    is_flag=True,
    help="Accept clients without TLS (refused unless HOST is a loopback address).",
)
@click.option(
    "--max-per-mailbox",
    type=click.IntRange(1, 1000),
    default=16,
    show_default=True,
    help="Upstream connections per mailbox at most (Exchange allows 20; leave some for "
    "syncs); clients beyond are refused with a message saying so.",
)
@click.option(
    "--starttls-listen",
    metavar="HOST:PORT",
    help="Also accept IMAP clients that start in the clear and upgrade with STARTTLS "
    "(port 143 style, e.g. 127.0.0.1:1143); no password is taken before TLS.",
)
@click.option(
    "--smtp-listen",
    metavar="HOST:PORT",
    help="Also accept SMTP submission on HOST:PORT (e.g. 127.0.0.1:1587) with the same app "
    "passwords, relayed to Exchange Online with XOAUTH2.",
)
@click.option(
    "--smtp-tls",
    type=click.Choice(["starttls", "implicit"]),
    default="starttls",
    show_default=True,
    help="SMTP: STARTTLS before AUTH (port 587 style) or implicit TLS (port 465 style).",
)
@metrics_port_option
@click.pass_context
def app(  # noqa: PLR0917 - click passes the options by keyword
    ctx: click.Context,
    listen: str,
    cert: Path | None,
    key: Path | None,
    plaintext_on_loopback: bool,
    max_per_mailbox: int,
    starttls_listen: str | None,
    smtp_listen: str | None,
    smtp_tls: str,
    metrics_port: int | None,
) -> None:
    """Run a local IMAP server that signs in to Exchange Online for clients that only know
    passwords: they sign in with an app password, the proxy uses the account's OAuth2
    tokens. With a sub-command, manage its CA and app passwords instead."""
    if ctx.invoked_subcommand is not None:
        return
    from exoimap.proxy.server import parse_listen

    host, port = parse_listen(listen)
    starttls = (
        None
        if starttls_listen is None
        else parse_listen(starttls_listen, option="--starttls-listen")
    )
    if starttls is not None and plaintext_on_loopback:
        raise ConfigError("--starttls-listen needs TLS: not with --plaintext-on-loopback")
    smtp = None
    if smtp_listen is not None:
        mode = "none" if plaintext_on_loopback else smtp_tls
        smtp = (*parse_listen(smtp_listen, option="--smtp-listen"), mode)
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together")
    paths = Paths.from_env()
    _serve(
        paths,
        (host, port),
        (cert, key),
        plaintext_on_loopback,
        (max_per_mailbox, metrics_port),
        smtp=smtp,
        starttls=starttls,
    )


def _serve(
    paths: Paths,
    listen: tuple[str, int],
    own_cert: tuple[Path | None, Path | None],
    plaintext: bool,
    limits: tuple[int, int | None],
    *,
    smtp: tuple[str, int, str] | None,
    starttls: tuple[str, int] | None,
) -> None:
    from exoimap.audit import auditing
    from exoimap.auth.audit_key import audit_key_for
    from exoimap.auth.provider import TokenProvider
    from exoimap.auth.vault import Vault
    from exoimap.net.tls import lean_tls_buffers
    from exoimap.proxy.gate import Gate
    from exoimap.proxy.limiter import FailureLimiter
    from exoimap.proxy.server import ProxyServer, check_plaintext
    from exoimap.proxy.upstream import Upstreams

    host, port = listen
    max_per_mailbox, metrics_port = limits
    if plaintext:
        check_plaintext(host)
    config = load_config(paths)
    if not config.accounts:
        raise ConfigError("no accounts configured; add one with `exoimap account add`")
    vault = Vault.from_paths()

    def provider(account: AccountConfig) -> TokenProvider:
        return TokenProvider(account, vault=vault)

    names = (host, *(x[0] for x in (smtp, starttls) if x is not None))
    tls = None if plaintext else _server_tls(paths, own_cert, names)
    upstreams = Upstreams(
        dict(config.accounts), provider, max_sessions=max_per_mailbox, meter=_meter(metrics_port)
    )
    gate = Gate(_book(paths), upstreams, FailureLimiter())
    server = ProxyServer(host, port, tls, gate, upstreams)
    extras: list[ProxyServer | SubmissionServer] = []
    if starttls is not None:
        extras.append(ProxyServer(*starttls, None, gate, upstreams, starttls=tls))
    if smtp is not None:
        extras.append(_submission(smtp, tls, gate, upstreams))
        _warn_without_smtp_send(config.accounts.values())
    lean_tls_buffers()
    with (
        auditing(
            paths, config.audit, key=audit_key_for(paths), listeners=metrics_listeners(metrics_port)
        ),
        metrics_endpoint(metrics_port),
    ):
        asyncio.run(_run(server, extras))


def _warn_without_smtp_send(accounts: Iterable[AccountConfig]) -> None:
    """Name the accounts whose sign-in leaves out SMTP.Send: Exchange refuses their mail."""
    from exoimap.auth.policy import DELEGATED_FLOWS

    for account in accounts:
        if account.flow in DELEGATED_FLOWS and not account.smtp_send:
            echo(
                f"warning: {account.name} signs in without SMTP.Send, so Exchange refuses "
                f"mail relayed for it; run `exoimap login {account.name} --smtp` first.",
                err=True,
            )


def _meter(metrics_port: int | None) -> ProxyMeter:
    """What the proxy counts: into the served metrics (beside the audit-fed ones), or
    nothing when none are served."""
    from exoimap.proxy.meter import PrometheusMeter, ProxyMeter

    if metrics_port is None:
        return ProxyMeter()
    from exoimap.metrics import METRICS

    return PrometheusMeter(METRICS.registry)


def _server_tls(
    paths: Paths, own_cert: tuple[Path | None, Path | None], names: tuple[str, ...]
) -> ssl.SSLContext:
    from exoimap.proxy.ca import ProxyCA, server_context

    cert, key = own_cert
    if cert is not None and key is not None:
        return server_context(cert, key)
    return ProxyCA.load_or_create(_folder(paths) / "ca").server_context(names)


async def _run(server: ProxyServer, extras: list[ProxyServer | SubmissionServer]) -> None:
    from exoimap.proxy.submission import SubmissionServer

    # The other listeners first: once the main IMAP port answers, all are up (scripts
    # wait for that one).
    for extra in extras:
        bound = await extra.start()
        what = (
            f"SMTP submission ({extra.mode})"
            if isinstance(extra, SubmissionServer)
            else "IMAP with STARTTLS"
        )
        echo(f"{what} on {extra.host}:{bound}.", err=True)
    bound = await server.start()
    kind = "plaintext (loopback only)" if server.tls is None else "implicit TLS"
    echo(f"exoimap proxy listening on {server.host}:{bound} ({kind}); Ctrl-C to stop.", err=True)
    try:
        await server.serve_forever()
    finally:
        await server.close()
        for extra in extras:
            await extra.close()


def _submission(
    smtp: tuple[str, int, str], tls: ssl.SSLContext | None, gate: Gate, upstreams: Upstreams
) -> SubmissionServer:
    from exoimap.proxy.smtp_upstream import Relay
    from exoimap.proxy.submission import SubmissionServer

    host, port, chosen = smtp
    modes: dict[str, TlsMode] = {"starttls": "starttls", "implicit": "implicit", "none": "none"}
    return SubmissionServer(host, port, tls, modes[chosen], gate, Relay(upstreams))


@app.command("ca")
@click.option("--path", "show_path", is_flag=True, help="Print the CA file's path instead.")
def ca(show_path: bool) -> None:
    """Print the proxy's local CA certificate (PEM) for mail clients to trust; it is made on
    first use and kept under the exoimap home."""
    from exoimap.proxy.ca import ProxyCA

    authority = ProxyCA.load_or_create(_folder(Paths.from_env()) / "ca")
    if show_path:
        echo(str(authority.cert_file))
        return
    click.echo(authority.pem(), nl=False)
    echo(f"SHA-256 fingerprint: {authority.fingerprint()}", err=True)


@app.group("password", cls=Group, no_args_is_help=True)
def password() -> None:
    """App passwords: one per client, each bound to one account."""


def _audited_change(paths: Paths, label: str, account: str, action: str) -> None:
    from exoimap import audit
    from exoimap.auth.audit_key import audit_key_for

    with audit.auditing(paths, load_config(paths).audit, key=audit_key_for(paths)):
        audit.emit(
            audit.ConfigChanged(account=account, key=f"proxy.password.{label}", action=action)
        )


@password.command("add")
@click.argument("label")
@click.option("--account", "account_name", required=True, help="The account it signs in to.")
def password_add(label: str, account_name: str) -> None:
    """Make a random app password for the client LABEL and print it once: only its scrypt
    hash is kept, so it cannot be shown again (revoke and add to replace it)."""
    paths = Paths.from_env()
    account = load_config(paths).account(account_name)
    secret = _book(paths).add(label, account.name)
    _audited_change(paths, label, account.name, "add")
    echo(f"App password for {label} (account {account.name}), shown only now:", err=True)
    click.echo(secret.reveal())
    echo(f"Sign in as {account.email} (or {account.name}) with it.", err=True)


@password.command("list")
def password_list() -> None:
    """List the app passwords (labels, accounts, creation times; never a password)."""
    entries = _book(Paths.from_env()).entries()
    if not entries:
        echo("No app passwords; add one with `exoimap proxy password add LABEL --account NAME`.")
    for entry in entries:
        echo(f"{entry.label}  account {entry.account}  created {entry.created}")


@password.command("revoke")
@click.argument("label")
def password_revoke(label: str) -> None:
    """Revoke the app password LABEL: its client can no longer sign in (sessions already
    open go on until they end)."""
    paths = Paths.from_env()
    removed = _book(paths).revoke(label)
    if removed is None:
        raise ConfigError(f"no app password labelled {label!r}")
    _audited_change(paths, label, removed.account, "revoke")
    echo(f"Revoked {label} (account {removed.account}).")
