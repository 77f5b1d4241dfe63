"""One conformance suite every :class:`~exoimap.store.base.Store` must pass.

Each check is an ``async def check(store) -> None`` that gets a fresh, empty store (holding
only ``INBOX``) and raises :class:`ConformanceFailure` when the store breaks the contract in
:mod:`exoimap.store.base`. Checks read :attr:`Store.capabilities` and only demand what the
store claims (keywords, CONDSTORE).

Use from pytest::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_conformance(check, tmp_path):
        async def factory() -> Store:
            return ArchiveStore.open(tmp_path / "a")

        run_check(check, factory)

A store that needs a running server (the remote store against the sandbox) can open its
connection inside ``factory``; ``run_check`` awaits it in the same event loop as the check.

``run_check`` opens the store with the factory, runs the check and always closes it.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from exoimap.errors import FolderError, FolderNotFound, MessageError
from exoimap.store.base import (
    AppendItem,
    FetchedMessage,
    Folder,
    Store,
    UidRange,
    chunks_of,
    is_inbox,
)

__all__ = ["CHECKS", "Check", "ConformanceFailure", "StoreFactory", "run_check", "sample_message"]

Check = Callable[[Store], Awaitable[None]]
StoreFactory = Callable[[], Awaitable[Store]]

_DATE = _dt.datetime(2024, 3, 5, 14, 30, 7, tzinfo=_dt.timezone(_dt.timedelta(hours=2)))


class ConformanceFailure(AssertionError):
    """A store does not behave as the Store contract says."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise ConformanceFailure(what)


def sample_message(n: int, body_size: int = 200, *, message_id: bool = True) -> bytes:
    """A small RFC 5322 message whose bytes differ for every ``n``."""
    head = f"From: a{n}@example.com\r\nTo: b@example.com\r\nSubject: message {n}\r\n"
    if message_id:
        head += f"Message-ID: <m{n}@example.com>\r\n"
    body = (f"line {n} " * (body_size // 8 + 1))[:body_size]
    return (head + "\r\n" + body + "\r\n").encode()


async def _append(
    folder: Folder,
    datas: Sequence[bytes],
    flags: frozenset[str] = frozenset(),
    date: _dt.datetime = _DATE,
) -> list[int]:
    async def items() -> AsyncIterator[AppendItem]:
        for data in datas:
            yield AppendItem(
                chunks=chunks_of(data, 4096), size=len(data), flags=flags, internal_date=date
            )

    return await folder.append(items())


async def _read(message: FetchedMessage) -> bytes:
    return b"".join([chunk async for chunk in message.chunks])


async def _fetch_all(folder: Folder, uids: Sequence[int]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    async for message in folder.fetch(uids):
        out[message.uid] = await _read(message)
    return out


# --- checks ------------------------------------------------------------------------------


async def check_inbox_exists(store: Store) -> None:
    names = [f.name for f in await store.list_folders()]
    _expect(any(is_inbox(n) for n in names), f"INBOX missing from {names}")
    state = await store.folder_state("inbox")
    _expect(is_inbox(state.name), "INBOX must be found case-insensitively")
    _expect(state.exists == 0 and state.uidnext >= 1, f"a new INBOX must be empty: {state}")


async def check_create_list_delete(store: Store) -> None:
    d = store.delimiter
    name = f"Projects{d}2024{d}Q1"
    await store.create_folder(name)
    names = {f.name for f in await store.list_folders()}
    _expect(name in names, f"{name!r} not listed after create: {names}")
    _expect(f"Projects{d}2024" in names, "create must create missing parents")
    for info in await store.list_folders():
        _expect(info.delimiter in (d, None), f"unexpected delimiter {info.delimiter!r}")
    try:
        await store.create_folder(name)
    except FolderError:
        pass
    else:
        raise ConformanceFailure("creating an existing folder must raise FolderError")
    await store.delete_folder(name)
    names = {f.name for f in await store.list_folders()}
    _expect(name not in names, "deleted folder still listed")
    for call in (store.delete_folder("No such folder"), store.folder_state("No such folder")):
        try:
            await call
        except FolderNotFound:
            pass
        else:
            raise ConformanceFailure("a missing folder must raise FolderNotFound")
    try:
        async with store.open_folder("No such folder"):
            pass
    except FolderNotFound:
        pass
    else:
        raise ConformanceFailure("opening a missing folder must raise FolderNotFound")


async def check_odd_names_round_trip(store: Store) -> None:
    names = ["Ärger & Freude", "dots.in.name", "with space", "日本語", "a&b-c", "100%"]
    for name in names:
        await store.create_folder(name)
    listed = {f.name for f in await store.list_folders()}
    for name in names:
        _expect(name in listed, f"folder {name!r} did not round-trip: {sorted(listed)}")
        async with store.open_folder(name) as folder:
            await _append(folder, [sample_message(1)])
        _expect((await store.folder_state(name)).exists == 1, f"{name!r} lost its message")


async def check_append_fetch_exact(store: Store) -> None:
    datas = [
        sample_message(1),
        sample_message(2, 10_000),
        b"X-Odd: \x00\xff\r\nlone\rCR and 8-bit \xe4\xf6\xfc\n\r\n\r\nbody\r\n",
        sample_message(4, message_id=False),
    ]
    flags = frozenset({"\\Seen", "\\Flagged"})
    async with store.open_folder("INBOX") as folder:
        before = await folder.state()
        uids = await _append(folder, datas, flags)
        _expect(len(uids) == len(datas), f"append returned {uids}")
        _expect(uids == sorted(uids) and len(set(uids)) == len(uids), "UIDs must ascend")
        _expect(min(uids) >= before.uidnext, "new UIDs must be >= the old UIDNEXT")
        state = await folder.state()
        _expect(state.uidnext > max(uids), "UIDNEXT must exceed every UID")
        _expect(state.exists == len(datas), f"EXISTS {state.exists} != {len(datas)}")
        _expect(state.uidvalidity == before.uidvalidity, "UIDVALIDITY changed on append")
        seen: list[int] = []
        async for message in folder.fetch(list(reversed(uids))):
            data = await _read(message)
            index = uids.index(message.uid)
            _expect(data == datas[index], f"UID {message.uid}: bytes differ")
            _expect(message.size == len(datas[index]), "size must be the exact length")
            _expect(message.flags == flags, f"flags {message.flags} != {flags}")
            _expect(message.internal_date == _DATE, f"date {message.internal_date} != {_DATE}")
            seen.append(message.uid)
        _expect(seen == sorted(uids), f"fetch must yield ascending UIDs, got {seen}")


async def check_fetch_skips_missing_and_drains(store: Store) -> None:
    datas = [sample_message(n, 3000) for n in range(5)]
    async with store.open_folder("INBOX") as folder:
        uids = await _append(folder, datas)
        wanted = [*uids, max(uids) + 100, max(uids) + 101]
        got: list[int] = []
        async for message in folder.fetch(wanted):
            got.append(message.uid)
            if message.uid == uids[1]:
                await anext(message.chunks)  # read only part of it
                continue
            if message.uid == uids[2]:
                continue  # read nothing
            data = await _read(message)
            _expect(data == datas[uids.index(message.uid)], "bytes differ after a skipped body")
        _expect(got == uids, f"fetch must skip missing UIDs, got {got}")
        _expect(await _fetch_all(folder, []) == {}, "fetching no UIDs must yield nothing")


async def check_large_message_streams(store: Store) -> None:
    big = sample_message(7, 3 * 1024 * 1024)
    async with store.open_folder("INBOX") as folder:
        [uid] = await _append(folder, [big])
        chunks = 0
        total = bytearray()
        async for message in folder.fetch([uid]):
            _expect(message.size == len(big), "size of a large message")
            async for chunk in message.chunks:
                chunks += 1
                _expect(len(chunk) <= 4 * 1024 * 1024, "a chunk must be bounded")
                total += chunk
        _expect(bytes(total) == big, "large message bytes differ")
        _expect(chunks > 1, "a 3 MB body must arrive as more than one chunk")


async def check_flags(store: Store) -> None:
    caps = store.capabilities
    async with store.open_folder("INBOX") as folder:
        uids = await _append(folder, [sample_message(1), sample_message(2)])
        await folder.set_flags({uids[0]: frozenset({"\\seen", "\\ANSWERED"})})
        await folder.set_flags({uids[1]: frozenset({"\\Flagged", "$Forwarded", "work"})})
        await folder.set_flags({max(uids) + 50: frozenset({"\\Seen"})})  # missing: ignored
        listing = await folder.list_messages()
        flags = {m.uid: m.flags for m in listing.messages}
        _expect(flags[uids[0]] == {"\\Seen", "\\Answered"}, f"system flags: {flags[uids[0]]}")
        if caps.custom_keywords:
            want = {"\\Flagged", "$Forwarded", "work"}
        else:
            want = {"\\Flagged", "$Forwarded", "work"} & set(caps.permanent_flags)
        _expect(flags[uids[1]] == want, f"keywords: {flags[uids[1]]} != {want}")
        await folder.set_flags({uids[0]: frozenset()})
        listing = await folder.list_messages()
        _expect(
            {m.uid: m.flags for m in listing.messages}[uids[0]] == frozenset(),
            "clearing flags failed",
        )
        for message in listing.messages:
            _expect("\\Recent" not in message.flags, "\\Recent is not a stored flag")


async def check_expunge_never_reuses_uids(store: Store) -> None:
    async with store.open_folder("INBOX") as folder:
        uids = await _append(folder, [sample_message(n) for n in range(3)])
        await folder.expunge([uids[1], uids[2], max(uids) + 9])
        listing = await folder.list_messages()
        _expect([m.uid for m in listing.messages] == [uids[0]], "expunge removed the wrong UIDs")
        _expect(listing.state.exists == 1, "EXISTS after expunge")
        [again] = await _append(folder, [sample_message(9)])
        _expect(again > max(uids), "a UID must never be reused after expunge")
        _expect(set(await _fetch_all(folder, uids)) == {uids[0]}, "expunged UIDs still fetched")


async def check_listing_detail(store: Store) -> None:
    datas = [sample_message(1, 500), sample_message(2, 900, message_id=False)]
    async with store.open_folder("INBOX") as folder:
        uids = await _append(folder, datas)
        listing = await folder.list_messages(detail=True)
        _expect(listing.complete, "a full listing must say complete")
        by_uid = {m.uid: m for m in listing.messages}
        _expect(sorted(by_uid) == uids, "listing UIDs")
        first, second = by_uid[uids[0]], by_uid[uids[1]]
        _expect(first.message_id == "<m1@example.com>", f"Message-ID {first.message_id!r}")
        _expect(second.message_id is None, "a message without Message-ID must give None")
        _expect(first.internal_date == _DATE, "internal date in listing")
        if store.capabilities.exact_sizes:
            _expect(first.size == len(datas[0]), f"size {first.size} != {len(datas[0])}")
        _expect(listing.state.exists == 2, "listing state")
        sized = {m.uid: m for m in (await folder.list_messages(size_and_date=True)).messages}
        first = sized[uids[0]]
        _expect(first.internal_date == _DATE, "internal date in a size_and_date listing")
        _expect(first.size is not None, "size in a size_and_date listing")
        if store.capabilities.exact_sizes:
            _expect(first.size == len(datas[0]), f"size {first.size} != {len(datas[0])}")
        sampled = await folder.list_messages(size_and_date=frozenset({uids[1]}))
        second = {m.uid: m for m in sampled.messages}[uids[1]]
        _expect(second.internal_date == _DATE, "internal date of a sampled message")
        _expect(second.size is not None, "size of a sampled message")
        _expect(len(sampled.messages) == 2, "a sample adds sizes, it does not narrow the listing")


async def check_changed_since(store: Store) -> None:
    async with store.open_folder("INBOX") as folder:
        uids = await _append(folder, [sample_message(n) for n in range(3)])
        state = await folder.state()
        if not store.capabilities.condstore:
            listing = await folder.list_messages(changed_since=1)
            _expect(listing.complete, "without CONDSTORE a listing is always complete")
            _expect(len(listing.messages) == 3, "without CONDSTORE every message is listed")
            return
        _expect(state.highest_modseq is not None, "CONDSTORE store must give HIGHESTMODSEQ")
        mark = state.highest_modseq or 0
        await folder.set_flags({uids[1]: frozenset({"\\Seen"})})
        await folder.expunge([uids[2]])
        listing = await folder.list_messages(changed_since=mark)
        _expect(not listing.complete, "a changed_since listing is not complete")
        _expect([m.uid for m in listing.messages] == [uids[1]], "only changed messages listed")
        if store.capabilities.qresync:
            _expect(listing.vanished == frozenset({uids[2]}), f"vanished {listing.vanished}")


async def check_uid_ranges(store: Store) -> None:
    """A listing of a UID range holds exactly that range; an open-ended range past the
    newest UID is empty (IMAP's ``n:*`` also answers with the newest message)."""
    async with store.open_folder("INBOX") as folder:
        uids = await _append(folder, [sample_message(n) for n in range(5)])
        await folder.expunge([uids[2]])
        middle = await folder.list_messages(uids=UidRange(uids[1], uids[3]))
        _expect(middle.complete, "a range listing is complete for its range")
        got = [m.uid for m in middle.messages]
        _expect(got == [uids[1], uids[3]], f"range {uids[1]}:{uids[3]} listed {got}")
        tail = await folder.list_messages(uids=UidRange(uids[3]), detail=True)
        got = [m.uid for m in tail.messages]
        _expect(got == [uids[3], uids[4]], f"open range listed {got}")
        _expect(all(m.size for m in tail.messages), "a range listing with detail has sizes")
        past = await folder.list_messages(uids=UidRange(uids[4] + 1))
        got = [m.uid for m in past.messages]
        _expect(got == [], f"a range past the newest UID listed {got}")
        if store.capabilities.qresync:
            mark = (await folder.state()).highest_modseq or 0
            await folder.expunge([uids[0], uids[4]])
            changes = await folder.list_messages(changed_since=mark, uids=UidRange(uids[3]))
            _expect(changes.vanished == frozenset({uids[4]}), f"vanished {changes.vanished}")


COUNTED = "Zähler"


async def check_folder_states(store: Store) -> None:
    """Many folders' counters at once equal each one's own; a missing folder is left out,
    and with CONDSTORE any change raises HIGHESTMODSEQ (what a quick resync relies on)."""
    await store.create_folder(COUNTED)  # non-ASCII: replies are matched by decoded name
    async with store.open_folder(COUNTED) as folder:
        uids = await _append(folder, [sample_message(n) for n in range(2)])
    names = ["INBOX", COUNTED, "No such folder"]
    states = await store.folder_states(names)
    _expect(sorted(states) == sorted(["INBOX", COUNTED]), f"folder_states gave {sorted(states)}")
    for name in ("INBOX", COUNTED):
        alone = await store.folder_state(name)
        _expect(states[name] == alone, f"{name}: {states[name]} != {alone}")
    _expect(states[COUNTED].exists == 2, f"{COUNTED} holds 2, not {states[COUNTED].exists}")
    _expect(await store.folder_states([]) == {}, "no names, no states")
    if not store.capabilities.condstore:
        return
    before = states[COUNTED].highest_modseq or 0
    async with store.open_folder(COUNTED) as folder:
        await folder.set_flags({uids[0]: frozenset({"\\Flagged"})})
    flagged = (await store.folder_states([COUNTED]))[COUNTED].highest_modseq or 0
    _expect(flagged > before, "a flag change must raise HIGHESTMODSEQ")
    async with store.open_folder(COUNTED) as folder:
        await folder.expunge([uids[1]])
    expunged = (await store.folder_states([COUNTED]))[COUNTED]
    _expect((expunged.highest_modseq or 0) > flagged, "an expunge must raise HIGHESTMODSEQ")
    _expect(expunged.exists == 1, f"one message left, not {expunged.exists}")


async def check_rename_keeps_uids(store: Store) -> None:
    d = store.delimiter
    await store.create_folder("Old")
    await store.create_folder(f"Old{d}Child")
    async with store.open_folder("Old") as folder:
        uids = await _append(folder, [sample_message(1), sample_message(2)])
    before = await store.folder_state("Old")
    await store.rename_folder("Old", "New")
    names = {f.name for f in await store.list_folders()}
    _expect("New" in names and "Old" not in names, f"rename: {names}")
    _expect(f"New{d}Child" in names, "children must move with a rename")
    after = await store.folder_state("New")
    _expect(after.uidvalidity == before.uidvalidity, "rename must keep UIDVALIDITY")
    async with store.open_folder("New") as folder:
        got = await _fetch_all(folder, uids)
    _expect(got == {uids[0]: sample_message(1), uids[1]: sample_message(2)}, "rename lost data")
    try:
        await store.rename_folder("Nope", "Other")
    except FolderNotFound:
        pass
    else:
        raise ConformanceFailure("renaming a missing folder must raise FolderNotFound")


async def check_append_size_mismatch(store: Store) -> None:
    data = sample_message(1)
    async with store.open_folder("INBOX") as folder:

        async def items() -> AsyncIterator[AppendItem]:
            yield AppendItem(chunks=chunks_of(data), size=len(data) + 5)

        try:
            await folder.append(items())
        except MessageError:
            pass
        else:
            raise ConformanceFailure("a body shorter than announced must raise MessageError")
        _expect(await folder.append(_no_items()) == [], "appending nothing returns []")


async def _no_items() -> AsyncIterator[AppendItem]:
    return
    yield  # pragma: no cover - makes this an async generator


CHECKS: list[Check] = [
    check_inbox_exists,
    check_create_list_delete,
    check_odd_names_round_trip,
    check_append_fetch_exact,
    check_fetch_skips_missing_and_drains,
    check_large_message_streams,
    check_flags,
    check_expunge_never_reuses_uids,
    check_listing_detail,
    check_changed_since,
    check_uid_ranges,
    check_folder_states,
    check_rename_keeps_uids,
    check_append_size_mismatch,
]


def run_check(check: Check, factory: StoreFactory) -> None:
    """Run one check on a fresh store from ``factory`` (in a new event loop)."""

    async def main() -> None:
        store = await factory()
        try:
            await check(store)
        finally:
            await store.close()

    asyncio.run(main())
