"""Transport faults: byte budgets, seeded random drops, validation."""

from __future__ import annotations

import pytest

from exoimap.errors import ConfigError
from exoimap.sandbox.faults import Faults


def test_drop_after_bytes_counts_what_was_sent() -> None:
    faults = Faults(drop_after_bytes=100)
    assert faults.allowed_bytes(0, 60) == 60
    assert faults.allowed_bytes(60, 60) == 40
    assert faults.allowed_bytes(100, 10) == 0
    faults.clear()
    assert faults.allowed_bytes(100, 10) == 10


def test_random_drops_are_reproducible() -> None:
    first = Faults(drop_probability=0.5, seed=3)
    second = Faults(drop_probability=0.5, seed=3)
    runs = [[f.allowed_bytes(0, 1000) for _ in range(20)] for f in (first, second)]
    assert runs[0] == runs[1]
    assert any(n < 1000 for n in runs[0])
    assert any(n == 1000 for n in runs[0])


def test_bad_fault_values() -> None:
    with pytest.raises(ConfigError):
        Faults(drop_probability=2)
    with pytest.raises(ConfigError):
        Faults(delay=-1)
