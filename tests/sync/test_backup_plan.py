"""The pure backup planner: every rule with plain data."""

from __future__ import annotations

import datetime as dt

from exoimap.store.base import (
    SYSTEM_FLAGS,
    FolderInfo,
    FolderState,
    FolderSyncRecord,
    MessageInfo,
    MessageListing,
    MessageRef,
)
from exoimap.sync.plan import (
    FolderPlan,
    MessageRules,
    SyncPolicy,
    apply_content_renames,
    match_by_content,
    needs_rematch,
    plan_folders,
    plan_messages,
    target_name,
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


def test_target_names() -> None:
    assert target_name("inbox", ".") == "INBOX"
    assert target_name("A.B", ".") == "A/B"
    assert target_name("A/B", "/") == "A/B"
    assert target_name("Q3/Q4.x", ".") == "Q3\u2215Q4/x"
    assert target_name("Flat", None) == "Flat"
    # towards a target whose delimiter is "." (a restore or a migration to such a server)
    assert target_name("A/B", "/", ".") == "A.B"
    assert target_name("v1.2/x", "/", ".") == "v1\u20242.x"
    assert target_name("inbox", "/", ".") == "INBOX"


def _record(name: str, uidvalidity: int | None, gone: bool) -> FolderSyncRecord:
    return FolderSyncRecord(name, uidvalidity, gone_at=T0 if gone else None)


def _folders(*names: str) -> list[FolderInfo]:
    return [FolderInfo(n, "/") for n in names]


def test_new_folders_are_created_and_vanished_ones_marked_gone() -> None:
    plan = plan_folders(
        [*_folders("INBOX", "New"), FolderInfo("Root", "/", selectable=False)],
        {"New": 5},
        [
            _record("INBOX", 1, False),
            _record("Old", 3, False),
            _record("Older", 2, True),
        ],
        SyncPolicy(),
    )
    assert plan.creates == [("New", None)]
    assert plan.gone == ["Old"]  # Older was already gone
    assert plan.pairs == [("INBOX", "INBOX"), ("New", "New")]
    mirrored = plan_folders(
        _folders("INBOX"), {}, [_record("Old", 3, False)], SyncPolicy(mirror=True)
    )
    assert (mirrored.deletes, mirrored.gone) == (["Old"], [])


def test_rename_detected_by_uidvalidity_children_follow() -> None:
    plan = plan_folders(
        _folders("INBOX", "Job", "Job/Sub"),
        {"Job": 10, "Job/Sub": 11},
        [
            _record("INBOX", 1, False),
            _record("Work", 10, False),
            _record("Work/Sub", 11, False),
        ],
        SyncPolicy(),
    )
    assert plan.renames == [("Work", "Job")]
    assert plan.creates == []
    assert plan.gone == []


def test_ambiguous_uidvalidity_is_not_a_rename() -> None:
    plan = plan_folders(
        _folders("A2", "B2"),
        {"A2": 10, "B2": 10},
        [_record("A", 10, False)],
        SyncPolicy(),
    )
    assert plan.renames == []
    assert [c for c, _ in plan.creates] == ["A2", "B2"]
    assert plan.gone == ["A"]


def test_include_filter() -> None:
    plan = plan_folders(
        _folders("INBOX", "Junk"), {"Junk": 3}, [], SyncPolicy(include=lambda n: n != "Junk")
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
    plan = plan_messages(7, source, stored, MessageRules(exact_sizes=True))
    assert plan.fetch == [4]
    assert plan.flags == {10: SEEN}
    assert plan.gone == [12]  # 13 was already gone
    assert not plan.adopt_unanchored
    assert plan.gone_unless_adopted == []
    assert not needs_rematch(stored, 7)


def test_incremental_listing_uses_vanished_only() -> None:
    source = _listing([MessageInfo(5, SEEN)], complete=False, vanished=frozenset({2}))
    stored = [_stored(10, (7, 1)), _stored(11, (7, 2))]
    plan = plan_messages(7, source, stored, MessageRules(exact_sizes=True))
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
    plan = plan_messages(8, source, stored, MessageRules(exact_sizes=True))
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
    plan = plan_messages(8, source, stored, MessageRules(exact_sizes=False))
    assert plan.origins == {10: MessageRef(8, 1)}
    assert plan.fetch == []
    exact = plan_messages(8, source, stored, MessageRules(exact_sizes=True))
    assert exact.fetch == [1]
    assert exact.gone_unless_adopted == [10]


def test_excluded_unselectable_and_parent_folders_are_not_gone() -> None:
    plan = plan_folders(
        [
            FolderInfo("INBOX", "/"),
            FolderInfo("Junk", "/"),
            FolderInfo("P/Q", "/"),
            FolderInfo("R", "/", selectable=False),
        ],
        {},
        [
            _record("INBOX", 1, False),
            _record("Junk", 2, False),  # excluded now: keep, even when mirroring
            _record("P", None, False),  # implicit parent of P/Q
            _record("P/Q", 3, False),
            _record("R", 4, False),  # became \\Noselect
        ],
        SyncPolicy(mirror=True, include=lambda n: n != "Junk"),
    )
    assert plan.gone == []
    assert plan.deletes == []
    assert [p for p, _ in plan.pairs] == ["INBOX", "P/Q"]


def test_match_by_content_and_apply() -> None:
    pairs = match_by_content(
        {"New": {"a", "b", "c", "d"}, "Other": {"x"}, "Empty": set()},
        {"Old": {"a", "b", "c", "z"}, "Gone": {"q"}, "Twin1": {"x", "y"}, "Twin2": {"x", "w"}},
    )
    assert pairs == [("Old", "New")]  # Other ties between Twin1 and Twin2: no guess
    plan = FolderPlan(
        creates=[("New", None), ("New/Kid", None), ("Other", None)],
        gone=["Old", "Old/Kid", "Old/Lost"],
    )
    apply_content_renames(plan, pairs)
    assert plan.renames == [("Old", "New")]
    assert plan.creates == [("Other", None)]
    assert sorted(plan.gone) == ["New/Lost"]


def test_target_folders_the_state_does_not_know_are_used_not_created() -> None:
    plan = plan_folders(
        _folders("INBOX", "Sent", "New"), {"New": 5}, [], SyncPolicy(), target_existing={"Sent"}
    )
    assert plan.creates == [("INBOX", None), ("New", None)]
    assert plan.pairs == [("INBOX", "INBOX"), ("New", "New"), ("Sent", "Sent")]
    assert plan.gone == []


def test_flags_compared_on_what_the_target_keeps() -> None:
    source = _listing([MessageInfo(1, frozenset({"\\Seen", "work"})), MessageInfo(2, SEEN)])
    stored = [_stored(10, (7, 1), SEEN), _stored(11, (7, 2), NONE)]
    plan = plan_messages(7, source, stored, MessageRules(keep_flags=SYSTEM_FLAGS))
    assert plan.flags == {11: SEEN}  # "work" cannot be kept: no endless re-setting of it
    assert plan_messages(7, source, stored, MessageRules(exact_sizes=True)).flags == {
        10: frozenset({"\\Seen", "work"}),
        11: SEEN,
    }
