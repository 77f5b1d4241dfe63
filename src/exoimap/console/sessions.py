"""Server-side sessions: the cookie holds only a random id (256 bits), the person and their
roles stay here. A session ends after ``idle`` seconds without a request, ``absolute``
seconds after sign-in, or at sign-out; a new id is issued at every sign-in (no fixation).

Sign-ins under way (the MSAL flow: state, nonce, PKCE verifier) are kept the same way under
an id of their own, for a few minutes, and can be taken once; a sign-in again for
break-glass carries the :class:`~exoimap.console.break_glass.Ask` it confirms.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exoimap.console.break_glass import Ask, Grant
from exoimap.console.policy import Principal

__all__ = ["Session", "SessionStore"]

#: How long a started sign-in may take at the identity platform.
_SIGN_IN_SECONDS = 600.0


@dataclass
class Session:
    principal: Principal
    created: float
    last_seen: float
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    break_glass: Grant | None = None

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token.encode(), str(given).encode())


class SessionStore:
    """Sessions and pending sign-ins of one console process (thread-safe)."""

    def __init__(
        self, *, idle: float, absolute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle, self.absolute, self._clock = idle, absolute, clock
        self._sessions: dict[str, Session] = {}
        self._pending: dict[str, tuple[float, dict[str, Any]]] = {}
        self._asks: dict[str, Ask] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many sessions are held (live, or ended and not yet forgotten)."""
        with self._lock:
            return len(self._sessions)

    def create(self, principal: Principal) -> str:
        """A new session for ``principal``; returns its id (the cookie value)."""
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            # forget the sessions that ended without a sign-out, so memory stays bounded
            self._sessions = {k: v for k, v in self._sessions.items() if self._live(v, now)}
            self._sessions[session_id] = Session(principal, now, now)
        return session_id

    def _live(self, session: Session, now: float) -> bool:
        return now - session.last_seen <= self.idle and now - session.created <= self.absolute

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (touching it), or None."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if not self._live(session, now):
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def start_sign_in(self, flow: dict[str, Any], ask: Ask | None = None) -> str:
        pending_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._pending = {
                k: v for k, v in self._pending.items() if now - v[0] < _SIGN_IN_SECONDS
            }
            self._asks = {k: v for k, v in self._asks.items() if k in self._pending}
            self._pending[pending_id] = (now, flow)
            if ask is not None:
                self._asks[pending_id] = ask
        return pending_id

    def take_ask(self, pending_id: str | None) -> Ask | None:
        """The break-glass the sign-in ``pending_id`` confirms (once), if any."""
        with self._lock:
            return self._asks.pop(pending_id or "", None)

    def take_sign_in(self, pending_id: str | None) -> dict[str, Any] | None:
        with self._lock:
            entry = self._pending.pop(pending_id or "", None)
        if entry is None or self._clock() - entry[0] >= _SIGN_IN_SECONDS:
            return None
        return entry[1]
