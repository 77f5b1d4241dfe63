"""One IMAP sign-in, nothing else: so a setup step missing in Exchange Online shows at
``exoimap login``, not at the first sync.

App-only access needs two steps in Exchange that Entra ID knows nothing of (the service
principal and the mailbox permission); a token comes back without them, and only Exchange's
answer to a sign-in tells. The session explains a refusal from what the token provider
already verified (see :func:`exoimap.net.explain.explain_auth_failure`).
"""

from __future__ import annotations

from exoimap.config import AccountConfig
from exoimap.net.account import AccountProvider, connection_for
from exoimap.net.session import ImapSession, NetEvent

__all__ = ["check_imap_sign_in"]


def _ignore(_event: NetEvent) -> None:
    """Connection events are audited by the session; nothing to show here."""


async def check_imap_sign_in(account: AccountConfig, provider: AccountProvider) -> str:
    """Sign in to the account's mailbox once (no retries, no folder opened) and log out;
    returns ``host:port``. Raises :class:`~exoimap.errors.ImapAuthenticationFailed` naming
    what is missing, or the network error."""
    endpoint, credentials = connection_for(provider, ca_file=account.ca_file)
    session = await ImapSession.open(endpoint, _ignore, account=account.name)
    try:
        await session.authenticate(credentials)
    finally:
        await session.logout()
    return f"{endpoint.host}:{endpoint.port}"
