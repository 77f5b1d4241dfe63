"""The command tables of the sandbox server: every command a client may send in some state
has exactly one answer, from the session itself or from the mailbox handlers."""

from __future__ import annotations

from exoimap.protocol import commands as c
from exoimap.sandbox.exchange import handlers, session


def test_every_allowed_command_has_exactly_one_handler() -> None:
    allowed = {
        *session._ANY_STATE,
        *session._NOT_AUTHENTICATED,
        *session._AUTHENTICATED,
        *session._SELECTED,
    }
    by_session = set(session._SESSION_COMMANDS)
    by_mailbox = set(handlers._HANDLERS) | {c.Fetch}  # FETCH is awaited apart
    assert not by_session & by_mailbox
    assert allowed == by_session | by_mailbox


def test_folder_actions_cover_the_folder_commands() -> None:
    managed = {kind for kind, handler in handlers._HANDLERS.items() if handler is handlers._manage}
    assert managed == set(handlers._FOLDER_ACTIONS)
    assert managed == {c.Create, c.Delete, c.Rename, c.Subscribe, c.Unsubscribe}
