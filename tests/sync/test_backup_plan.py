"""The pure backup planner: every rule with plain data."""

from __future__ import annotations

import datetime as dt

from exoimap.store.base import FolderInfo, FolderState, MessageInfo, MessageListing, MessageRef
from exoimap.sync.plan import (
    ArchivedFolder,
    BackupPolicy,
    archive_name,
    needs_rematch,
    plan_folders,
    plan_messages,
)

SEEN = frozenset({"\\Seen"})
NONE: frozenset[str] = frozenset()
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _listing(
    messages: list[MessageInfo],
    *,
    uidvalidity: int = 7,
    complete: bool = True,
    vanished: frozenset[int] | None = None,
) -> MessageListing:
    state = FolderState("F", uidvalidity, 100, len(messages))
    return MessageListing(state, messages, complete=complete, vanished=vanished)


def _stored(
    uid: int, origin: tuple[int, int] | None, flags: frozenset[str] = NONE, **kw: object
) -> MessageInfo:
    ref = MessageRef(*origin) if origin else None
    return MessageInfo(uid=uid, flags=flags, origin=ref, **kw)  # type: ignore[arg-type]


def test_archive_names() -> None:
    assert archive_name("inbox", ".") == "INBOX"
    assert archive_name("A.B", ".") == "A/B"
    assert archive_name("A/B", "/") == "A/B"
    assert archive_name("Q3/Q4.x", ".") == "Q3\u2215Q4/x"
    assert archive_name("Flat", None) == "Flat"


def _folders(*names: str) -> list[FolderInfo]:
    return [FolderInfo(n, "/") for n in names]


def test_new_folders_are_created_and_vanished_ones_marked_gone() -> None:
    plan = plan_folders(
        [*_folders("INBOX", "New"), FolderInfo("Root", "/", selectable=False)],
        {"New": 5},
        [
            ArchivedFolder("INBOX", 1, False),
            ArchivedFolder("Old", 3, False),
            ArchivedFolder("Older", 2, True),
        ],
        BackupPolicy(),
    )
    assert plan.creates == [("New", None)]
    assert plan.gone == ["Old"]  # Older was already gone
    assert plan.pairs == [("INBOX", "INBOX"), ("New", "New")]
    mirrored = plan_folders(
        _folders("INBOX"), {}, [ArchivedFolder("Old", 3, False)], BackupPolicy(mirror=True)
    )
    assert (mirrored.deletes, mirrored.gone) == (["Old"], [])


def test_rename_detected_by_uidvalidity_children_follow() -> None:
    plan = plan_folders(
        _folders("INBOX", "Job", "Job/Sub"),
        {"Job": 10, "Job/Sub": 11},
        [
            ArchivedFolder("INBOX", 1, False),
            ArchivedFolder("Work", 10, False),
            ArchivedFolder("Work/Sub", 11, False),
        ],
        BackupPolicy(),
    )
    assert plan.renames == [("Work", "Job")]
    assert plan.creates == []
    assert plan.gone == []


def test_ambiguous_uidvalidity_is_not_a_rename() -> None:
    plan = plan_folders(
        _folders("A2", "B2"),
        {"A2": 10, "B2": 10},
        [ArchivedFolder("A", 10, False)],
        BackupPolicy(),
    )
    assert plan.renames == []
    assert [c for c, _ in plan.creates] == ["A2", "B2"]
    assert plan.gone == ["A"]


def test_include_filter() -> None:
    plan = plan_folders(
        _folders("INBOX", "Junk"), {"Junk": 3}, [], BackupPolicy(include=lambda n: n != "Junk")
    )
    assert plan.pairs == [("INBOX", "INBOX")]
    assert plan.creates == [("INBOX", None)]


def test_new_flags_and_gone() -> None:
    source = _listing([MessageInfo(1, SEEN), MessageInfo(2, NONE), MessageInfo(4, NONE)])
    stored = [
        _stored(10, (7, 1)),
        _stored(11, (7, 2)),
        _stored(12, (7, 3)),
        _stored(13, (7, 9), gone_at=T0),
    ]
    plan = plan_messages(7, source, stored, exact_sizes=True)
    assert plan.fetch == [4]
    assert plan.flags == {10: SEEN}
    assert plan.gone == [12]  # 13 was already gone
    assert not plan.adopt_unanchored
    assert plan.gone_unless_adopted == []
    assert not needs_rematch(stored, 7)


def test_incremental_listing_uses_vanished_only() -> None:
    source = _listing([MessageInfo(5, SEEN)], complete=False, vanished=frozenset({2}))
    stored = [_stored(10, (7, 1)), _stored(11, (7, 2))]
    plan = plan_messages(7, source, stored, exact_sizes=True)
    assert (plan.fetch, plan.gone, plan.flags) == ([5], [11], {})


def test_uidvalidity_change_rematches_by_message_id_and_size() -> None:
    source = _listing(
        [
            MessageInfo(1, SEEN, size=100, message_id="<a>"),
            MessageInfo(2, NONE, size=200, message_id="<b>"),
            MessageInfo(3, NONE, size=300, message_id=None),
            MessageInfo(4, NONE, size=999, message_id="<c>"),  # same id, other size
        ],
        uidvalidity=8,
    )
    stored = [
        _stored(10, (7, 1), size=100, message_id="<a>"),
        _stored(11, (7, 2), size=200, message_id="<b>", flags=SEEN),
        _stored(12, (7, 3), size=300, message_id=None),
        _stored(13, (7, 4), size=400, message_id="<c>"),
    ]
    assert needs_rematch(stored, 8)
    plan = plan_messages(8, source, stored, exact_sizes=True)
    assert plan.origins == {10: MessageRef(8, 1), 11: MessageRef(8, 2)}
    assert plan.flags == {10: SEEN, 11: NONE}
    assert plan.fetch == [3, 4]
    assert plan.adopt_unanchored
    assert plan.gone_unless_adopted == [12, 13]
    assert plan.gone == []


def test_estimated_sizes_match_by_internal_date() -> None:
    source = _listing(
        [MessageInfo(1, NONE, size=5000, internal_date=T0, message_id="<a>")], uidvalidity=8
    )
    stored = [_stored(10, None, size=4321, internal_date=T0, message_id="<a>")]
    plan = plan_messages(8, source, stored, exact_sizes=False)
    assert plan.origins == {10: MessageRef(8, 1)}
    assert plan.fetch == []
    exact = plan_messages(8, source, stored, exact_sizes=True)
    assert exact.fetch == [1]
    assert exact.gone_unless_adopted == [10]
