"""Keep archives current: ``exoimap watch``.

For each account, three kinds of task share one :class:`AccountWatch`:

- an *idler* per watched folder (INBOX and the ``\\Sent`` folder): its own connection,
  IDLE re-issued every :attr:`WatchSettings.idle_interval` seconds (Exchange ends an IDLE
  after about 30 minutes; the exact limit is [U]) and before the token is due for renewal;
  a change, or a reconnect (changes may have been missed), marks the folder dirty;
- a *poller*: one connection, the folder list and STATUS of the other folders every
  :attr:`WatchSettings.poll_interval` seconds; a folder whose counters moved is dirty;
- the *syncer*: the only task that syncs the account, so two syncs of one archive never
  run at once here (and the archive's own lock keeps out other processes). It syncs the
  dirty folders with the ordinary engine (:func:`exoimap.app.accounts.sync_account`), and
  every folder at the start, every :attr:`WatchSettings.full_sync_interval` seconds (flag
  changes in unwatched folders show in no counter) and after the machine slept.

Every task survives network loss and server restarts: it waits with exponential backoff and
jitter and goes on. A folder whose server lacks IDLE, or answers it with NO, is synced at the
polling interval instead (IDLE is tried again each time). When the wall clock jumps ahead of
the monotonic one (the machine slept: :class:`WatchClock` is the seam tests move), every
connection is suspect: the idlers start afresh, the poller reconnects, a parked sync
connection is closed, waits for a retry end, and every folder is synced at once.

A sign-in that needs the user (expired or revoked consent) ends the
account's watch with the state ``signin_needed``. :class:`MailboxHealth` says what each
account is doing; the front end writes it to the health file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exoimap import audit
from exoimap.app.accounts import AccountResult, SyncOptions, sync_account
from exoimap.app.heap import release_freed_memory
from exoimap.app.resident import Resident
from exoimap.config import AccountConfig, Paths
from exoimap.errors import AuthError, ExoimapError, Throttled
from exoimap.logs import redact
from exoimap.net.account import AccountProvider, connection_for
from exoimap.net.idle import supports_idle, wait_for_change
from exoimap.net.imap import ImapClient, RetryPolicy
from exoimap.net.recovery import Backoff
from exoimap.net.session import IdleRefused, ImapSession, NetEvent
from exoimap.store.base import SpecialUse, is_inbox
from exoimap.store.remote import RemoteImapStore
from exoimap.untrusted import shown

__all__ = [
    "AccountWatch",
    "MailboxHealth",
    "WatchClock",
    "WatchSettings",
    "exact_folder_pattern",
    "watch_accounts",
]

log = logging.getLogger(__name__)

#: The backoff's exponent stops growing here (the cap is reached long before).
_MAX_BACKOFF_STEPS = 30


@dataclass(frozen=True)
class WatchSettings:
    """How often to look and how patiently to retry."""

    #: Seconds one IDLE lasts before it is re-issued: under Exchange's limit (about 30
    #: minutes, [U]) and RFC 2177's 29.
    idle_interval: float = 25 * 60.0
    #: Seconds between STATUS polls of the folders not watched with IDLE.
    poll_interval: float = 300.0
    #: Seconds between syncs of every folder.
    full_sync_interval: float = 3600.0
    #: Backoff after a failure: the first wait is up to ``retry_base``, doubling to
    #: ``retry_cap``, with full jitter.
    retry_base: float = 1.0
    retry_cap: float = 300.0
    #: Changes arriving this close together are synced together.
    settle: float = 0.2
    #: How often the clocks are compared to notice that the machine slept.
    tick: float = 15.0
    #: Wall-clock time passing this much faster than the monotonic clock means a sleep.
    sleep_jump: float = 30.0


@dataclass(frozen=True)
class WatchClock:
    """Where the watch reads the time (a test moves the wall clock to fake a sleep)."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class MailboxHealth:
    """What one account's watch is doing (the health file holds one per account)."""

    account: str
    #: ``starting``, ``syncing``, ``watching``, ``reconnecting`` or ``signin_needed``.
    state: str = "starting"
    idle_folders: list[str] = field(default_factory=list)
    syncs: int = 0
    messages_synced: int = 0
    #: Epoch seconds of the last sync that ended, and whether it was clean.
    last_sync: float | None = None
    last_sync_ok: bool | None = None
    last_error: str = ""
    last_error_at: float | None = None
    #: Throttling answers met by the syncs, and the seconds waited for them.
    throttled: int = 0
    throttled_seconds: float = 0.0
    #: Times the machine was found to have slept, and the epoch seconds of the last wake.
    resumes: int = 0
    last_resume: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "state": self.state,
            "idle_folders": list(self.idle_folders),
            "syncs": self.syncs,
            "messages_synced": self.messages_synced,
            "last_sync": self.last_sync,
            "last_sync_ok": self.last_sync_ok,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "throttled": self.throttled,
            "throttled_seconds": round(self.throttled_seconds, 3),
            "resumes": self.resumes,
            "last_resume": self.last_resume,
        }


def exact_folder_pattern(name: str) -> str:
    """A glob (for :class:`SyncOptions`) that matches exactly the folder ``name``."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)


def _watched(folder_role: SpecialUse | None, name: str) -> bool:
    return is_inbox(name) or folder_role is SpecialUse.SENT


class _SignInNeeded(Exception):
    pass


class AccountWatch:
    """One account's idlers, poller and syncer (see the module docstring)."""

    def __init__(
        self,
        account: AccountConfig,
        provider: AccountProvider,
        paths: Paths,
        settings: WatchSettings,
        *,
        kept: Resident | None = None,
        on_change: Callable[[MailboxHealth], None] | None = None,
        on_sync: Callable[[AccountResult], None] | None = None,
        clock: WatchClock | None = None,
    ) -> None:
        self.account = account
        self.provider = provider
        self.paths = paths
        self.settings = settings
        self.kept = kept
        self.health = MailboxHealth(account.name)
        self._on_change = on_change
        self._on_sync = on_sync
        self._dirty: set[str] = set()
        self._full = True
        self._wake = asyncio.Event()
        self._wake.set()
        self.clock = clock or WatchClock()
        self._last_full = self.clock.monotonic()
        self._idlers: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[str, tuple[int, int, int, int | None]] = {}
        self._stop = asyncio.Event()
        self._polled = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Counts the wakes from sleep: a connection opened before the last one is suspect.
        self._generation = 0
        #: Set (and replaced) at a wake, ending every wait for a retry or the next poll.
        self._woken = asyncio.Event()

    # --- state ---------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if self.health.state not in ("signin_needed", state):
            self._enter(state)

    def _enter(self, state: str) -> None:
        self.health.state = state
        error = "" if state in ("syncing", "watching") else self.health.last_error
        audit.emit(audit.WatchStateChanged(account=self.account.name, state=state, error=error))
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.health)

    def _note_error(self, what: str, exc: BaseException | str) -> None:
        self.health.last_error = redact(f"{what}: {exc}")
        self.health.last_error_at = time.time()
        log.warning("%s: %s", self.account.name, self.health.last_error)
        self._changed()

    def mark(self, folder: str | None = None) -> None:
        """Ask for a sync of ``folder`` (None: of every folder)."""
        if folder is None:
            self._full = True
        else:
            self._dirty.add(folder)
        self._wake.set()

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until cancelled, or until the sign-in needs the user."""
        self._tasks = [
            asyncio.create_task(self._forever("sync", self._sync_step)),
            asyncio.create_task(self._poll()),
            asyncio.create_task(self._clock()),
        ]
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait([stopped, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in self._tasks:
                error = task.exception() if task.done() and not task.cancelled() else None
                if error is not None:
                    raise error  # a bug in a task: stop rather than watch half blind
        finally:
            stopped.cancel()
            tasks = self._tasks + list(self._idlers.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the machine wakes from a sleep meanwhile."""
        woken = self._woken
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), seconds)

    def _backoff(self) -> Backoff:
        s = self.settings
        return Backoff(base=s.retry_base, cap=s.retry_cap, max_attempts=_MAX_BACKOFF_STEPS + 1)

    async def _forever(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` again and again; after a failure wait (backoff with jitter, or what
        throttling asks) and go on. A sign-in that needs the user stops the watch."""
        backoff = self._backoff()
        while True:
            try:
                await step()
                backoff.reset()
                continue
            except Throttled as exc:
                self._note_error(what, exc)
                delay: float | None = exc.backoff
            except AuthError as exc:
                if not exc.retryable:
                    self._give_up(exc)
                    return
                self._note_error(what, exc)
                delay = backoff.next_delay()
            except (ExoimapError, OSError) as exc:
                self._note_error(what, exc)
                self._set_state("reconnecting")
                delay = backoff.next_delay()
            backoff.attempts = min(backoff.attempts, _MAX_BACKOFF_STEPS)
            await self._pause(delay if delay is not None else self.settings.retry_cap)

    def _give_up(self, exc: AuthError) -> None:
        self._note_error("sign-in", exc)
        self._enter("signin_needed")
        self._stop.set()

    # --- syncing -------------------------------------------------------------------------

    async def _sync_step(self) -> None:
        # the first sync waits for the first poll, whose counters are the baseline: a
        # change after them is seen by the next poll, one before them by this sync
        await self._polled.wait()
        await self._wake.wait()
        await asyncio.sleep(self.settings.settle)
        self._wake.clear()
        full, folders = self._full, self._dirty
        self._full, self._dirty = False, set()
        options = SyncOptions(
            folders=() if full else tuple(sorted(exact_folder_pattern(f) for f in folders))
        )
        self._set_state("syncing")
        try:
            result = await sync_account(
                self.account,
                self.provider,
                self.paths,
                options,
                kept=self.kept,
                on_net_event=self._net_event,
            )
        except BaseException:
            self._requeue(full, folders)
            raise
        self._after_sync(result, full)
        release_freed_memory()  # a watch must not stay as big as its biggest sync
        if result.error is not None:
            self._requeue(full, folders)
            raise result.error
        self._set_state("watching")

    def _net_event(self, _account: str, event: NetEvent) -> None:
        if event.kind == "throttled":
            self.health.throttled += 1
            self.health.throttled_seconds += event.wait or 0.0

    def _requeue(self, full: bool, folders: set[str]) -> None:
        self._full = self._full or full
        self._dirty |= folders
        self._wake.set()

    def _after_sync(self, result: AccountResult, full: bool) -> None:
        health = self.health
        health.syncs += 1
        health.last_sync = time.time()
        health.last_sync_ok = result.ok
        if result.report is not None:
            health.messages_synced += sum(f.fetched for f in result.report.folders)
        if full and result.ok:
            self._last_full = self.clock.monotonic()
        if result.error is None and not result.ok:
            self._note_error("sync", "; ".join(result.failures()))
        self._changed()
        if self._on_sync is not None:
            self._on_sync(result)

    # --- looking for changes -------------------------------------------------------------

    async def _connect_store(self) -> RemoteImapStore:
        endpoint, credentials = connection_for(self.provider, ca_file=self.account.ca_file)
        return await RemoteImapStore.connect(
            endpoint, credentials, max_connections=1, account=self.account.name
        )

    async def _poll(self) -> None:
        store: RemoteImapStore | None = None
        generation = self._generation

        async def step() -> None:
            nonlocal store, generation
            if store is not None and generation != self._generation:
                await store.close()  # opened before the machine slept: likely dead
                store = None
            if store is None:
                generation = self._generation
                store = await self._connect_store()
            try:
                await self._poll_once(store)
            except BaseException:
                await store.close()
                store = None
                raise
            finally:
                self._polled.set()  # failed or not: the syncer must not wait for ever
            await self._pause(self.settings.poll_interval)

        try:
            await self._forever("poll", step)
        finally:
            if store is not None:
                await store.close()

    async def _poll_once(self, store: RemoteImapStore) -> None:
        folders = [f for f in await store.list_folders() if f.selectable]
        for folder in folders:
            if _watched(folder.role, folder.name) and folder.name not in self._idlers:
                self._start_idler(folder.name)
        names = [f.name for f in folders if f.name not in self._idlers]
        states = await store.folder_states(names)
        for name, state in states.items():
            key = (state.uidvalidity, state.uidnext, state.exists, state.highest_modseq)
            if name in self._seen and self._seen[name] != key:
                self.mark(name)
            self._seen[name] = key
        if self.health.state == "reconnecting":
            self._set_state("watching")

    def _start_idler(self, folder: str) -> None:
        self._idlers[folder] = asyncio.create_task(self._idle(folder))
        self._idling(folder, True)

    def _idling(self, folder: str, idle: bool) -> bool:
        """Record whether ``folder`` is watched with IDLE (or polled); True if that changed."""
        listed = self.health.idle_folders
        if idle == (folder in listed):
            return False
        if idle:
            listed.append(folder)
        else:
            listed.remove(folder)
        self._changed()
        return True

    async def _idle(self, folder: str) -> None:
        endpoint, credentials = connection_for(self.provider, ca_file=self.account.ca_file)
        # no retries inside the client: this task's own backoff, reset by every good IDLE
        client = ImapClient(
            endpoint, credentials, account=self.account.name, retry=RetryPolicy(max_attempts=0)
        )
        idled_on: str | None = None

        def selected(session: ImapSession) -> None:
            # a new session (the first too: a sync may have listed the folder before this
            # SELECT): what changed while nothing watched is unknown, so sync it
            nonlocal idled_on
            if session.connection_id != idled_on:
                self.mark(folder)
            idled_on = session.connection_id

        async def step() -> None:
            await client.session()
            if not supports_idle(client):
                # no IDLE (Exchange Online has it): sync the folder at the polling interval
                self._idling(folder, False)
                await self._pause(self.settings.poll_interval)
                self.mark(folder)
                return
            try:
                changed = await wait_for_change(
                    client, folder, self.settings.idle_interval, selected
                )
            except IdleRefused as exc:
                if self._idling(folder, False):
                    log.warning(
                        "%s: %s in %s; syncing it every %g s instead",
                        self.account.name,
                        exc,
                        shown(folder),
                        self.settings.poll_interval,
                    )
                await self._pause(self.settings.poll_interval)
                self.mark(folder)  # then IDLE is tried again
                return
            self._idling(folder, True)
            if changed:
                self.mark(folder)

        try:
            await self._forever(f"IDLE {folder}", step)
        finally:
            await client.close()

    async def _clock(self) -> None:
        """Full syncs on schedule, and at once after the machine slept (the wall clock
        jumped ahead of the monotonic one, which stands still during a suspend)."""
        clock = self.clock
        wall, mono = clock.wall(), clock.monotonic()
        while True:
            await asyncio.sleep(self.settings.tick)
            now_wall, now_mono = clock.wall(), clock.monotonic()
            jump = (now_wall - wall) - (now_mono - mono)
            wall, mono = now_wall, now_mono
            if jump > self.settings.sleep_jump:
                await self._woke(jump)
            elif mono - self._last_full >= self.settings.full_sync_interval:
                self._last_full = mono
                self.mark()

    async def _woke(self, slept: float) -> None:
        """After a sleep every connection is suspect: start them afresh and sync everything."""
        log.info("%s: the machine slept %.0f s; reconnecting", self.account.name, slept)
        self.health.resumes += 1
        self.health.last_resume = self.clock.wall()
        self._generation += 1
        for folder, task in list(self._idlers.items()):
            task.cancel()
            self._idlers[folder] = asyncio.create_task(self._idle(folder))
        if self.kept is not None:
            await self.kept.sources.discard(self.account.name)
        woken, self._woken = self._woken, asyncio.Event()
        woken.set()
        self.mark()
        self._changed()


async def watch_accounts(
    accounts: Sequence[AccountConfig],
    paths: Paths,
    provider_for: Callable[[AccountConfig], AccountProvider],
    settings: WatchSettings | None = None,
    *,
    kept: Resident | None = None,
    on_change: Callable[[MailboxHealth], None] | None = None,
    on_sync: Callable[[AccountResult], None] | None = None,
    clock: WatchClock | None = None,
) -> list[MailboxHealth]:
    """Watch every account until cancelled, or until each one's sign-in needs the user;
    returns their health (the state says why each ended)."""
    settings = settings or WatchSettings()
    watches = [
        AccountWatch(
            account,
            provider_for(account),
            paths,
            settings,
            kept=kept,
            on_change=on_change,
            on_sync=on_sync,
            clock=clock,
        )
        for account in accounts
    ]
    for watch in watches:
        if on_change is not None:
            on_change(watch.health)
    tasks = [asyncio.create_task(w.run()) for w in watches]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
    return [w.health for w in watches]
