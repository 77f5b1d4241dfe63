"""Immutable value classes for the protocol, quicker to define than plain dataclasses.

``@dataclass(frozen=True, slots=True)`` compiles ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` from generated source for every class.
The protocol defines about ninety such classes (commands, responses, events), and a cold
``exoimap sync`` spent about 8 ms of its start-up compiling their ``__repr__``, ``__eq__``
and ``__hash__``. :func:`value_class` makes the same dataclass without those three and
gives it shared ones that behave the same: equal when of the same class with equal
compared fields, hashed on those fields, shown as ``Name(field=value, ...)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, dataclass_transform

__all__ = ["value_class"]

T = TypeVar("T")


def _compared(value: Any) -> tuple[Any, ...]:
    return tuple(getattr(value, name) for name in value._value_compared)


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self: Any) -> int:
    return hash(_compared(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._value_shown)
    return f"{self.__class__.__qualname__}({shown})"


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def value_class(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True, slots=True)`` with shared ``__eq__``, ``__hash__`` and
    ``__repr__`` (fields with ``compare=False`` or ``repr=False`` left out, as there)."""
    made: Any = dataclasses.dataclass(frozen=True, slots=True, eq=False, repr=False)(cls)
    fields = dataclasses.fields(made)
    made._value_compared = tuple(f.name for f in fields if f.compare)
    made._value_shown = tuple(f.name for f in fields if f.repr)
    made.__eq__, made.__hash__, made.__repr__ = _eq, _hash, _repr
    return made  # type: ignore[no-any-return]
