"""The pure rules of the connection layer: backoff, throttling and BYE texts, refresh time,
sign-in failure explanations."""

from __future__ import annotations

import random

import pytest

from exoimap.errors import ServerUnreachable
from exoimap.net.explain import (
    AUTHENTICATE_FAILED_CAUSES,
    NOT_CONNECTED_CAUSES,
    explain_auth_failure,
)
from exoimap.net.recovery import Backoff, Reachability, refresh_deadline


def test_backoff_grows_exponentially_with_jitter_and_stops() -> None:
    backoff = Backoff(base=1.0, cap=8.0, floor=0.0, max_attempts=6, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays[-1] is None  # attempts exhausted
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays[:6], ceilings, strict=True):
        assert delay is not None
        assert 0 <= delay <= ceiling
    assert len({round(d or 0, 6) for d in delays[:6]}) == 6  # jittered, not fixed steps
    backoff.reset()
    assert backoff.next_delay() is not None


def test_reachability_gives_up_once_connecting_failed_for_the_deadline() -> None:
    now = [100.0]
    reach = Reachability(
        "imap.example", give_up_after=60, clock=lambda: now[0], wall_clock=lambda: 0
    )
    assert reach.remaining() is None  # nothing failed yet
    assert reach.connect_failed(OSError("refused")) is True  # the clock starts
    now[0] += 40
    assert reach.connect_failed(OSError("refused again")) is False
    assert reach.remaining() == 20
    reach.check()
    reach.connected()  # one successful connect: reachable again, the clock stops
    now[0] += 100
    reach.check()
    assert reach.remaining() is None
    reach.connect_failed(OSError("refused"))
    now[0] += 61
    with pytest.raises(ServerUnreachable) as info:
        reach.check()
    assert str(info.value).startswith(
        "cannot reach imap.example since 1970-01-01 00:00:00 UTC (gave up after 61 s"
    )
    assert "last error: refused" in str(info.value)
    reach.reset()  # a new run starts with a full deadline
    reach.check()


@pytest.mark.parametrize(
    ("expires", "opened", "margin", "due"),
    [
        (10_000.0, 0.0, 300.0, 9_700.0),  # usual: margin before expiry
        (400.0, 0.0, 300.0, 200.0),  # short token: half its life, never a reconnect loop
        (10.0, 0.0, 300.0, 30.0),  # nearly expired: kept 30 s (the server may end it first)
        (None, 0.0, 300.0, None),
    ],
)
def test_refresh_deadline(
    expires: float | None, opened: float, margin: float, due: float | None
) -> None:
    assert refresh_deadline(expires, opened, margin) == due


def test_exchange_authenticate_failed_lists_every_documented_cause() -> None:
    error = explain_auth_failure(
        host="outlook.office365.com",
        user="a@contoso.com",
        mechanism="XOAUTH2",
        server_text="AUTHENTICATE failed.",
        exchange=True,
    )
    assert error.causes == AUTHENTICATE_FAILED_CAUSES
    text = str(error)
    for needle in ("service principal", "object id", "IMAP is disabled", "user=", "IMAP.AccessAs"):
        assert needle in text


def test_not_connected_has_its_own_causes() -> None:
    error = explain_auth_failure(
        host="outlook.office365.com",
        user="shared@contoso.com",
        mechanism="XOAUTH2",
        server_text="User is authenticated but not connected.",
        exchange=True,
    )
    assert error.causes == NOT_CONNECTED_CAUSES
    assert "FullAccess" in str(error)
