"""STATUS for :mod:`exoimap.store.remote`: one folder, or many pipelined on one connection.

STATUS of the mailbox a session has selected may answer from the session's old view (RFC
3501 6.3.10 allows it, and Dovecot does: another client's expunge goes unseen), so the
selected mailbox is left first (UNSELECT), or, when it must stay selected, a NOOP goes ahead
of the STATUS to catch up.
"""

from __future__ import annotations

from collections.abc import Sequence

from exoimap.errors import FolderError, FolderNotFound
from exoimap.net.imap import ImapClient, no_uidvalidity
from exoimap.net.session import ImapSession, Reply
from exoimap.protocol import commands as c
from exoimap.protocol.types import SimpleCode, StatusData
from exoimap.store.base import FolderState, is_inbox
from exoimap.untrusted import shown

__all__ = ["canonical", "missing_folder", "status_many", "status_of"]


def missing_folder(reply: Reply) -> bool:
    """The server says the folder does not exist (NONEXISTENT or its words for it)."""
    code = reply.done.code
    text = reply.done.text.lower()
    return (isinstance(code, SimpleCode) and code.name == "NONEXISTENT") or (
        "doesn't exist" in text or "not exist" in text or "unknown mailbox" in text
    )


def _items(condstore: bool) -> tuple[str, ...]:
    return ("MESSAGES", "UIDNEXT", "UIDVALIDITY") + (("HIGHESTMODSEQ",) if condstore else ())


def canonical(name: str) -> str:
    return "INBOX" if is_inbox(name) else name


async def _before_status(s: ImapSession, *, keep_selected: bool) -> str | None:
    """Leave the selected mailbox, or catch it up (see above); the tag to wait for."""
    if s.selected is None:
        return None
    if not keep_selected and "UNSELECT" in s.capabilities:
        s.selected = None
        return await s.send_paced(c.Unselect())
    return await s.send_paced(c.Noop())


async def _replies(
    client: ImapClient, names: Sequence[str], condstore: bool, *, keep_selected: bool
) -> list[tuple[str, Reply]]:
    """One STATUS per name, all sent at once."""
    commands = [(n, c.StatusCommand(canonical(n), _items(condstore))) for n in names]

    async def go(s: ImapSession) -> list[tuple[str, Reply]]:
        first = await _before_status(s, keep_selected=keep_selected)
        tags = [(name, await s.send_paced(command)) for name, command in commands]
        if first is not None:
            await s.wait(first)
        replies = [(name, await s.wait(tag)) for name, tag in tags]
        for _name, reply in replies:
            s.check_throttle(reply)
        return replies

    return await client.run(go)


async def status_of(
    client: ImapClient, name: str, condstore: bool, *, keep_selected: bool = False
) -> FolderState:
    """One folder's counters (FolderNotFound when it does not exist)."""
    [(_name, reply)] = await _replies(client, [name], condstore, keep_selected=keep_selected)
    return _state_in(name, reply, condstore)


async def status_many(
    client: ImapClient, names: Sequence[str], condstore: bool
) -> dict[str, FolderState]:
    """Every folder's counters in one round trip; a folder deleted since it was listed, or
    whose STATUS fails, is left out (its own sync meets the problem and reports it)."""
    states: dict[str, FolderState] = {}
    for name, reply in await _replies(client, names, condstore, keep_selected=False):
        try:
            states[name] = _state_in(name, reply, condstore)
        except FolderError:  # FolderNotFound included
            continue
    return states


def _state_in(name: str, reply: Reply, condstore: bool) -> FolderState:
    """The counters in a STATUS reply (FolderNotFound / FolderError when refused)."""
    if not reply.ok:
        if missing_folder(reply) or "NONEXISTENT" in repr(reply.done.code):
            raise FolderNotFound(f"no folder {name!r}", folder=name)
        raise FolderError(f"STATUS {name!r} failed: {shown(reply.done.text)}", folder=name)
    wanted = canonical(name)
    for r in reply.untagged:
        # pipelined STATUS replies all see every untagged STATUS: match by mailbox name
        if isinstance(r, StatusData) and canonical(r.mailbox) == wanted:
            if not r.get("UIDVALIDITY"):
                raise FolderError(no_uidvalidity(name), folder=name)
            return FolderState(
                name=wanted,
                uidvalidity=r.get("UIDVALIDITY") or 0,
                uidnext=r.get("UIDNEXT") or 1,
                exists=r.get("MESSAGES") or 0,
                highest_modseq=r.get("HIGHESTMODSEQ") if condstore else None,
            )
    raise FolderError(f"STATUS {name!r} gave no data", folder=name)
