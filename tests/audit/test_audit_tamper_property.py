"""Property: any single tampering of a log is detected and named at the right record."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exoimap import audit

from .conftest import KEY, write_events

COUNT = 30


@functools.cache
def pristine() -> tuple[list[bytes], bytes]:
    """The lines of a 30-record log and its checkpoint, made once."""
    directory = Path(tempfile.mkdtemp(prefix="audit-prop-")) / "audit"
    write_events(directory, COUNT)
    lines = (directory / "audit-000001.jsonl").read_bytes().splitlines(keepends=True)
    checkpoint = (directory / "audit.checkpoint").read_bytes()
    shutil.rmtree(directory.parent)
    return lines, checkpoint


def verdict(lines: list[bytes]) -> tuple[str | None, int | None]:
    _, checkpoint = pristine()
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        (directory / "audit-000001.jsonl").write_bytes(b"".join(lines))
        (directory / "audit.checkpoint").write_bytes(checkpoint)
        result = audit.verify_log(directory, KEY)
    if result.problem is None:
        return None, None
    return result.problem.kind, result.problem.record


index = st.integers(min_value=0, max_value=COUNT - 1)
fast = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(index, st.data())
def test_any_changed_byte_is_modified(i: int, data: st.DataObject) -> None:
    lines = list(pristine()[0])
    line = bytearray(lines[i])
    at = data.draw(st.integers(min_value=0, max_value=len(line) - 2))  # not the newline
    new = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != line[at]))
    line[at] = new
    lines[i] = bytes(line)
    assert verdict(lines) == ("modified", i + 1)


@fast
@given(index)
def test_any_deleted_record(i: int) -> None:
    lines = list(pristine()[0])
    del lines[i]
    expected = "truncated" if i == COUNT - 1 else "deleted"
    assert verdict(lines) == (expected, i + 1)


@fast
@given(index, index)
def test_any_swap_is_reordered(i: int, j: int) -> None:
    assume(i != j)
    i, j = min(i, j), max(i, j)
    lines = list(pristine()[0])
    lines[i], lines[j] = lines[j], lines[i]
    assert verdict(lines) == ("reordered", i + 1)


@fast
@given(index, st.integers(min_value=1, max_value=COUNT))
def test_any_later_copy_is_inserted(i: int, at: int) -> None:
    assume(at > i)
    lines = list(pristine()[0])
    lines.insert(at, lines[i])
    assert verdict(lines) == ("inserted", at + 1)


@fast
@given(st.integers(min_value=0, max_value=COUNT - 1))
def test_any_cut_is_truncated(keep: int) -> None:
    lines = list(pristine()[0])[:keep]
    assert verdict(lines) == ("truncated", keep + 1)


def test_pristine_verifies() -> None:
    assert verdict(list(pristine()[0])) == (None, None)
