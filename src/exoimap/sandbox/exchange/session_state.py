"""The states of a sandbox IMAP connection.

A module of its own because both the session (which moves between them) and the mailbox
handlers (SELECT, CLOSE and APPEND look at or change them) need it, and neither may
import the other's module for it.
"""

from __future__ import annotations

import enum

__all__ = ["SessionState"]


class SessionState(enum.Enum):
    NOT_AUTHENTICATED = "not-authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    # signed in without a mailbox to connect to: every command but LOGOUT is refused
    NOT_CONNECTED = "authenticated-but-not-connected"
    LOGOUT = "logout"
