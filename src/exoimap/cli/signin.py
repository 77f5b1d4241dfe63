"""``exoimap login NAME...`` and ``exoimap logout NAME...`` (or ``--all``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import click

from exoimap.app.signin_check import check_imap_sign_in
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.auth.provider import TokenInfo, TokenProvider
from exoimap.auth.vault import Vault, terminal_prompt
from exoimap.cli.account_names import account_names, for_each_account, select_accounts
from exoimap.cli.app import EXIT_OK
from exoimap.config import AccountConfig, Paths, load_config, write_account


def provider_for(name: str) -> TokenProvider:
    """The account's token provider, with a vault that may ask for its passphrase."""
    account = load_config().account(name)
    return TokenProvider(account, vault=Vault.from_paths(prompt=terminal_prompt()))


def describe_expiry(info: TokenInfo) -> str:
    if info.expires_at == float("inf"):
        return "unknown expiry"
    left = info.expires_at - time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.expires_at))
    return f"valid until {when} ({left / 60:.0f} min)"


@click.command("login")
@account_names("sign in")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    help="Seconds to wait for the browser sign-in (flow browser) to come back.",
)
@click.option(
    "--smtp/--no-smtp",
    default=None,
    help="Also ask for SMTP.Send, so `exoimap proxy --smtp-listen` can relay the account's "
    "mail (or stop asking); kept in the account's config (smtp_send).",
)
def login(names: tuple[str, ...], all_accounts: bool, timeout: float, smtp: bool | None) -> None:
    """Sign in (device code, browser, or app-only credentials) and store the tokens encrypted.

    App-only accounts (client-secret, client-certificate) then sign in to IMAP once, so a
    step missing in Exchange Online (New-ServicePrincipal, Add-MailboxPermission) is named
    now rather than at the first sync.

    The account's flow (`exoimap account add --flow`) decides how:

    \b
    device              a code to enter at a web page, on any device (default)
    browser             a browser on this computer (PKCE, loopback redirect)
    client-secret       app-only, with the secret from `exoimap account set-secret`
    client-certificate  app-only, with a certificate (PEM or PFX)
    token-command       runs the account's token command once to check it

    Environment variables that matter:

    \b
    EXOIMAP_VAULT_PASSPHRASE  the vault's passphrase when no keyring is at hand
    EXOIMAP_VAULT_KEY_FILE    a key file made by `exoimap vault create-key-file`
    EXOIMAP_NO_KEYRING        set to 1 to never use the system keyring
    EXOIMAP_HOME              one folder for the config, vault, logs and archives
    DISPLAY, WAYLAND_DISPLAY  without either, the browser flow prints the URL
    """
    paths = Paths.from_env()
    config = load_config(paths)
    accounts = select_accounts(config, names, all_accounts)
    if smtp is not None:
        accounts = [_with_smtp(account, smtp, paths) for account in accounts]
    vault = Vault.from_paths(prompt=terminal_prompt())
    if any(account.flow != "token-command" for account in accounts):
        # before the audit key (kept in the vault) and before anyone approves a sign-in
        # whose result could not be stored
        vault.check_writable()

    def one(account: AccountConfig) -> int:
        provider = TokenProvider(account, vault=vault, browser_timeout=timeout)
        with auditing(paths, config.audit, key=audit_key_for(paths)):
            info = provider.login()  # the provider records the token request or its failure
            for warning in info.warnings:
                click.echo(f"warning: {warning}", err=True)
            if provider.app_only:
                # Exchange's own steps (service principal, mailbox permission) show only here.
                click.echo(
                    f"Got an app-only token for {account.name!r}; signing in to "
                    f"{provider.username}'s mailbox to check the Exchange Online setup."
                )
                asyncio.run(check_imap_sign_in(account, provider))
        who = info.claims.user if info.claims and info.claims.user else provider.username
        click.echo(f"Signed in {account.name!r} as {who}; access token {describe_expiry(info)}.")
        return EXIT_OK

    raise click.exceptions.Exit(for_each_account(accounts, one))


def _with_smtp(account: AccountConfig, smtp: bool, paths: Paths) -> AccountConfig:
    """The account asking (or not) for SMTP.Send from now on, saved in the config."""
    if account.smtp_send == smtp:
        return account
    changed = dataclasses.replace(account, smtp_send=smtp)
    write_account(changed, paths, replace=True)
    return changed


@click.command("logout")
@account_names("sign out")
def logout(names: tuple[str, ...], all_accounts: bool) -> None:
    """Remove the accounts' stored tokens from this computer (the config stays)."""
    accounts = select_accounts(load_config(), names, all_accounts)
    vault = Vault.from_paths()

    def one(account: AccountConfig) -> int:
        if TokenProvider(account, vault=vault).logout():
            click.echo(f"Removed the stored sign-in of {account.name!r}.")
        else:
            click.echo(f"{account.name!r} had no stored sign-in.")
        return EXIT_OK

    raise click.exceptions.Exit(for_each_account(accounts, one))
