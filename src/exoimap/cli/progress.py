"""Sync progress on the terminal: rich bars when stdout is a terminal, plain lines otherwise.

Bars: one per folder that has something to fetch and one total per account, each with
messages, bytes, rate and ETA; throttling waits are counted on the total bar and printed.
Plain mode (CI, pipes, the demo's subprocess) prints a line per folder when it finishes
fetching and at most one progress line per second.

Folder names come from the server: they are shown through
:func:`exoimap.untrusted.shown` (no terminal control sequence gets through) and rich
renders every text here with markup off (a folder named ``[/bold]x`` is shown as it is).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from exoimap.untrusted import shown
from exoimap.words import byte_size, plural

if TYPE_CHECKING:  # rich is imported only when bars are shown (a terminal)
    from types import TracebackType

    from rich.console import Console
    from rich.progress import Progress, TaskID

    from exoimap.net.session import NetEvent
    from exoimap.sync.report import Progress as SyncProgress

__all__ = ["SyncDisplay", "WaitClock"]


class WaitClock:
    """The wall time one account spent waiting for throttling. Several connections may be
    told to wait at once; overlapping waits count once, so the total never exceeds the run."""

    def __init__(self) -> None:
        self.count = 0
        self._spans: list[tuple[float, float]] = []

    def add(self, start: float, seconds: float) -> None:
        self.count += 1
        self._spans.append((start, start + max(seconds, 0.0)))

    def waited(self, now: float | None = None) -> float:
        """Seconds covered by at least one wait (up to ``now``, when given)."""
        total = 0.0
        reached = float("-inf")
        for start, end in sorted(self._spans):
            if now is not None:
                end = min(end, now)
            start = max(start, reached)
            if end > start:
                total += end - start
                reached = end
        return total


class SyncDisplay:
    """Receives the engine's progress and the net layer's events for several accounts."""

    def __init__(
        self,
        *,
        rich: bool | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet: bool = False,
    ) -> None:
        #: Count (throttling, for the summary) but print nothing: stdout is for JSON.
        self._quiet = quiet
        self._rich = (sys.stdout.isatty() if rich is None else rich) and not quiet
        self._clock = clock
        self._started = clock()
        self._last_line = 0.0
        self._throttle_waits: dict[str, WaitClock] = {}
        self._bars: Progress | None = None
        self._folders: dict[tuple[str, str], TaskID] = {}
        self._totals: dict[str, TaskID] = {}
        self._folder_done: dict[tuple[str, str], tuple[int, int]] = {}
        if self._rich:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bars = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[size]}"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[waits]}", markup=False),
                # In an agent, stdout relays to a client's terminal whose width it carries.
                console=console or Console(width=getattr(sys.stdout, "columns", None)),
            )

    def __enter__(self) -> SyncDisplay:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()

    def _rate(self, count: int) -> str:
        elapsed = max(self._clock() - self._started, 1e-3)
        return f"{byte_size(count / elapsed)}/s"

    def progress(self, account: str, update: SyncProgress) -> None:
        key = (account, update.folder)
        before = self._folder_done.get(key)
        self._folder_done[key] = (update.folder_done, update.folder_planned)
        if self._quiet:
            return
        if self._bars is None:
            self._plain(account, update, before)
            return
        bars = self._bars
        waits = self._waits_text(account)
        total = self._totals.get(account)
        if total is None:
            total = self._totals[account] = bars.add_task(
                f"{shown(account)} (total)", total=None, size="", rate="", waits=""
            )
        bars.update(
            total,
            completed=update.total_done,
            total=max(update.total_planned, update.total_done),
            size=byte_size(update.total_bytes),
            rate=self._rate(update.total_bytes),
            waits=waits,
        )
        task = self._folders.get(key)
        if task is None:
            task = self._folders[key] = bars.add_task(
                f"  {shown(update.folder)}", total=update.folder_planned, size="", rate="", waits=""
            )
        bars.update(
            task,
            completed=update.folder_done,
            total=update.folder_planned,
            size=byte_size(update.folder_bytes),
            rate="",
        )

    def _plain(self, account: str, update: SyncProgress, before: tuple[int, int] | None) -> None:
        now = self._clock()
        finished = (
            update.folder_plan_final
            and update.folder_done >= update.folder_planned
            and (before is None or before[0] < update.folder_planned)
        )
        if finished:
            print(
                f"  {shown(account)}/{shown(update.folder)}: "
                f"{plural(update.folder_done, 'message')}, {byte_size(update.folder_bytes)}",
                flush=True,
            )
        elif now - self._last_line >= 1.0:
            self._last_line = now
            print(
                f"  {shown(account)}: {update.total_done}/{update.total_planned} messages, "
                f"{byte_size(update.total_bytes)}, {self._rate(update.total_bytes)}",
                flush=True,
            )

    def _waits_text(self, account: str) -> str:
        waits = self._throttle_waits.get(account)
        if waits is None:
            return ""
        return f"throttled {waits.count}x ({waits.waited():.1f} s)"

    def net_event(self, account: str, event: NetEvent) -> None:
        if event.kind != "throttled":
            return
        wait = event.wait or 0.0
        self._throttle_waits.setdefault(account, WaitClock()).add(self._clock(), wait)
        if self._quiet:
            return
        message = f"  {shown(account)}: the server asked us to slow down; waiting {wait:.1f} s."
        if self._bars is not None:
            self._bars.console.print(message, markup=False, highlight=False)
            total = self._totals.get(account)
            if total is not None:
                self._bars.update(total, waits=self._waits_text(account))
        else:
            print(message, flush=True)

    def throttle_summary(self, account: str) -> tuple[int, float]:
        """How many throttling waits the account had, and the wall time they took so far."""
        waits = self._throttle_waits.get(account)
        if waits is None:
            return (0, 0.0)
        return (waits.count, waits.waited(self._clock()))
