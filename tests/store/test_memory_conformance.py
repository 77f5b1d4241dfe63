"""MemoryStore runs the shared Store conformance suite, in several configurations."""

from __future__ import annotations

import pytest

from exoimap.store.base import Capabilities, Store
from exoimap.store.conformance import CHECKS, Check, run_check
from exoimap.store.memory import MemoryStore


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_memory_store_conforms(check: Check) -> None:
    async def factory() -> Store:
        return MemoryStore(chunk_size=65536)

    run_check(check, factory)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_exchange_like_memory_store_conforms(check: Check) -> None:
    """No CONDSTORE, no custom keywords, '.' delimiter: the checks adapt to capabilities."""
    caps = Capabilities(
        condstore=False,
        qresync=False,
        custom_keywords=False,
        permanent_flags=frozenset(
            {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$MDNSent"}
        ),
    )

    async def factory() -> Store:
        return MemoryStore(capabilities=caps, delimiter=".", chunk_size=1000)

    run_check(check, factory)
