"""The watch notices a sleep by its clocks alone: a wall clock that jumps ahead of the
monotonic one ends every wait for a retry or a poll at once and asks for a full sync; an
ordinary tick does neither. (The sandbox test in ``test_watch_sandbox`` shows the archive
catching up; this one shows the waits that would otherwise delay it.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import cast

from exoimap.app.watch import AccountWatch, WatchClock, WatchSettings
from exoimap.config import AccountConfig, Paths
from exoimap.net.account import AccountProvider


def _watch(wall: list[float], tmp_path: Path) -> AccountWatch:
    account = AccountConfig(name="work", email="ann@contoso.com")
    settings = WatchSettings(tick=0.05, sleep_jump=30.0, full_sync_interval=86400.0)
    return AccountWatch(
        account,
        cast(AccountProvider, None),  # nothing here connects
        Paths(config_dir=tmp_path, data_dir=tmp_path),
        settings,
        clock=WatchClock(wall=lambda: time.time() + wall[0]),
    )


def test_a_wake_ends_the_waits_and_asks_for_a_full_sync(tmp_path: Path) -> None:
    async def scenario() -> None:
        wall = [0.0]
        watch = _watch(wall, tmp_path)
        watch._full = False  # the first full sync is done
        clock = asyncio.create_task(watch._clock())
        retry = asyncio.create_task(watch._pause(600.0))  # a backoff after a network loss
        await asyncio.sleep(0.3)  # several ticks: no jump, nothing happens
        assert not retry.done()
        assert watch.health.resumes == 0
        assert watch._full is False
        wall[0] = 7200.0  # two hours asleep
        await asyncio.wait_for(retry, 10)  # the wait ended long before its 600 s
        assert watch.health.resumes == 1
        assert watch._full is True
        await asyncio.sleep(0.3)  # the next ticks see no new jump
        assert watch.health.resumes == 1
        later = asyncio.create_task(watch._pause(0.2))  # waits after the wake are normal
        await asyncio.sleep(0.1)
        assert not later.done()
        await later
        clock.cancel()

    asyncio.run(scenario())
