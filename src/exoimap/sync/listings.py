"""A folder's plan inputs, window by window: the source's listing and the target's
messages, and the plan made of them.

The target side (:class:`TargetSide`) is read from a :class:`~exoimap.store.base.WindowedState`
one range of source UIDs at a time (see :mod:`exoimap.sync.windows`), so a folder of a
million messages never has more than a window's listing in memory. A state that cannot
answer by range, and a folder whose messages must be matched by Message-ID (some live
message without an origin under the source's UIDVALIDITY), are planned as one window: the
matching needs the whole folder.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from exoimap.errors import StoreError
from exoimap.store.base import (
    Folder,
    FolderState,
    MessageInfo,
    MessageListing,
    SyncState,
    UidRange,
    WindowedState,
)
from exoimap.sync.plan import MessagePlan, MessageRules, needs_rematch, plan_messages
from exoimap.sync.run import Run
from exoimap.sync.windows import UidWindows

__all__ = ["CONTENT_SAMPLE", "TargetSide", "WindowPlan", "plan_windows"]

#: How many of a window's newest copies, and how many more at random, a resync over a
#: complete listing checks for content changed under the same UID.
CONTENT_SAMPLE = 16
# not for secrets: which messages a resync looks at more closely
_random = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """One window's source listing and plan; ``final`` for the folder's last window."""

    listing: MessageListing
    plan: MessagePlan
    final: bool


@dataclass(frozen=True, slots=True)
class TargetSide:
    """The target folder's messages as a plan (or a verify) sees them: the whole folder at
    once (``whole``), or one window at a time from a :class:`WindowedState`."""

    state: SyncState
    #: The open target folder (``None``: it does not exist yet).
    folder: Folder | None
    source_uidvalidity: int
    #: How many messages the target folder holds.
    count: int
    #: Some live message must be matched by Message-ID (then ``whole`` is set).
    rematch: bool
    whole: list[MessageInfo] | None
    #: About how many messages a window holds (``whole`` set: ignored).
    per_window: int
    detail: bool
    #: Fill in sizes and internal dates (to follow content changes).
    sized: bool = False
    #: Target UIDs left out (a dry run's messages whose files are missing).
    left_out: frozenset[int] = frozenset()

    @classmethod
    async def read(
        cls,
        state: SyncState,
        folder: Folder,
        source_uidvalidity: int,
        *,
        per_window: int,
        detail: bool = False,
        sized: bool = False,
        left_out: frozenset[int] = frozenset(),
        matching: bool = True,
    ) -> TargetSide:
        """Read the whole folder only where it must be (see the module's text; without
        ``matching``, as for a verify, unanchored messages do not matter)."""
        if isinstance(state, WindowedState) and not (
            matching and await state.has_unanchored(folder, source_uidvalidity)
        ):
            count = (await folder.state()).exists
            return cls(
                state,
                folder,
                source_uidvalidity,
                count,
                False,
                None,
                per_window,
                detail,
                sized,
                left_out,
            )
        stored = await state.messages(folder, detail=detail, size_and_date=sized)
        rematch = needs_rematch([m for m in stored if m.uid not in left_out], source_uidvalidity)
        if rematch and not detail:  # matching needs Message-IDs, sizes and dates
            stored = await state.messages(folder, detail=True)
        whole = [m for m in stored if m.uid not in left_out]
        return cls(
            state,
            folder,
            source_uidvalidity,
            len(whole),
            rematch,
            whole,
            per_window,
            detail,
            sized,
            left_out,
        )

    @classmethod
    def empty(cls, state: SyncState, source_uidvalidity: int) -> TargetSide:
        """A target folder that does not exist yet."""
        return cls(state, None, source_uidvalidity, 0, False, [], 1, True)

    def windows(self, source: FolderState) -> UidWindows:
        """The windows that cover the source folder ``source`` and this target folder."""
        per_window = None if self.whole is not None else self.per_window
        return UidWindows(source.uidnext, max(source.exists, self.count), per_window)

    async def window(self, uids: UidRange) -> list[MessageInfo]:
        """The target messages anchored to source UIDs in ``uids`` (``whole``: all)."""
        if self.whole is not None:
            return self.whole
        state, folder = self.state, self.folder
        # no whole listing only for an existing folder of a windowed state
        assert isinstance(state, WindowedState)
        assert folder is not None
        found = await state.anchored_messages(
            folder,
            self.source_uidvalidity,
            uids,
            detail=self.detail,
            size_and_date=self.sized,
        )
        return [m for m in found if m.uid not in self.left_out] if self.left_out else found


async def plan_windows(
    run: Run,
    source: Folder,
    target: TargetSide,
    folder_state: FolderState,
    *,
    since: int | None,
    detail: bool,
) -> AsyncIterator[WindowPlan]:
    """Each window's source listing and plan, in UID order. Raises :class:`StoreError`
    when the source folder's UIDVALIDITY changes between windows."""
    windows = target.windows(folder_state)
    uidvalidity = folder_state.uidvalidity
    whole = target.whole is not None
    for window in windows:
        stored = await target.window(window)
        listing, plan = await _list_and_plan(
            run,
            source,
            stored,
            since,
            uidvalidity=uidvalidity,
            detail=detail,
            uids=None if whole else window,
        )
        if listing.state.uidvalidity != uidvalidity and not whole:
            raise StoreError(
                f"the source folder's UIDVALIDITY changed during the sync of {source.name!r}; "
                "the next run matches its messages again",
                folder=source.name,
            )
        windows.held(max(len(listing.messages), len(stored)))
        yield WindowPlan(listing, plan, final=window.last is None)


async def _list_and_plan(
    run: Run,
    folder: Folder,
    stored: list[MessageInfo],
    since: int | None,
    *,
    uidvalidity: int,
    detail: bool,
    uids: UidRange | None,
) -> tuple[MessageListing, MessagePlan]:
    """List the source folder (``uids``: that window of it) and plan. Content changes: a
    changes-only listing (CONDSTORE) carries every listed message's size and date; a
    complete one only a sample's, and every message's once the sample found a change (see
    :func:`_content_sample`)."""
    stamps: bool | frozenset[int] = False
    if run.policy.follow_content and stored and not detail:
        stamps = True if since is not None else _content_sample(stored, uidvalidity)
    listing = await folder.list_messages(
        changed_since=since, detail=detail, size_and_date=stamps, uids=uids
    )
    plan = _plan(run, listing, stored)
    if plan.replaced and isinstance(stamps, frozenset):
        listing = await folder.list_messages(changed_since=since, size_and_date=True, uids=uids)
        plan = _plan(run, listing, stored)
    return listing, plan


def _content_sample(stored: list[MessageInfo], uidvalidity: int) -> frozenset[int]:
    """The source UIDs whose size and date a complete listing also asks: the newest copies
    and as many at random (listing them all costs about as much again as the flags, on
    every resync of a server without CONDSTORE). A server that lost its store and refilled
    it shows in any sample; a single message changed under its UID is caught by a later
    sample or by ``verify --deep``."""
    anchored = sorted(
        m.origin.uid
        for m in stored
        if m.origin is not None and m.origin.uidvalidity == uidvalidity and m.gone_at is None
    )
    if len(anchored) <= 2 * CONTENT_SAMPLE:
        return frozenset(anchored)
    older = anchored[:-CONTENT_SAMPLE]
    return frozenset(anchored[-CONTENT_SAMPLE:] + _random.sample(older, CONTENT_SAMPLE))


def _plan(run: Run, listing: MessageListing, stored: list[MessageInfo]) -> MessagePlan:
    """The plan of one listing against the target messages ``stored``, by the run's rules."""
    caps, policy = run.target.capabilities, run.policy
    exact_sizes = run.source.capabilities.exact_sizes
    rules = MessageRules(
        exact_sizes=exact_sizes,
        keep_flags=None if caps.custom_keywords else caps.permanent_flags,
        select=policy.select,
        max_size=policy.max_message_size or caps.max_message_size,
        track_deletions=policy.track_deletions,
        follow_content=policy.follow_content,
        sizes_comparable=exact_sizes and caps.exact_sizes,
    )
    return plan_messages(listing.state.uidvalidity, listing, stored, rules)
