"""Fixtures for every test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from exoimap import secrets


@pytest.fixture(autouse=True)
def _secret_values_stay_in_their_test() -> Iterator[None]:
    """Every ``Secret`` value is remembered process-wide, and redaction blanks it wherever
    it appears. A test worker runs many tests in one process, so a value one test made
    (``Secret("secret")``) would blank that word in the output of whichever test ran next
    on that worker. Each test starts with what the process knew before it."""
    known = frozenset(secrets.known_secret_values())
    yield
    secrets.forget_secret_values_except(known)


@pytest.fixture(autouse=True)
def _log_handlers_stay_in_their_test() -> Iterator[None]:
    """A command run in-process (``main([...])``) points the ``exoimap`` logger at its home's
    log file; that home is gone after the test. A later test on the same worker that logs a
    warning would write there (and fail once the handler was closed). Each test ends by
    taking off the handlers it added."""
    logger = logging.getLogger("exoimap")
    before = list(logger.handlers)
    yield
    for handler in list(logger.handlers):
        if handler not in before:
            logger.removeHandler(handler)
            handler.close()
