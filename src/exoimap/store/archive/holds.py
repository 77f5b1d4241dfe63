"""Legal holds on an archive: ``<root>/holds.json``. While a hold is active nothing is
deleted from the archive: expunging messages and deleting a folder are refused with
:class:`ArchiveHeld` (a sync with ``--mirror`` reports it per folder and keeps the mail).
Placing and releasing holds is the console's (a release needs a second person's approval
there); the file is replaced whole, atomically, 0600.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from exoimap.errors import ErrorScope, StoreError
from exoimap.private_files import write_private

__all__ = [
    "ArchiveHeld",
    "Hold",
    "active_holds",
    "place_hold",
    "read_holds",
    "refuse_if_held",
    "release_hold",
]

_FILE = "holds.json"


class ArchiveHeld(StoreError):
    """A deletion refused: the archive is under a legal hold."""

    scope = ErrorScope.FOLDER
    retryable = False


@dataclass(frozen=True)
class Hold:
    id: str
    reason: str
    placed_by: str
    placed_at: float
    released_by: str = ""
    released_at: float | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None


def read_holds(root: Path) -> list[Hold]:
    """Every hold ever placed on the archive at ``root``, oldest first."""
    try:
        document = json.loads((root / _FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        # unreadable holds must not read as "no hold": refuse deletions instead
        raise ArchiveHeld(f"the legal holds of {root} cannot be read ({exc})") from None
    return [Hold(**entry) for entry in document.get("holds", [])]


def active_holds(root: Path) -> list[Hold]:
    return [h for h in read_holds(root) if h.active]


def refuse_if_held(root: Path, what: str) -> None:
    """Raise :class:`ArchiveHeld` when a hold is active on the archive at ``root``."""
    held = active_holds(root)
    if held:
        raise ArchiveHeld(
            f"{what} refused: the archive is under legal hold {held[0].id} "
            f"({held[0].reason}); a compliance officer must release it first"
        )


def _write(root: Path, holds: list[Hold]) -> None:
    data = json.dumps({"holds": [asdict(h) for h in holds]}, indent=1).encode()
    write_private(root / _FILE, data)


def place_hold(root: Path, reason: str, placed_by: str) -> Hold:
    hold = Hold(os.urandom(4).hex(), reason, placed_by, time.time())
    _write(root, [*read_holds(root), hold])
    return hold


def release_hold(root: Path, hold_id: str, released_by: str) -> Hold | None:
    """Release the active hold ``hold_id``; None when there is no such active hold."""
    holds = read_holds(root)
    for n, hold in enumerate(holds):
        if hold.id == hold_id and hold.active:
            holds[n] = Hold(
                hold.id, hold.reason, hold.placed_by, hold.placed_at, released_by, time.time()
            )
            _write(root, holds)
            return holds[n]
    return None
