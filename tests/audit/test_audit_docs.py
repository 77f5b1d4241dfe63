"""The examples in docs/audit.md and the package docstring run."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import exoimap.audit

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_there_are_examples() -> None:
    assert len(python_blocks()) == 3


@pytest.mark.parametrize("index", range(3))
def test_doc_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    exec(compile(python_blocks()[index], f"{DOC.name} block {index + 1}", "exec"), {})


def test_package_docstring() -> None:
    result = doctest.testmod(exoimap.audit, raise_on_error=False, verbose=False)
    assert result.attempted >= 2
    assert result.failed == 0
