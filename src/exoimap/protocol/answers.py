"""What a server's status answers mean beyond OK/NO/BAD: Exchange's throttling answer and
the ends of a session (the texts are in /work/shared/spec/exchange-online.md, 1.4 and 1.10).

This is the one place that reads these texts; the client layer (``exoimap.net``) decides
only what to do about them (wait, reconnect, retry).

* Throttling: a NO or BAD (tagged or untagged) saying ``Request is throttled. Suggested
  Backoff Time: <ms> milliseconds``, sometimes followed by ``* BYE Connection closed. 14``.
* Session invalidation: ``* BYE Session invalidated - <reason>`` (``AccessTokenExpired``
  when the OAuth token expired during the session; a reconnect with a fresh token helps).
* Any other BYE: the server is closing the connection.

>>> from exoimap.protocol.types import Status, StatusResponse
>>> error_for(StatusResponse("A7", Status.NO, None,
...     "Request is throttled. Suggested Backoff Time: 299785 milliseconds")).backoff
299.785
>>> error_for(StatusResponse(None, Status.BYE, None, "Session invalidated - AccessTokenExpired"))
SessionInvalidated('the server invalidated the session: AccessTokenExpired')
"""

from __future__ import annotations

import re

from exoimap.errors import ConnectionLost, ExoimapError, SessionInvalidated, Throttled
from exoimap.protocol.types import Status, StatusResponse
from exoimap.untrusted import shown

__all__ = ["connection_lost_for", "error_for", "session_invalidated_reason", "throttle_backoff"]

_THROTTLED = re.compile(
    r"Request is throttled\.\s*Suggested Backoff Time:\s*(\d{1,12})\s*milliseconds",
    re.IGNORECASE,
)
_INVALIDATED = re.compile(r"\s*Session invalidated\s*-(.*)", re.IGNORECASE | re.DOTALL)


def throttle_backoff(response: StatusResponse) -> float | None:
    """Seconds to wait when ``response`` is Exchange's throttling answer (a NO or BAD);
    None for any other response."""
    if response.status is not Status.NO and response.status is not Status.BAD:
        return None
    m = _THROTTLED.search(response.text)
    return None if m is None else int(m.group(1)) / 1000.0


def session_invalidated_reason(response: StatusResponse) -> str | None:
    """The reason of ``* BYE Session invalidated - <reason>`` (``unknown`` when the server
    gave none); None for any other response."""
    if response.status is not Status.BYE:
        return None
    m = _INVALIDATED.fullmatch(response.text)
    if m is None:
        return None
    return m.group(1).strip() or "unknown"


def connection_lost_for(bye: StatusResponse) -> ConnectionLost:
    """The exception a BYE stands for: :class:`~exoimap.errors.SessionInvalidated` with its
    reason, or :class:`~exoimap.errors.ConnectionLost` quoting the server."""
    reason = session_invalidated_reason(bye)
    if reason is not None:
        return SessionInvalidated(shown(reason))
    return ConnectionLost(f"the server closed the session: {shown(bye.text[:200])}")


def error_for(response: StatusResponse) -> ExoimapError | None:
    """The exception a response stands for, if any: :class:`~exoimap.errors.Throttled`
    (the backoff in seconds) for the throttling answer, :func:`connection_lost_for` for a
    BYE; None otherwise."""
    backoff = throttle_backoff(response)
    if backoff is not None:
        return Throttled(backoff)
    if response.status is Status.BYE:
        return connection_lost_for(response)
    return None
