"""The sync state kept in memory, for targets other than the archive."""

from __future__ import annotations

import asyncio

from exoimap.store.conformance import sample_message
from exoimap.store.memory import MemoryStore
from exoimap.store.sync_state import MemorySyncState
from exoimap.sync import sync, verify


def test_the_memory_state_forgets_target_uids_of_an_old_uidvalidity() -> None:
    async def main() -> None:
        source = MemoryStore()
        for n in range(3):
            source.add_message("INBOX", sample_message(n))
        target, state = MemoryStore(), MemorySyncState()
        assert (await sync(source, target, state)).fetched == 3
        # another client moves the first message to the end, then the server renumbers:
        # the target's UIDs 1-3 now name the messages 2, 3, 1
        first = target.message_bytes("INBOX", 1)
        target.expunge_now("INBOX", [1])
        target.add_message("INBOX", first)
        target.reset_uidvalidity("INBOX")
        again = await sync(source, target, state)
        assert (again.fetched, sum(f.rematched for f in again.folders)) == (0, 3)
        assert (await verify(source, target, state, deep=True)).ok
        async with target.open_folder("INBOX") as inbox:
            assert len((await inbox.list_messages()).messages) == 3

    asyncio.run(main())
