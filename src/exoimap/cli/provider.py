"""The CLI's token provider for an account (shared by every command that signs in)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exoimap.config import AccountConfig

if TYPE_CHECKING:
    from exoimap.net.account import AccountProvider

__all__ = ["account_provider"]


def account_provider(account: AccountConfig) -> AccountProvider:
    """The CLI's token provider: the vault may ask for its passphrase on a terminal."""
    # Imported here: an account whose archive is up to date may never need a token, and a
    # no-change sync must not pay for msal.
    from exoimap.auth.provider import TokenProvider
    from exoimap.auth.vault import Vault, terminal_prompt

    return TokenProvider(account, vault=Vault.from_paths(prompt=terminal_prompt()))
