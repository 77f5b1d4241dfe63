"""A wrapper that keeps secrets out of logs, reprs, tracebacks and pickles.

Tokens, refresh tokens, passwords and client secrets travel as ``Secret[str]`` (or
``Secret[bytes]``). Every way Python turns an object into text (``repr``, ``str``,
f-strings and ``format``, ``%`` formatting in logging) shows ``***``; pickling stores only
``***`` as well. The value comes out only through an explicit :meth:`Secret.reveal`, so
every use of a secret is visible in the code.
"""

from __future__ import annotations

import hmac
from typing import Any, Generic, NoReturn, TypeVar

from exoimap.errors import ExoimapError

__all__ = [
    "MASK",
    "RedactedSecretError",
    "Secret",
    "forget_secret_values_except",
    "known_secret_values",
    "known_secrets_generation",
]

T = TypeVar("T")

MASK = "***"

_MIN_SCRUB_LENGTH = 6


class _KnownValues:
    """Values of the Secrets made in this process, so log redaction can scrub them even
    when a bug passes a revealed value to a logger. Short values are left out: they would
    blank ordinary words. Only the newest ``limit`` are kept: a watch or an agent makes new
    tokens every hour for as long as it runs, and the oldest of them expired long ago."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: dict[str, None] = {}  # oldest first
        #: Counts every change, so caches of redacted text can tell they are stale.
        self.generation = 0
        self._sorted: tuple[int, tuple[str, ...]] = (0, ())

    def add(self, value: str) -> None:
        if value in self.values:
            return
        self.values[value] = None
        while len(self.values) > self.limit:
            del self.values[next(iter(self.values))]
        self.generation += 1

    def keep_only(self, kept: frozenset[str]) -> None:
        for value in [v for v in self.values if v not in kept]:
            del self.values[value]
        self.generation += 1

    def longest_first(self) -> tuple[str, ...]:
        if self._sorted[0] != self.generation:
            ordered = tuple(sorted(self.values, key=len, reverse=True))
            self._sorted = (self.generation, ordered)
        return self._sorted[1]


_KNOWN = _KnownValues(limit=512)


def known_secret_values() -> tuple[str, ...]:
    """The text of the newest secrets wrapped so far (longest first, for replacement)."""
    return _KNOWN.longest_first()


def known_secrets_generation() -> int:
    """A number that changes whenever :func:`known_secret_values` does."""
    return _KNOWN.generation


def forget_secret_values_except(kept: frozenset[str]) -> None:
    """Forget every remembered value not in ``kept`` (a test's values, once it ended)."""
    _KNOWN.keep_only(kept)


def _remember(value: object) -> None:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return
    if isinstance(value, str) and len(value) >= _MIN_SCRUB_LENGTH:
        _KNOWN.add(value)


class RedactedSecretError(ExoimapError):
    """A secret that was pickled (and so redacted) was asked for its value."""


class _Redacted:
    """Stands in for a value that was deliberately not pickled."""

    __slots__ = ()


_REDACTED = _Redacted()


class Secret(Generic[T]):
    """Holds a secret value; only :meth:`reveal` gives it back."""

    __slots__ = ("__value",)

    def __init__(self, value: T) -> None:
        if isinstance(value, Secret):
            raise TypeError("Secret(Secret(...)): the value is already wrapped")
        _remember(value)
        self.__value = value

    def reveal(self) -> T:
        """Return the secret value. Call it only where the value is sent or encrypted."""
        value = self.__value
        if isinstance(value, _Redacted):
            raise RedactedSecretError(
                "this secret was redacted when it was pickled; its value is not available"
            )
        return value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __bool__(self) -> bool:
        return bool(self.__value) and not isinstance(self.__value, _Redacted)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine, theirs = self.__value, other.__value
        if isinstance(mine, str) and isinstance(theirs, str):
            return hmac.compare_digest(mine.encode(), theirs.encode())
        if isinstance(mine, bytes) and isinstance(theirs, bytes):
            return hmac.compare_digest(mine, theirs)
        return bool(mine == theirs)

    def __hash__(self) -> int:
        return hash((Secret, self.__value))

    # Pickling keeps only the mask; copies share the (immutable) wrapper.
    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle_redacted, (MASK,))

    def __copy__(self) -> Secret[T]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret[T]:
        return self

    def __getstate__(self) -> NoReturn:  # pragma: no cover - __reduce__ takes precedence
        raise TypeError("Secret state is not available")


def _unpickle_redacted(_mask: str = MASK) -> Secret[Any]:
    return Secret(_REDACTED)
