"""What a token provider tells the IMAP layer besides its tokens: the account's server.

Shared by the in-process :class:`~exoimap.auth.provider.TokenProvider` and the child
process one (:class:`~exoimap.auth.token_child.ChildTokenProvider`).
"""

from __future__ import annotations

from exoimap.clouds import Cloud, resolve_cloud
from exoimap.config import AccountConfig

__all__ = ["AccountServer"]


class AccountServer:
    """The host, port, user name and SASL mechanism of one configured account."""

    def __init__(self, account: AccountConfig) -> None:
        self.account = account
        self.cloud: Cloud = resolve_cloud(
            account.cloud,
            authority=account.authority,
            imap_host=account.imap_host,
            imap_port=account.imap_port,
        )

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def imap_host(self) -> str:
        return self.cloud.imap_host

    @property
    def imap_port(self) -> int:
        return self.cloud.imap_port

    @property
    def username(self) -> str:
        """The user name sent with the token (``user=`` in XOAUTH2) or the password."""
        return self.account.username or self.account.email

    @property
    def mechanism(self) -> str:
        return self.account.mechanism

    @property
    def starttls(self) -> bool:
        return self.account.starttls
