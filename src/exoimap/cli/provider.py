"""The CLI's token provider for an account (shared by every command that signs in)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exoimap.config import AccountConfig

if TYPE_CHECKING:
    from exoimap.net.account import AccountProvider

__all__ = ["account_provider", "watch_provider"]


def account_provider(account: AccountConfig) -> AccountProvider:
    """The CLI's token provider: the vault may ask for its passphrase on a terminal."""
    # Imported here: an account whose archive is up to date may never need a token, and a
    # no-change sync must not pay for msal.
    from exoimap.auth.provider import TokenProvider
    from exoimap.auth.vault import Vault, terminal_prompt

    return TokenProvider(account, vault=Vault.from_paths(prompt=terminal_prompt()))


def watch_provider(account: AccountConfig) -> AccountProvider:
    """The token provider of a long-running watch: tokens from a short-lived child process
    where the vault opens unattended, so the watch never holds MSAL (see
    :mod:`exoimap.auth.token_child`); the CLI's provider otherwise."""
    from exoimap.auth.token_child import token_provider_for
    from exoimap.auth.vault import terminal_prompt
    from exoimap.config import Paths

    return token_provider_for(account, Paths.from_env(), prompt=terminal_prompt())
