"""What a resident process (``exoimap agent``) keeps between syncs: one event loop, one
signed-in IMAP connection per account, and which archive indexes it left sound.

A cold ``exoimap sync`` opens a connection, signs in and learns the server every time; in
the agent, successive syncs of an account reuse the connection the last one left, for at
most :data:`MAX_IDLE` seconds between syncs and :data:`MAX_AGE` seconds in all. Everything
else (the archive and its lock, the config, the audit log) is opened afresh by every sync,
exactly as in its own process; only the index's integrity check is skipped when the file
is, by its stamp, the one the last sync of this process closed without error.

A :class:`Resident` is passed explicitly (the agent hands it to the command it runs, the
command to :func:`exoimap.app.accounts.sync_accounts`); without one, nothing changes:
:func:`run` is :func:`asyncio.run` and every sync opens and closes its own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from exoimap.config import AccountConfig
from exoimap.net.session import NetEvent
from exoimap.store.archive import IndexStamp
from exoimap.store.remote import RemoteImapStore

__all__ = [
    "MAX_AGE",
    "MAX_IDLE",
    "KeptSources",
    "Resident",
    "resident",
    "run",
]

T = TypeVar("T")

#: How long a connection is kept between syncs: well under the servers' idle timeouts
#: (Exchange and Dovecot both allow 30 minutes).
MAX_IDLE = 600.0
#: How long one signed-in connection is reused at most, however often syncs come, so that a
#: changed password or a withdrawn consent is met by a new sign-in within the hour (OAuth2
#: sessions are also signed in again before their access token expires).
MAX_AGE = 3600.0


class _Events:
    """The event sink a kept store was built with; each sync points it at its own sink."""

    def __init__(self) -> None:
        self.target: Callable[[NetEvent], None] | None = None

    def __call__(self, event: NetEvent) -> None:
        if self.target is not None:
            self.target(event)


@dataclass
class _Lent:
    events: _Events
    opened: float  # when the store signed in


@dataclass
class _Kept:
    account: AccountConfig
    store: RemoteImapStore
    lent: _Lent
    since: float  # when it was parked


class KeptSources:
    """Signed-in stores parked between syncs, at most one per account, one connection each."""

    def __init__(
        self,
        max_idle: float = MAX_IDLE,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = MAX_AGE,
    ) -> None:
        self.max_idle = max_idle
        self.max_age = max_age
        self._clock = clock
        self._parked: dict[str, _Kept] = {}
        self._lent: dict[int, _Lent] = {}  # the stores out now, by identity
        self.reused = 0

    async def take(
        self,
        account: AccountConfig,
        sink: Callable[[NetEvent], None],
        connect: Callable[[Callable[[NetEvent], None]], Coroutine[Any, Any, RemoteImapStore]],
    ) -> RemoteImapStore:
        """The parked store of ``account`` if it is fresh and its config unchanged, else a
        new one from ``connect(events)``; either way its events go to ``sink``."""
        await self.expire()
        kept = self._parked.pop(account.name, None)
        if kept is not None and kept.account != account:
            await kept.store.close()  # the account was edited: its old connection must go
            kept = None
        if kept is not None:
            self.reused += 1
            kept.lent.events.target = sink
            self._lent[id(kept.store)] = kept.lent
            return kept.store
        events = _Events()
        events.target = sink
        store = await connect(events)
        self._lent[id(store)] = _Lent(events, self._clock())
        return store

    async def give_back(
        self, account: AccountConfig, store: RemoteImapStore, *, clean: bool
    ) -> None:
        """Park the store after a sync (keeping one connection), or close it if the sync
        did not end cleanly (its connections may be mid-command)."""
        lent = self._lent.pop(id(store), None) or _Lent(_Events(), self._clock())
        previous = self._parked.pop(account.name, None)
        if previous is not None and previous.store is not store:
            await previous.store.close()
        if not clean or self._clock() - lent.opened >= self.max_age:
            await store.close()
            return
        lent.events.target = None
        await store.trim(keep=1)
        self._parked[account.name] = _Kept(account, store, lent, self._clock())

    async def expire(self) -> None:
        """Close what has been parked longer than :attr:`max_idle`, or signed in longer
        than :attr:`max_age` ago."""
        now = self._clock()
        for name, kept in list(self._parked.items()):
            if now - kept.since >= self.max_idle or now - kept.lent.opened >= self.max_age:
                del self._parked[name]
                await kept.store.close()

    async def discard(self, name: str) -> None:
        """Close the store parked for the account ``name``, if any (after a sleep its
        connection is likely dead)."""
        kept = self._parked.pop(name, None)
        if kept is not None:
            await kept.store.close()

    async def close_all(self) -> None:
        parked, self._parked = self._parked, {}
        for kept in parked.values():
            await kept.store.close()

    @property
    def parked(self) -> int:
        return len(self._parked)


@dataclass
class Resident:
    """What a resident process keeps between syncs: its event loop, parked connections,
    and which archive indexes its last syncs left sound."""

    runner: asyncio.Runner
    sources: KeptSources
    #: Archive root -> the index stamp its last sync left, if that sync ended without error.
    indexes: dict[Path, IndexStamp] = field(default_factory=dict)

    def trusted_index(self, root: Path) -> IndexStamp | None:
        """The index stamp to trust when opening the archive at ``root`` (taken: an open
        that fails or a sync that errs must leave nothing trusted behind)."""
        return self.indexes.pop(root, None)

    def remember_index(self, root: Path, stamp: IndexStamp | None) -> None:
        """After a sync of ``root`` that ended without error: its index may skip the next
        check."""
        if stamp is not None:
            self.indexes[root] = stamp


@contextlib.contextmanager
def resident(max_idle: float = MAX_IDLE) -> Iterator[Resident]:
    """Syncs run through the yielded :class:`Resident` (in the main thread) share one event
    loop and park their connections; leaving the block closes them."""
    with asyncio.Runner() as runner:
        state = Resident(runner, KeptSources(max_idle))
        try:
            yield state
        finally:
            runner.run(state.sources.close_all())


def run(coroutine: Coroutine[Any, Any, T], kept: Resident | None = None) -> T:
    """Run a sync's coroutine: on the resident loop if there is one, else in a new loop."""
    if kept is None:
        return asyncio.run(coroutine)
    # In the caller's context, as asyncio.run would: what this sync set (its auditor) counts.
    return kept.runner.run(coroutine, context=contextvars.copy_context())
