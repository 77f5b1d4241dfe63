"""``exoimap watch`` against the sandbox tenant: real sign-in, real IMAP IDLE over TLS, a
real archive. New mail reaches the archive within seconds; the watch rides out a server
restart and Exchange's idle timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exoimap.app.watch import MailboxHealth, WatchClock, WatchSettings
from exoimap.app.watch_service import WatchService, serve_watch
from exoimap.cli import main
from exoimap.cli.provider import watch_provider
from exoimap.config import Paths, load_config
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message

from ..cli.sync_helpers import isolated_home, signed_in_account

#: Generous: the watch usually takes well under a second; a loaded machine may be slow.
PATIENCE = 60.0
FAST = WatchSettings(
    idle_interval=60.0, poll_interval=1.0, retry_base=0.1, retry_cap=1.0, settle=0.05
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


class Watching:
    """``serve_watch`` on its own thread and loop, as ``exoimap watch`` runs it."""

    def __init__(
        self, names: list[str], settings: WatchSettings, clock: WatchClock | None = None
    ) -> None:
        paths = Paths.from_env()
        config = load_config(paths)
        self.accounts = [a for a in config.accounts.values() if a.name in names]
        self.paths = paths
        self.settings = settings
        self.clock = clock
        self.health: dict[str, MailboxHealth] = {}
        self.service = WatchService(on_change=self._changed)
        self.result: list[MailboxHealth] | None = None
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[list[MailboxHealth]] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def of(self, name: str) -> MailboxHealth:
        """The account's health as last reported (a blank one before the first report)."""
        return self.health.get(name) or MailboxHealth(name)

    def _changed(self, health: MailboxHealth) -> None:
        self.health[health.account] = health

    def _run(self) -> None:
        async def go() -> list[MailboxHealth]:
            return await serve_watch(
                self.accounts,
                self.paths,
                watch_provider,  # as `exoimap watch`: tokens from `token print` children
                self.settings,
                self.service,
                clock=self.clock,
            )

        self._task = self._loop.create_task(go())
        try:
            self.result = self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    def __enter__(self) -> Watching:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive() and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)
        assert not self._thread.is_alive()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def finished(self, timeout: float = PATIENCE) -> list[MailboxHealth]:
        self._thread.join(timeout)
        assert self.result is not None
        return self.result


def eventually(check: Callable[[], bool], what: str, timeout: float = PATIENCE) -> float:
    """Wait until ``check()``; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def archived(home: Path, name: str) -> int:
    """Messages stored in the archive's maildir (files in cur/)."""
    root = Paths.from_env().archive_dir(name)
    return sum(1 for p in (root / "maildir").rglob("*") if p.is_file() and p.parent.name == "cur")


def test_new_mail_in_watched_and_polled_folders_reaches_the_archive(
    sandbox_tenant: SandboxTenant, home: Path
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2, "Sent Items": 1, "Notes": 1})
    exchange = sandbox_tenant.exchange
    with Watching(["work"], FAST) as watching:
        eventually(lambda: archived(home, "work") == 4, "the first sync")
        eventually(
            lambda: sorted(watching.of("work").idle_folders) == ["INBOX", "Sent Items"],
            "IDLE on INBOX and Sent Items",
        )
        exchange.deliver(upn, sample_message(101, 900), folder="INBOX")
        eventually(lambda: archived(home, "work") == 5, "new mail in INBOX (IDLE)")
        exchange.deliver(upn, sample_message(102, 900), folder="Sent Items")
        eventually(lambda: archived(home, "work") == 6, "new mail in Sent Items (IDLE)")
        exchange.deliver(upn, sample_message(103, 900), folder="Notes")
        eventually(lambda: archived(home, "work") == 7, "new mail in Notes (STATUS poll)")
        health = watching.of("work")
        eventually(lambda: health.messages_synced == 7, "the health counting every message")
        assert health.syncs >= 4  # the first, then one per delivery
        assert health.last_sync_ok is True
        assert health.state in ("watching", "syncing")
    assert main(["verify", "work", "--deep"]) == 0


@pytest.fixture
def restartable(sandbox_tenant: SandboxTenant) -> Iterator[ExchangeControl]:
    """A server of the tenant's that this test may restart; it ends idle sessions after
    3 s (Exchange: about 30 minutes)."""
    settings = ExchangeSettings.for_tests(authenticated_timeout=3.0)
    with sandbox_tenant.extra_server(settings) as control:
        yield control


def test_the_watch_reconnects_after_a_server_restart_and_loses_nothing(
    sandbox_tenant: SandboxTenant, restartable: ExchangeControl, home: Path
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3}, exchange=restartable)
    with Watching(["work"], FAST) as watching:
        eventually(lambda: archived(home, "work") == 3, "the first sync")
        eventually(lambda: "INBOX" in watching.of("work").idle_folders, "IDLE on INBOX")
        restartable.restart()
        restartable.deliver(upn, sample_message(201, 700), folder="INBOX")
        eventually(lambda: archived(home, "work") == 4, "mail delivered after the restart")
        restartable.drop_connections()
        restartable.deliver(upn, sample_message(202, 700), folder="INBOX")
        eventually(lambda: archived(home, "work") == 5, "mail delivered after a drop")
        assert watching.of("work").last_error  # the drops were seen and noted
    assert main(["verify", "work", "--deep"]) == 0


def test_idle_is_reissued_before_the_server_ends_it(
    sandbox_tenant: SandboxTenant, restartable: ExchangeControl, home: Path
) -> None:
    """The server ends a session silent for 3 s; IDLE re-issued every second keeps it."""
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1}, exchange=restartable)
    settings = WatchSettings(
        idle_interval=1.0, poll_interval=1.0, retry_base=0.1, retry_cap=1.0, settle=0.05
    )
    with Watching(["work"], settings) as watching:
        eventually(lambda: "INBOX" in watching.of("work").idle_folders, "IDLE on INBOX")
        eventually(lambda: archived(home, "work") == 1, "the first sync")
        time.sleep(8)  # well past the server's 3 s limit
        restartable.deliver(upn, sample_message(301, 700), folder="INBOX")
        eventually(lambda: archived(home, "work") == 2, "new mail after idling")
        assert watching.of("work").last_error == ""  # never dropped, never retried


def test_the_watch_waits_out_throttling_and_loses_nothing(
    sandbox_tenant: SandboxTenant, home: Path
) -> None:
    """The server serves 3 messages per 2 s, then answers `Request is throttled` (and
    closes); the watch waits as asked and every delivery still arrives."""
    throttle = ThrottlePolicy(window_seconds=2.0, max_messages=3, backoff_ms=500, bye=True)
    settings = ExchangeSettings.for_tests(authenticated_timeout=30.0, throttle=throttle)
    with sandbox_tenant.extra_server(settings) as server:
        upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 5}, exchange=server)
        with Watching(["work"], FAST) as watching:
            eventually(lambda: archived(home, "work") == 5, "the first sync, throttled")
            for n in range(4):
                server.deliver(upn, sample_message(400 + n, 600), folder="INBOX")
            eventually(lambda: archived(home, "work") == 9, "four deliveries, throttled")
            health = watching.of("work")
            # the server did throttle, and the syncs waited as it asked
            eventually(lambda: health.messages_synced == 9, "the health counting every message")
            assert health.throttled >= 1
            assert health.throttled_seconds == pytest.approx(0.5 * health.throttled)
        assert main(["verify", "work", "--deep"]) == 0


def test_sessions_are_renewed_before_the_token_expires(
    sandbox_tenant: SandboxTenant, home: Path
) -> None:
    """Tokens that live 45 s (Exchange ends a session when its token expires): every
    connection signs in again with a fresh token before that, so IDLE never breaks."""
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    sandbox_tenant.admin.configure(access_token_lifetime=45)
    # IDLE re-issued within the tenant's 30 s idle limit, cut short for each renewal
    settings = WatchSettings(
        idle_interval=25.0, poll_interval=1.0, retry_base=0.1, retry_cap=1.0, settle=0.05
    )
    try:
        with Watching(["work"], settings) as watching:
            eventually(lambda: archived(home, "work") == 1, "the first sync")
            eventually(lambda: "INBOX" in watching.of("work").idle_folders, "IDLE on INBOX")
            time.sleep(60)  # past the first tokens' expiry
            sandbox_tenant.exchange.deliver(upn, sample_message(501, 700), folder="INBOX")
            eventually(lambda: archived(home, "work") == 2, "new mail after the expiry")
            assert watching.of("work").last_error == ""  # renewed in time, never dropped
        assert main(["verify", "work", "--deep"]) == 0
    finally:
        sandbox_tenant.admin.configure(access_token_lifetime=3599)


class SleepyWall:
    """A wall clock that can jump ahead, as it does when a laptop wakes from a suspend
    (the monotonic clock stands still meanwhile)."""

    def __init__(self) -> None:
        self.slept = 0.0

    def __call__(self) -> float:
        return time.time() + self.slept


def test_after_the_machine_slept_the_watch_reconnects_and_catches_up_at_once(
    sandbox_tenant: SandboxTenant, home: Path
) -> None:
    """Polls an hour apart and no full sync for a day (and a server that keeps silent
    sessions for 30 minutes): only the wake can bring the mail that came to an unwatched
    folder "during the sleep" within the minute."""
    wall = SleepyWall()
    settings = WatchSettings(
        idle_interval=600.0,
        poll_interval=3600.0,
        full_sync_interval=86400.0,
        retry_base=0.1,
        retry_cap=1.0,
        settle=0.05,
        tick=0.2,
    )
    patient = ExchangeSettings.for_tests(authenticated_timeout=1800.0)
    with sandbox_tenant.extra_server(patient) as exchange:
        upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1, "Notes": 1}, exchange=exchange)
        with Watching(["work"], settings, WatchClock(wall=wall)) as watching:
            eventually(lambda: archived(home, "work") == 2, "the first sync")
            eventually(lambda: "INBOX" in watching.of("work").idle_folders, "IDLE on INBOX")
            eventually(lambda: watching.of("work").state == "watching", "watching")
            # "asleep": mail arrives in a polled folder, and two hours pass on the wall clock
            exchange.deliver(upn, sample_message(601, 700), folder="Notes")
            time.sleep(1.0)
            assert archived(home, "work") == 2  # nothing would fetch it for an hour
            wall.slept = 2 * 3600.0
            eventually(lambda: archived(home, "work") == 3, "the mail that came meanwhile")
            health = watching.of("work")
            assert health.resumes == 1
            assert health.last_resume is not None
            assert health.last_resume > time.time() + 3600  # on the jumped wall clock
            # the idlers started afresh, and new mail still comes in by IDLE
            exchange.deliver(upn, sample_message(602, 700), folder="INBOX")
            eventually(lambda: archived(home, "work") == 4, "new mail after the wake (IDLE)")
            assert health.resumes == 1  # one sleep, noticed once
        assert main(["verify", "work", "--deep"]) == 0


@pytest.mark.parametrize(
    "server",
    [
        pytest.param({"refuse_idle": True}, id="IDLE-answered-NO"),
        pytest.param({"idle_advertised": False}, id="no-IDLE-capability"),
    ],
)
def test_without_idle_the_watched_folders_are_polled(
    sandbox_tenant: SandboxTenant, home: Path, server: dict[str, bool]
) -> None:
    """A server that refuses IDLE, or lacks it: INBOX and Sent are synced at the polling
    interval instead (the STATUS poll leaves them to their idlers, so nothing else would)."""
    settings = ExchangeSettings.for_tests(authenticated_timeout=30.0, **server)
    with sandbox_tenant.extra_server(settings) as exchange:
        upn = signed_in_account(
            sandbox_tenant, "work", {"INBOX": 1, "Sent Items": 1}, exchange=exchange
        )
        with Watching(["work"], FAST) as watching:
            eventually(lambda: archived(home, "work") == 2, "the first sync")
            eventually(lambda: watching.of("work").state == "watching", "watching")
            exchange.deliver(upn, sample_message(701, 700), folder="INBOX")
            eventually(lambda: archived(home, "work") == 3, "new mail in INBOX (polled)")
            exchange.deliver(upn, sample_message(702, 700), folder="Sent Items")
            eventually(lambda: archived(home, "work") == 4, "new mail in Sent Items (polled)")
            health = watching.of("work")
            assert health.idle_folders == []  # neither is watched with IDLE
            assert health.state == "watching" or health.state == "syncing"
            assert health.last_error == ""  # a refused IDLE is no connection trouble
        assert main(["verify", "work", "--deep"]) == 0
