"""The request budget shared through the real Redis: a tenant's and a mailbox's limits over a
sliding window, both spent or neither, and a backoff heard by one mailbox holding back the
others (as two workers would see it: each its own client and RequestBudget)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from exoimap.net.pacing import pace, paced_by
from exoimap.net.session import NetEvent
from exoimap.tenant.budget import (
    ARRIVAL_GUARD,
    Budget,
    RequestBudget,
    budget_key,
    pause_key,
)

pytestmark = pytest.mark.xdist_group("tenant")


def _budget(redis_url: str, upn: str, budget: Budget) -> RequestBudget:
    return RequestBudget(redis.Redis.from_url(redis_url), "acme", upn, budget)


def test_a_tenants_budget_is_shared_by_its_mailboxes_and_frees_up_after_the_window(
    redis_url: str,
) -> None:
    budget = Budget(tenant_requests=5, window_seconds=3.0)
    first, second = _budget(redis_url, "a@x.test", budget), _budget(redis_url, "b@x.test", budget)
    assert [first.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [second.try_take() for _ in range(2)] == [0.0, 0.0]
    wait = second.try_take()
    assert 0 < wait <= 3.0 + 0.3  # the window and its arrival guard (a tenth of it)
    assert first.try_take() > 0  # the same budget for every mailbox of the tenant
    assert redis.Redis.from_url(redis_url).zcard(budget_key("acme")) == 5  # refusals not kept
    time.sleep(wait + 0.05)
    assert first.try_take() == 0.0


def test_a_request_counts_for_a_guard_longer_than_the_window(redis_url: str) -> None:
    """Requests reach the server a little after the budget counted them: each one is kept
    ARRIVAL_GUARD (at most a tenth of the window) longer, so that a window of the server's,
    counted on arrival, never holds more than the limit."""
    budget = Budget(tenant_requests=2, window_seconds=30.0)
    mailbox = _budget(redis_url, "a@x.test", budget)
    assert [mailbox.try_take(), mailbox.try_take()] == [0.0, 0.0]
    assert 30.0 < mailbox.try_take() <= 30.0 + ARRIVAL_GUARD


def test_a_mailbox_over_its_own_budget_does_not_spend_the_tenants(redis_url: str) -> None:
    budget = Budget(tenant_requests=10, mailbox_requests=2, window_seconds=30.0)
    busy, other = _budget(redis_url, "a@x.test", budget), _budget(redis_url, "b@x.test", budget)
    assert [busy.try_take() for _ in range(2)] == [0.0, 0.0]
    for _ in range(5):
        assert busy.try_take() > 0
    client = redis.Redis.from_url(redis_url)
    assert client.zcard(budget_key("acme")) == 2
    assert client.zcard(budget_key("acme", "a@x.test")) == 2
    assert [other.try_take() for _ in range(2)] == [0.0, 0.0]


def test_a_backoff_heard_by_one_mailbox_holds_back_every_other(redis_url: str) -> None:
    heard_it = _budget(redis_url, "a@x.test", Budget())
    other = _budget(redis_url, "b@x.test", Budget())
    assert other.try_take() == 0.0
    heard_it.heard("tenant-acme", NetEvent("throttled", "imap.test", 993, wait=2.0))
    assert 1.5 < other.try_take() <= 2.0
    # a shorter suggestion later does not cut the pause short
    heard_it.pause(0.2)
    assert other.try_take() > 1.0
    assert redis.Redis.from_url(redis_url).exists(pause_key("acme"))

    async def one_request() -> float:
        started = time.monotonic()
        with paced_by(other):
            await pace()
        return time.monotonic() - started

    assert asyncio.run(one_request()) >= 1.0  # the request waited the pause out
    assert other.waited >= 1.0
    assert other.try_take() == 0.0


def test_without_a_pacer_a_request_goes_at_once() -> None:
    async def one_request() -> float:
        started = time.monotonic()
        await pace()
        return time.monotonic() - started

    assert asyncio.run(one_request()) < 1.0
