"""``value_class`` behaves as ``@dataclass(frozen=True, slots=True)`` does: the same repr,
equality, hash, immutability and slots, with shared methods instead of generated ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from exoimap.protocol.commands import Append, Select
from exoimap.protocol.types import SequenceSet
from exoimap.protocol.values import value_class


@value_class
class Point:
    x: int
    y: bytes = b""
    note: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class PlainPoint:
    x: int
    y: bytes = b""
    note: str = field(default="", repr=False, compare=False)


@value_class
class Empty:
    pass


def test_it_shows_compares_and_hashes_as_a_frozen_dataclass() -> None:
    made, plain = Point(1, b"a", note="hidden"), PlainPoint(1, b"a", note="hidden")
    assert repr(made) == repr(plain).replace("PlainPoint", "Point") == "Point(x=1, y=b'a')"
    assert made == Point(1, b"a", note="another note")  # compare=False is not compared
    assert hash(made) == hash(plain) == hash(Point(1, b"a"))
    assert made != Point(2, b"a")
    assert made != plain  # another class is never equal
    assert made.__eq__(plain) is NotImplemented
    assert len({made, Point(1, b"a"), Point(2)}) == 2
    assert Empty() == Empty()
    assert repr(Empty()) == "Empty()"


def test_it_is_immutable_and_slotted() -> None:
    made = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.x = 2  # type: ignore[misc]
    assert not hasattr(made, "__dict__")
    assert dataclasses.replace(made, x=3) == Point(3)
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "note"]


def test_the_protocols_classes_keep_their_value_semantics() -> None:
    assert Select("INBOX") == Select("INBOX")
    assert Select("INBOX") != Select("Sent")
    assert SequenceSet.of(1, 2, 3) == SequenceSet.range(1, 3)
    assert hash(SequenceSet.of(5)) == hash(SequenceSet.range(5, 5))
    assert repr(Select("INBOX")).startswith("Select(mailbox='INBOX'")
    assert "message=" not in repr(Append("INBOX", b"secret body"))  # repr=False field
