"""Fault injection for the sandbox servers (tests of reconnects, retries and resumes).

:class:`Faults` acts on the bytes a server writes: drop a connection after N bytes or at
random, delay every response. Mailbox-level faults (a restart, a UIDVALIDITY reset, changes
"from another client") are methods of :class:`~exoimap.sandbox.exchange.server.ExchangeImapServer`
and of the thread-safe :class:`~exoimap.sandbox.exchange.server.ExchangeControl`.

All switches can be changed while the server runs; they apply to the next write. From
another process (``exoimap sandbox exchange faults``), write them to ``<state>/faults.json``
with :func:`write_faults`: a running ``sandbox up`` applies the file within a fraction of a
second, and the next ``up`` starts with it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

from exoimap.errors import ConfigError
from exoimap.sandbox.state import read_json, write_private_json

__all__ = ["FAULTS_FILE", "Faults", "read_faults", "write_faults"]

#: ``<state>/faults.json``: the switches of :class:`Faults`, for a running sandbox to apply.
FAULTS_FILE = "faults.json"
_SWITCHES = ("drop_after_bytes", "drop_probability", "delay", "seed")


@dataclass
class Faults:
    """Transport faults, shared by every connection of a server."""

    #: Abort each connection once it has been sent this many bytes (``None``: never).
    drop_after_bytes: int | None = None
    #: Chance per write of aborting the connection part-way through that write.
    drop_probability: float = 0.0
    #: Seconds to wait before each write (a slow server).
    delay: float = 0.0
    #: Seed of the random drops (reproducible failures).
    seed: int = 0
    #: Seconds to wait before each write to a connection signed in to one of these
    #: mailboxes (UPN, lower case), on top of ``delay``: one slow mailbox among fast ones.
    mailbox_delay: dict[str, float] = field(default_factory=dict)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 (fault schedule, not security)
        self.check()

    def check(self) -> None:
        if self.drop_after_bytes is not None and self.drop_after_bytes < 0:
            raise ConfigError("drop_after_bytes cannot be negative", key="faults.drop_after_bytes")
        if not 0.0 <= self.drop_probability <= 1.0:
            raise ConfigError("drop_probability must be in [0, 1]", key="faults.drop_probability")
        if self.delay < 0:
            raise ConfigError("delay cannot be negative", key="faults.delay")

    @property
    def active(self) -> bool:
        slowed = self.delay > 0 or any(d > 0 for d in self.mailbox_delay.values())
        return self.drop_after_bytes is not None or self.drop_probability > 0 or slowed

    def describe(self) -> str:
        """One line for a person: ``drop after 100 bytes, delay 0.5 s`` or ``none``."""
        parts = []
        if self.drop_after_bytes is not None:
            parts.append(f"drop each connection after {self.drop_after_bytes} bytes")
        if self.drop_probability > 0:
            parts.append(f"drop at random ({self.drop_probability:g} per write, seed {self.seed})")
        if self.delay > 0:
            parts.append(f"delay {self.delay:g} s before each write")
        for upn, seconds in sorted(self.mailbox_delay.items()):
            parts.append(f"delay {seconds:g} s before each write to {upn}")
        return ", ".join(parts) or "none"

    def take(self, other: Faults) -> None:
        """Switch to ``other``'s settings (the random drops restart from its seed)."""
        for name in _SWITCHES:
            setattr(self, name, getattr(other, name))
        self._rng = random.Random(self.seed)  # noqa: S311 (fault schedule, not security)

    def clear(self) -> None:
        """Turn every transport fault off."""
        self.drop_after_bytes = None
        self.drop_probability = 0.0
        self.delay = 0.0
        self.mailbox_delay.clear()

    async def before_write(self, mailbox: str | None = None) -> None:
        wait = self.delay + (self.mailbox_delay.get(mailbox, 0.0) if mailbox else 0.0)
        if wait > 0:
            await asyncio.sleep(wait)

    def allowed_bytes(self, sent: int, size: int) -> int:
        """How much of a ``size``-byte write may go out before the connection drops."""
        allowed = size
        if self.drop_after_bytes is not None:
            allowed = min(allowed, max(self.drop_after_bytes - sent, 0))
        if self.drop_probability > 0 and self._rng.random() < self.drop_probability:
            allowed = min(allowed, self._rng.randrange(size) if size else 0)
        return allowed


def read_faults(path: Path) -> Faults:
    """The faults in ``path`` (none when it does not exist); bad content -> ConfigError."""
    if not path.exists():
        return Faults()
    document = read_json(path)
    if not isinstance(document, dict) or set(document) - set(_SWITCHES):
        raise ConfigError(
            f"expected an object with the keys {', '.join(_SWITCHES)}", path=str(path)
        )
    try:
        return Faults(**document)
    except TypeError as exc:
        raise ConfigError(f"invalid faults: {exc}", path=str(path)) from None


def write_faults(path: Path, faults: Faults) -> None:
    faults.check()
    write_private_json(path, {name: getattr(faults, name) for name in _SWITCHES})
