"""Restoring one message from the console: back into its own mailbox, into a new
``Restored <date time>`` folder (nothing in the mailbox is touched), exactly once, through
the application's restore (:mod:`exoimap.app.restore`), which audits it as
``archive.restored``.

The message is chosen by its folder and Message-ID (the restore selects by those); a
message without a Message-ID cannot be restored from here.
"""

from __future__ import annotations

import datetime as _dt
import glob
from collections.abc import Callable
from dataclasses import dataclass

from exoimap.app.restore import RestoreOptions, RestoreRequest, restore_account
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.net.account import AccountProvider
from exoimap.untrusted import shown

__all__ = ["ProviderFactory", "RestoreOutcome", "restore_message", "vault_provider"]

#: The token provider for restoring into an account of an installation.
ProviderFactory = Callable[[Paths, AccountConfig], AccountProvider]


@dataclass(frozen=True)
class RestoreOutcome:
    messages: int
    folder: str | None  # where the message went
    error: str | None


def vault_provider(paths: Paths, account: AccountConfig) -> AccountProvider:
    """Tokens from the installation's vault; the console never prompts (the vault's
    passphrase comes from the environment or the keyring)."""
    from exoimap.auth.provider import TokenProvider
    from exoimap.auth.vault import Vault

    return TokenProvider(account, vault=Vault.from_paths(paths))


async def restore_message(
    paths: Paths,
    account_name: str,
    folder: str,
    message_id: str,
    providers: ProviderFactory,
    *,
    target: str | None = None,
    days: tuple[_dt.date | None, _dt.date | None] = (None, None),
) -> RestoreOutcome:
    """Restore one message into its own mailbox, or (four eyes, approved) into the
    account ``target``'s; ``days``: only a message archived within these days (UTC,
    both included), as the scope allows."""
    config = load_config(paths)
    account = config.account(account_name)
    into = config.account(target) if target else account
    options = RestoreOptions(
        folders=(glob.escape(folder),), message_ids=(message_id,), since=days[0], until=days[1]
    )
    request = RestoreRequest(account, into, providers(paths, into), paths, options)
    result = await restore_account(request)
    if result.error is not None:
        return RestoreOutcome(0, None, shown(str(result.error)))
    report = result.report
    if report is None:
        return RestoreOutcome(0, None, "the restore did not run")
    if report.errors:
        return RestoreOutcome(report.fetched, None, shown(str(report.errors[0])))
    # the deepest folder created: "Restored <date time>/<the message's folder>"
    return RestoreOutcome(report.fetched, max(report.created, key=len, default=None), None)
