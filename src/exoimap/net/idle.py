"""Waiting for a folder to change: IDLE (RFC 2177) through the self-healing client.

Exchange ends an IDLE after about 30 minutes ([U] in the spec: its exact limit is not
published), so the caller re-issues it at an interval of its choosing; the wait is also cut
short before the session's access token is due for renewal, so the client can sign in
again before Exchange ends the session with ``AccessTokenExpired``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from exoimap.net.imap import ImapClient
from exoimap.net.session import ImapSession
from exoimap.protocol.types import ExistsResponse, ExpungeResponse, FetchResponse, Response

__all__ = ["supports_idle", "wait_for_change"]

#: The shortest wait, so a session about to be renewed cannot make IDLE spin.
_MIN_WAIT = 1.0


def supports_idle(client: ImapClient) -> bool:
    """Whether the server offers IDLE (known once the client is connected)."""
    return "IDLE" in client.capabilities


def _changed(responses: list[Response]) -> bool:
    return any(isinstance(r, ExistsResponse | ExpungeResponse | FetchResponse) for r in responses)


async def wait_for_change(
    client: ImapClient,
    folder: str,
    seconds: float,
    selected: Callable[[ImapSession], None] | None = None,
) -> bool:
    """IDLE in ``folder`` for at most ``seconds``; True when the server reported a change
    (new, deleted or re-flagged mail). The folder is selected first (again after a
    reconnect); ``selected`` is called with the session once the folder is selected, before
    IDLE, so the caller can tell a new session (and the changes it may have missed)."""

    async def idle(session: ImapSession) -> list[Response]:
        if selected is not None:
            selected(session)
        wait = seconds
        if session.refresh_at is not None:
            wait = min(wait, max(_MIN_WAIT, session.refresh_at - time.time()))
        return await session.idle(wait)

    return _changed(await client.in_folder(folder, idle))
