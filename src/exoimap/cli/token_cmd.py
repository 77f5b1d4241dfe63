"""``exoimap token show NAME...``: what the account's token allows, never the token itself."""

from __future__ import annotations

import time

import click

from exoimap.cli.account_names import account_names, for_each_account, select_accounts
from exoimap.cli.app import EXIT_OK, Group
from exoimap.cli.signin import describe_expiry, provider_for
from exoimap.config import load_config
from exoimap.words import plural


@click.group("token", cls=Group, no_args_is_help=True)
def app() -> None:
    """Inspect access tokens (never printed)."""


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
