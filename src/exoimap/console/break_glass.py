"""Break-glass: an administrator's time-limited access to the content of one mailbox.

An ``admin`` reads no mail. In an emergency they ask for one mailbox inside the admin scope,
give a reason, and sign in again at the identity platform (``prompt=login``: the password
is asked again even where a sign-in session exists); the console then opens that mailbox to
them for ``break_glass_minutes``, shows a banner on every page, and lets them end it early.
Every step is an audit event (``console.break_glass``). What it opens is decided by
:func:`~exoimap.console.policy.decide` and put into the SQL of every query by
:func:`~exoimap.console.policy.reaches`, as for every other grant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from exoimap.console.policy import Principal

__all__ = [
    "MAX_REASON",
    "REAUTH_SECONDS",
    "Ask",
    "Grant",
    "normal_reason",
    "opened_to",
    "reason_refusal",
]

#: The longest reason accepted (characters, after runs of white space became one space).
MAX_REASON = 500
#: How long the second sign-in may take once asked for.
REAUTH_SECONDS = 600.0


@dataclass(frozen=True)
class Ask:
    """A break-glass asked for, waiting for the second sign-in."""

    session_id: str = dataclasses.field(repr=False)
    oid: str
    account: str
    email: str
    reason: str
    asked: float  # wall clock (epoch seconds)


@dataclass(frozen=True)
class Grant:
    """An active break-glass: ``email``'s content until ``expires`` (epoch seconds)."""

    account: str
    email: str
    reason: str
    started: float
    expires: float

    def active(self, now: float) -> bool:
        return now < self.expires


def reason_refusal(text: str) -> str:
    """Why ``text`` is not an acceptable reason ("" when it is)."""
    if not text:
        return "give a reason"
    if len(text) > MAX_REASON:
        return f"the reason is too long (at most {MAX_REASON} characters)"
    return ""


def normal_reason(text: str) -> str:
    """The reason as recorded: without control characters, white space runs as one."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def opened_to(principal: Principal, grant: Grant | None, now: float) -> Principal:
    """``principal`` as this request sees them: with the mailbox of their active grant."""
    if grant is None or not grant.active(now):
        return principal
    return dataclasses.replace(principal, break_glass=grant.email)
