"""``exoimap token show NAME...``: what the account's token allows, never the token itself;
``exoimap token print NAME``: the token, for another program (a mail client's PassCmd)."""

from __future__ import annotations

import os
import sys
import time

import click

from exoimap.auth.handout import MAX_MIN_VALIDITY
from exoimap.cli.account_names import account_names, for_each_account, select_accounts
from exoimap.cli.app import EXIT_OK, EXIT_USAGE, Group
from exoimap.cli.signin import describe_expiry, provider_for
from exoimap.config import load_config
from exoimap.words import plural


@click.group("token", cls=Group, no_args_is_help=True)
def app() -> None:
    """Inspect access tokens, or hand one to a mail client."""


@app.command("show")
@account_names("show the token of")
def show(names: tuple[str, ...], all_accounts: bool) -> None:
    """Summarise the account's current access token: user, audience, scopes or roles, expiry.
    Refreshes it first when it is about to expire."""
    accounts = select_accounts(load_config(), names, all_accounts)
    raise click.exceptions.Exit(for_each_account(accounts, lambda a: _show(a.name)))


def _show(name: str) -> int:
    provider = provider_for(name)
    info = provider.token_info(min_validity=60)
    claims = info.claims
    click.echo(f"account:   {name}")
    if claims is None:
        click.echo("token:     opaque (not a JWT): no claims to show")
    else:
        user = claims.user or ("(app-only: no user)" if claims.app_only else "(not in the token)")
        click.echo(f"user:      {user}")
        click.echo(f"audience:  {claims.audience}")
        if claims.scopes:
            click.echo(f"scopes:    {' '.join(claims.scopes)}")
        if claims.roles:
            click.echo(f"roles:     {' '.join(claims.roles)}")
        if claims.app_id:
            click.echo(f"app id:    {claims.app_id}")
        if claims.tenant_id:
            click.echo(f"tenant:    {claims.tenant_id}")
    click.echo(f"expires:   {describe_expiry(info)}")
    last = provider.refresh_token_last_used() if provider.account.flow != "token-command" else None
    if last is not None:
        click.echo(f"refresh:   last used {plural(round((time.time() - last) / 86400), 'day')} ago")
    for warning in info.warnings:
        click.echo(f"warning:   {warning}")
    return EXIT_OK


@app.command("print")
@click.argument("name", help="The account.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["token", "xoauth2"]),
    default="token",
    help="token: the bare access token; xoauth2: the base64 SASL XOAUTH2 string.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the token and its expiry.")
@click.option("--force", is_flag=True, help="Print even when stdout is a terminal.")
@click.option("--no-agent", is_flag=True, help="Read the vault here even when an agent runs.")
@click.option(
    "--min-validity",
    type=click.IntRange(min=60, max=MAX_MIN_VALIDITY),
    default=300,
    show_default=True,
    help="Seconds the token must stay valid; refreshed first otherwise.",
)
def print_token(
    *, name: str, fmt: str, as_json: bool, force: bool, no_agent: bool, min_validity: int
) -> None:
    """Print the account's access token on stdout and nothing else, for a mail client
    (mbsync PassCmd, neomutt, msmtp passwordeval: see docs/clients.md).

    The token is valid for at least five more minutes (--min-validity), refreshed first
    otherwise. Exit code 3 when a sign-in is needed. Every call is in the audit log (never
    the token). A running `exoimap agent` answers it without start-up costs.
    """
    from exoimap.audit import auditing
    from exoimap.auth.audit_key import audit_key_for
    from exoimap.auth.handout import TokenDesk, asking_programs, render
    from exoimap.auth.vault import terminal_prompt
    from exoimap.config import Paths

    del no_agent  # read by the agent client before the CLI starts (exoimap.agent.client)
    if sys.stdout.isatty() and not force:
        click.echo(
            "exoimap: error: not printing an access token to a terminal; pipe it to the "
            "program that needs it, or add --force",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_USAGE)
    paths = Paths.from_env()
    with auditing(paths, load_config(paths).audit, key=audit_key_for(paths)):
        desk = TokenDesk(paths, prompt=terminal_prompt())
        info, username = desk.hand_out(
            name,
            requested_by=asking_programs(os.getpid()),
            via="command",
            fmt=fmt,
            min_validity=min_validity,
        )
    text = render(name, info, username, fmt=fmt, as_json=as_json, now=time.time())
    sys.stdout.write(text)
    sys.stdout.flush()
