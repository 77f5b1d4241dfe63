"""The one rule by which commands name the accounts they act on: ``NAME...`` or ``--all``.

``sync``, ``verify``, ``archive stats``, ``login``, ``logout`` and ``token show`` take one or
more account names, or ``--all`` for every configured account; with neither they act on
the only account when there is one, else stop with a usage error that lists the accounts
(so a command never acts on several accounts unless asked to). With several accounts a
failure of one does not stop the others: each is reported on its own line and the exit
code says whether all, some or none succeeded. Commands that move data between two places
(``restore``, ``export``, ``migrate``) or change one account (``account add``,
``account set-secret``) take one name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from exoimap.cli.app import EXIT_OK, EXIT_PARTIAL, exit_code_for
from exoimap.cli.output import echo
from exoimap.config import AccountConfig, Config
from exoimap.errors import ConfigError, ExoimapError
from exoimap.logs import redact
from exoimap.words import sentence

__all__ = ["account_names", "for_each_account", "select_accounts"]

F = TypeVar("F", bound=Callable[..., object])


def account_names(what: str) -> Callable[[F], F]:
    """Add the ``NAME...`` argument and the ``--all`` flag (as ``names`` and ``all_accounts``);
    ``what`` completes "Accounts to ...", e.g. "back up"."""

    def decorate(command: F) -> F:
        command = click.option(
            "--all", "all_accounts", is_flag=True, help="Every configured account."
        )(command)
        return click.argument("names", nargs=-1, help=f"Accounts to {what} (or --all).")(command)

    return decorate


def select_accounts(
    config: Config, names: Sequence[str], all_accounts: bool
) -> list[AccountConfig]:
    """The accounts named (each once, in the order given), every one with ``--all``, or
    the only one when none is named."""
    if names and all_accounts:
        raise ConfigError("give account names or --all, not both")
    if names:
        return [config.account(name) for name in dict.fromkeys(names)]
    if not config.accounts:
        raise ConfigError(
            "no accounts configured; add one: `exoimap account add NAME --email ADDRESS`"
        )
    if all_accounts or len(config.accounts) == 1:
        return list(config.accounts.values())
    known = ", ".join(sorted(config.accounts))
    raise ConfigError(f"name one or more accounts, or use --all (accounts: {known})")


def for_each_account(
    accounts: Sequence[AccountConfig], action: Callable[[AccountConfig], int]
) -> int:
    """Run ``action`` (which returns an exit code) for each account and give the exit code
    for them all. One account: its error ends the command as usual. Several: an error is
    printed as ``NAME: error: ...`` and the next account goes on; the code is 0 when all
    succeeded, the common code when all failed alike, else 4 (partial)."""
    if len(accounts) == 1:
        return action(accounts[0])
    codes: list[int] = []
    for account in accounts:
        try:
            codes.append(action(account))
        except ExoimapError as exc:
            echo(sentence(f"{account.name}: error: {redact(str(exc))}"), err=True)
            codes.append(exit_code_for(exc))
    return combined_exit_code(codes)


def combined_exit_code(codes: Sequence[int]) -> int:
    """0 when every account succeeded, their code when all failed alike, else 4."""
    if all(code == EXIT_OK for code in codes):
        return EXIT_OK
    if len(set(codes)) == 1:
        return codes[0]
    return EXIT_PARTIAL
