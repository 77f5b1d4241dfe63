"""Fixtures for the network tests: one real Dovecot per test session (per xdist worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.dovecot import DovecotServer


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> str:
    """A fresh, empty mailbox user for one test."""
    return dovecot.new_mailbox()


@pytest.fixture
def endpoint(dovecot: DovecotServer) -> Endpoint:
    return Endpoint(dovecot.host, dovecot.imaps_port, TLSPolicy(ca_file=dovecot.ca_file))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
