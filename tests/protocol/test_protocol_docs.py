"""The examples in the exoimap.protocol docstring run (an example nothing runs goes stale),
and error_for maps Exchange's answers to exceptions."""

from __future__ import annotations

import doctest
import types

import pytest

import exoimap.protocol
from exoimap.errors import ConnectionLost, SessionInvalidated, Throttled
from exoimap.protocol import Status, StatusResponse, answers, dates, error_for, headers


def test_package_docstring_examples_run() -> None:
    result = doctest.testmod(exoimap.protocol, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15
    assert result.failed == 0


@pytest.mark.parametrize("module", [answers, dates, headers], ids=lambda m: m.__name__)
def test_module_docstring_examples_run(module: types.ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted >= 2
    assert result.failed == 0


def test_error_for() -> None:
    throttled = error_for(
        StatusResponse(
            "A1",
            Status.NO,
            None,
            "Request is throttled. Suggested Backoff Time: 300000 milliseconds",
        )
    )
    assert isinstance(throttled, Throttled)
    assert throttled.backoff == 300.0
    expired = error_for(
        StatusResponse(None, Status.BYE, None, "Session invalidated - AccessTokenExpired")
    )
    assert isinstance(expired, SessionInvalidated)
    assert expired.reason == "AccessTokenExpired"
    closed = error_for(StatusResponse(None, Status.BYE, None, "Connection is closed. 13"))
    assert type(closed) is ConnectionLost
    assert "Connection is closed. 13" in str(closed)
    assert error_for(StatusResponse("A1", Status.NO, None, "AUTHENTICATE failed.")) is None
    assert (
        error_for(
            StatusResponse(
                None,
                Status.OK,
                None,
                "Request is throttled. Suggested Backoff Time: 5 milliseconds",
            )
        )
        is None
    )
