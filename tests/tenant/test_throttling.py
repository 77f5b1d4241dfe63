"""The request budget and shared backoff with real worker processes against a sandbox
Exchange that throttles the application across all its connections and counts every
command it sent."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
import redis

from exoimap.sandbox.exchange.config import ThrottlePolicy
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.tenant.budget import requests_sent
from tests.tenant.helpers import Setup, archived, delivered, make_mailboxes
from tests.tenant.workers import all_runs, wait_until_ok, worker_pool

pytestmark = [pytest.mark.xdist_group("tenant"), pytest.mark.slow]

WINDOW = 2.0


def _throttling_server(
    setup: Setup, per_window: int, backoff_ms: int
) -> contextlib.AbstractContextManager[ExchangeControl]:
    """Another sandbox IMAP server over the same mailboxes that throttles the app past
    ``per_window`` commands in ``WINDOW`` seconds, suggesting ``backoff_ms``."""
    settings = dataclasses.replace(
        setup.sandbox.server.settings,
        port=0,
        throttle=ThrottlePolicy(
            window_seconds=WINDOW, max_app_requests=per_window, backoff_ms=backoff_ms
        ),
    )
    return setup.sandbox.extra_server(settings, share_mailboxes=True)


def _all_archived(setup: Setup, upns: list[str]) -> None:
    for i, upn in enumerate(upns):
        root: Path = setup.archives / upn.lower()
        assert sorted(archived(root)) == sorted(delivered(setup.app, i))


def _back_up_with_two_workers(setup: Setup, upns: list[str]) -> None:
    with worker_pool(setup.database, setup.redis_url, setup.logs) as workers:
        workers.start(concurrency=2)
        workers.start(concurrency=2)
        setup.backup()
        wait_until_ok(setup.database, upns)


def test_workers_together_stay_within_the_tenants_request_budget(setup: Setup) -> None:
    # the budget leaves the server's limit room: a command counted by Redis when it leaves
    # reaches the server's count later, and on a busy machine (the suite under load) the
    # grants of one window can arrive together with the next window's: at most twice the
    # budget in one server window while no command waits a whole window to be sent
    budget, server_limit = 40, 80
    upns = make_mailboxes(setup.sandbox, setup.app, 4)
    with _throttling_server(setup, server_limit, backoff_ms=3000) as server:
        setup.add_and_discover(
            "--imap-port", str(server.port),
            "--tenant-requests", str(budget),
            "--budget-window", str(WINDOW),
        )  # fmt: skip
        _back_up_with_two_workers(setup, upns)
        sent, busiest, throttled = server.app_requests(setup.app.client_id, WINDOW)
    print(f"{sent} commands, at most {busiest} in {WINDOW} s")
    assert throttled == 0
    assert requests_sent(redis.Redis.from_url(setup.redis_url), "acme") == sent
    assert busiest <= server_limit
    assert sent > 2 * budget  # the run needed several windows: the budget held it back
    # every job's first wait is logged (a short one at debug level): the budget held back
    assert "for the tenant's request budget" in setup.log()
    assert {r.outcome for r in all_runs(setup.database)} == {"ok"}
    _all_archived(setup, upns)


def test_a_throttling_answer_to_one_worker_holds_back_all_and_the_run_completes(
    setup: Setup,
) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 4)
    # a backoff longer than the server's window, as Exchange's minutes are: when everyone
    # resumes the server has forgotten the burst that tripped it
    with _throttling_server(setup, 40, backoff_ms=2500) as server:
        setup.add_and_discover("--imap-port", str(server.port))
        _back_up_with_two_workers(setup, upns)
        _sent, _busiest, throttled = server.app_requests(setup.app.client_id, WINDOW)
    assert throttled >= 1
    log = setup.log()
    assert "throttled (seen on" in log
    assert "every worker holds back 2.5 s" in log
    assert {r.outcome for r in all_runs(setup.database)} == {"ok"}
    _all_archived(setup, upns)


def test_the_tenants_request_count_is_what_the_sandbox_was_sent(setup: Setup) -> None:
    # every command of every job is counted where it is sent: the sign-in, SELECTs, LISTs,
    # STATUSes, each FETCH batch and LOGOUT alike; the sandbox counts an app-only
    # connection's every command too
    upns = make_mailboxes(setup.sandbox, setup.app, 3)
    setup.add_and_discover()
    _back_up_with_two_workers(setup, upns)
    sent, _busiest, throttled = setup.sandbox.exchange.app_requests(setup.app.client_id, WINDOW)
    counted = requests_sent(redis.Redis.from_url(setup.redis_url), "acme")
    print(f"the sandbox was sent {sent} commands, the budget counted {counted}")
    assert throttled == 0
    assert sent > 3 * 4  # the runs really went through the sandbox (4 messages each)
    assert counted == sent
    _all_archived(setup, upns)
