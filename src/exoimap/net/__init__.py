"""exoimap.net: the connections to mail servers: TLS policy and the asyncio IMAP client.

Every IMAP connection is opened here, and only here, under one TLS policy. Other sockets
belong elsewhere: auth's HTTPS to the identity platform (MSAL) and its loopback listener
for the browser sign-in, the agent's Unix socket, the metrics endpoint, and the sandbox's
servers.

- :mod:`exoimap.net.tls`: the TLS policy (TLS 1.2+, always verified, optional CA file).
- :mod:`exoimap.net.transport`: verified TLS byte streams (implicit TLS or STARTTLS).
- :mod:`exoimap.net.session`: one IMAP session over :mod:`exoimap.protocol`.
- :mod:`exoimap.net.imap`: :class:`ImapClient`, the self-healing client (reconnect,
  token refresh, throttling, resumable pipelined fetch).
"""

from exoimap.net.account import AccountProvider, connection_for
from exoimap.net.credentials import (
    Credentials,
    OAuth2Credentials,
    PasswordCredentials,
    StaticToken,
    TokenSource,
)
from exoimap.net.imap import FetchedBody, ImapClient, MailboxStatus, RetryPolicy
from exoimap.net.session import Endpoint, ImapSession, NetEvent
from exoimap.net.tls import TLSPolicy

__all__ = [
    "AccountProvider",
    "Credentials",
    "Endpoint",
    "FetchedBody",
    "ImapClient",
    "ImapSession",
    "MailboxStatus",
    "NetEvent",
    "OAuth2Credentials",
    "PasswordCredentials",
    "RetryPolicy",
    "StaticToken",
    "TLSPolicy",
    "TokenSource",
    "connection_for",
]
