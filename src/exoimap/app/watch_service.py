"""``exoimap watch`` as a service: the watch, its health file, and systemd's notifications.

:func:`serve_watch` runs :func:`exoimap.app.watch.watch_accounts` with a heartbeat that
rewrites the health file and, under systemd, sends ``WATCHDOG=1`` (at half the watchdog
interval); ``READY=1`` goes out as soon as the watch starts (a first sync may take
hours: systemd must not time out waiting), and ``STATUS=``
follows the mailboxes' states. SIGTERM (``systemctl stop``) ends the watch cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from exoimap.app.accounts import AccountResult
from exoimap.app.resident import Resident
from exoimap.app.sd_notify import Notifier
from exoimap.app.watch import MailboxHealth, WatchClock, WatchSettings, watch_accounts
from exoimap.app.watch_health import HealthFile
from exoimap.config import AccountConfig, Paths
from exoimap.net.account import AccountProvider

__all__ = ["WatchService", "serve_watch"]

#: The longest pause between heartbeats (health file, watchdog).
HEARTBEAT = 15.0


@dataclass
class WatchService:
    """What the watch reports to, besides its caller."""

    health_file: HealthFile | None = None
    notifier: Notifier = field(default_factory=Notifier)
    #: Whether the watch is the systemd service itself (``exoimap watch``: it says READY and
    #: STOPPING) or runs inside one that says them (the agent); both feed the watchdog.
    owns_service: bool = True
    on_change: Callable[[MailboxHealth], None] | None = None
    on_sync: Callable[[AccountResult], None] | None = None
    mailboxes: dict[str, MailboxHealth] = field(default_factory=dict)

    def changed(self, health: MailboxHealth) -> None:
        first = not self.mailboxes
        self.mailboxes[health.account] = health
        self._write()
        if self.on_change is not None:
            self.on_change(health)
        states = ", ".join(f"{h.account}: {h.state}" for h in self.mailboxes.values())
        if first and self.owns_service:
            self.notifier.ready(states)
        else:
            self.notifier.status(states)

    def _write(self) -> None:
        if self.health_file is not None:
            self.health_file.write(self.mailboxes.values())

    async def heartbeat(self) -> None:
        interval = HEARTBEAT
        if self.notifier.watchdog_seconds is not None:
            interval = min(interval, self.notifier.watchdog_seconds / 2)
        while True:
            self._write()
            self.notifier.watchdog()
            await asyncio.sleep(interval)


async def serve_watch(
    accounts: Sequence[AccountConfig],
    paths: Paths,
    provider_for: Callable[[AccountConfig], AccountProvider],
    settings: WatchSettings,
    service: WatchService,
    *,
    kept: Resident | None = None,
    clock: WatchClock | None = None,
) -> list[MailboxHealth]:
    """Watch until SIGTERM, cancellation, or every account needing a sign-in."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    beat = asyncio.create_task(service.heartbeat())
    try:
        return await watch_accounts(
            accounts,
            paths,
            provider_for,
            settings,
            kept=kept,
            on_change=service.changed,
            on_sync=service.on_sync,
            clock=clock,
        )
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        if service.owns_service:
            service.notifier.notify(STOPPING="1")
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
