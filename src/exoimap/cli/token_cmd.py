"""``exoimap token show NAME``: what the account's token allows, never the token itself."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from exoimap.cli.signin import describe_expiry, provider_for

app = typer.Typer(help="Inspect access tokens (never printed).", no_args_is_help=True)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="The account.")]) -> None:
    """Summarise the account's current access token: user, audience, scopes or roles, expiry.
    Refreshes it first when it is about to expire."""
    provider = provider_for(name)
    info = provider.token_info(min_validity=60)
    claims = info.claims
    typer.echo(f"account:   {name}")
    if claims is None:
        typer.echo("token:     opaque (not a JWT): no claims to show")
    else:
        typer.echo(f"user:      {claims.user or '(app-only)' if claims.app_only else claims.user}")
        typer.echo(f"audience:  {claims.audience}")
        if claims.scopes:
            typer.echo(f"scopes:    {' '.join(claims.scopes)}")
        if claims.roles:
            typer.echo(f"roles:     {' '.join(claims.roles)}")
        if claims.app_id:
            typer.echo(f"app id:    {claims.app_id}")
        if claims.tenant_id:
            typer.echo(f"tenant:    {claims.tenant_id}")
    typer.echo(f"expires:   {describe_expiry(info)}")
    last = provider.refresh_token_last_used() if provider.account.flow != "token-command" else None
    if last is not None:
        typer.echo(f"refresh:   last used {(time.time() - last) / 86400:.0f} days ago")
    for warning in info.warnings:
        typer.echo(f"warning:   {warning}")
