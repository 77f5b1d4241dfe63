"""Large folders in windows of source UIDs, so memory stays flat in the folder's size.

A sync (and a verify) of a folder lists the source and reads the target's index one UID
range at a time: the source's ``UID FETCH first:last`` and the target messages whose
origin lies in the same range are exactly the two halves of a complete listing, so each
window is planned on its own and the windows together make the whole folder's plan. Each
window holds about :data:`WINDOW_MESSAGES` messages: the first span is guessed from the
folder's density (its message count over its UID range), later spans follow what the
previous window held, and the last window is open-ended, so messages that arrive during
the sync are still seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from exoimap.store.base import UidRange

__all__ = ["WINDOW_MESSAGES", "UidWindows"]

#: About how many messages one window holds (a window's listing and plan cost about
#: 300 bytes a message).
WINDOW_MESSAGES = 20_000


@dataclass(slots=True)
class UidWindows:
    """The UID ranges that cover a folder whose next UID is ``uidnext`` and which holds
    ``messages`` messages (the larger of the source's and the target's count).

    ``per_window=None`` gives one window, the whole folder (a state that cannot answer for
    a range). Tell each window's size to :meth:`held` before taking the next one."""

    uidnext: int
    messages: int
    per_window: int | None = WINDOW_MESSAGES
    _held: int = 0

    def held(self, count: int) -> None:
        """How many messages the window just taken held (source or target, the larger)."""
        self._held = count

    def __iter__(self) -> Iterator[UidRange]:
        per_window = self.per_window
        top = self.uidnext - 1
        if per_window is None or self.messages <= per_window or top <= per_window:
            yield UidRange(1)
            return
        span = max(1, top * per_window // self.messages)
        first = 1
        while first + span <= top:
            self._held = 0
            yield UidRange(first, first + span - 1)
            first += span
            if self._held > 2 * per_window:
                span = max(1, span // 2)
            elif self._held < per_window // 2:
                span *= 2
        yield UidRange(first)
