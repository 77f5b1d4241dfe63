"""Pacing of the commands a client sends, set by whoever runs the client.

A tenant worker shares one request budget per tenant and per mailbox with every other
worker (in Redis); the IMAP code knows nothing of that. It awaits :func:`pace` before each
command it sends (every one, the sign-in and LOGOUT included, in
:meth:`exoimap.net.session.ImapSession.send_paced`: a pacer's count is what the server was
sent), which does nothing unless the code around it installed a pacer with
:func:`paced_by` (a context variable: each job's event loop, and each task it starts, sees
the pacer of the job that started it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

__all__ = ["Pacer", "pace", "paced_by"]

#: Waits until one more command may be sent (and counts it as sent).
Pacer = Callable[[], Awaitable[None]]

_pacer: ContextVar[Pacer | None] = ContextVar("exoimap_request_pacer", default=None)


@contextlib.contextmanager
def paced_by(pacer: Pacer) -> Iterator[None]:
    """Pace the commands of the clients run within the ``with`` block by ``pacer``."""
    token = _pacer.set(pacer)
    try:
        yield
    finally:
        _pacer.reset(token)


async def pace() -> None:
    """Wait until the installed pacer lets one more command go (at once without one)."""
    pacer = _pacer.get()
    if pacer is not None:
        await pacer()
