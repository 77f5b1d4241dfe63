"""Who may do what in the console: one decision function, default deny.

Roles come from the ID token's ``roles`` claim (app roles of the console's app
registration). A role grants a set of actions; for actions on a mailbox the mailbox must also
be inside the role's scope: ``self`` covers the mailbox whose address is the person's own
sign-in name, the other roles the address patterns configured for them
(:class:`~exoimap.console.settings.ConsoleSettings.scopes`; no patterns, no mailboxes).
Several roles add up; an unknown role grants nothing. A role's scope may also carry a
window of archive dates (:class:`DateRange`): what lies outside it is not there for that role.

Break-glass: an ``admin`` who gave a reason and signed in again is given, for a limited
time, the content of one mailbox inside the admin scope (:attr:`Principal.break_glass`):
browse, search and read, through the same scope in the SQL as every other grant.
"""

from __future__ import annotations

import datetime as _dt
import enum
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from exoimap.store.search import Reach

__all__ = ["ROLES", "Action", "DateRange", "Decision", "Principal", "decide", "reaches", "window"]

#: Every role the console knows (the app role values to define in Entra ID).
ROLES = ("self", "restore_operator", "auditor", "compliance_officer", "admin", "audit_reader")


class Action(enum.Enum):
    """What a request does. ``SIGNED_IN`` is the least: being a known person at all."""

    SIGNED_IN = "signed_in"
    LIST_MAILBOXES = "mailboxes.list"
    SEE_ALL_ACCOUNTS = "accounts.list"  # every configured account by name, no mail
    BROWSE_MAILBOX = "mailbox.browse"  # folders and message headers (metadata)
    SEARCH = "search"  # headers in the mailboxes one may browse, text in those one may read
    READ_MESSAGE = "message.read"  # the content of a message
    RESTORE_MESSAGE = "message.restore"  # back into its own mailbox
    DOWNLOAD_MESSAGE = "message.download"  # the .eml or an attachment, as a file
    EXPORT_FOLDER = "folder.export"  # a folder as a file: only through a four-eyes request
    DELETE_MESSAGE = "message.delete"  # from the archive: only through a four-eyes request
    MANAGE_HOLDS = "holds.manage"  # place legal holds (releasing one takes four eyes)
    APPROVE = "approval.decide"  # approve or reject another person's request
    READ_AUDIT = "audit.read"  # the audit log
    VIEW_DASHBOARD = "dashboard.view"  # accounts, sync times and failures, no mail
    BREAK_GLASS = "break_glass"  # ask for a mailbox's content, with a reason (admin)


#: The actions each role grants. Admins run jobs and never read mail (no mailbox action).
_GRANTS: Mapping[str, frozenset[Action]] = {
    "self": frozenset(
        {
            Action.LIST_MAILBOXES,
            Action.BROWSE_MAILBOX,
            Action.SEARCH,
            Action.READ_MESSAGE,
            Action.RESTORE_MESSAGE,
            Action.DOWNLOAD_MESSAGE,
        }
    ),
    "restore_operator": frozenset(
        {Action.LIST_MAILBOXES, Action.BROWSE_MAILBOX, Action.SEARCH, Action.RESTORE_MESSAGE}
    ),
    "auditor": frozenset(
        {
            Action.LIST_MAILBOXES,
            Action.BROWSE_MAILBOX,
            Action.SEARCH,
            Action.READ_MESSAGE,
            Action.EXPORT_FOLDER,
        }
    ),
    "compliance_officer": frozenset(
        {
            Action.LIST_MAILBOXES,
            Action.SEE_ALL_ACCOUNTS,
            Action.DELETE_MESSAGE,
            Action.MANAGE_HOLDS,
            Action.APPROVE,
            Action.READ_AUDIT,
        }
    ),
    "admin": frozenset(
        {
            Action.LIST_MAILBOXES,
            Action.SEE_ALL_ACCOUNTS,
            Action.VIEW_DASHBOARD,
            Action.BREAK_GLASS,
        }
    ),
    "audit_reader": frozenset({Action.READ_AUDIT}),
}
_MAILBOX_ACTIONS = frozenset(
    {
        Action.BROWSE_MAILBOX,
        Action.READ_MESSAGE,
        Action.RESTORE_MESSAGE,
        Action.DOWNLOAD_MESSAGE,
        Action.EXPORT_FOLDER,
        Action.BREAK_GLASS,
    }
)
#: What a break-glass grant opens in its one mailbox (no download, restore or export).
_BREAK_GLASS_ACTIONS = frozenset({Action.BROWSE_MAILBOX, Action.SEARCH, Action.READ_MESSAGE})


@dataclass(frozen=True)
class DateRange:
    """Archive dates a role's scope is limited to: from ``after`` (its day included) up to
    ``before`` (its day excluded), in UTC; None: no bound on that side."""

    after: _dt.date | None = None
    before: _dt.date | None = None

    def reach(self, patterns: tuple[str, ...]) -> Reach:
        return Reach(patterns, _midnight(self.after), _midnight(self.before))

    @property
    def days(self) -> tuple[_dt.date | None, _dt.date | None]:
        """The first and last day inside (both included; None: unbounded)."""
        last = self.before - _dt.timedelta(days=1) if self.before is not None else None
        return self.after, last


def _midnight(day: _dt.date | None) -> _dt.datetime | None:
    return None if day is None else _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC)


@dataclass(frozen=True)
class Principal:
    """A signed-in person, as the ID token names them."""

    oid: str
    upn: str
    name: str
    roles: frozenset[str]
    #: The address of the mailbox an active break-glass grant opens ("" for none).
    break_glass: str = ""

    @property
    def known_roles(self) -> tuple[str, ...]:
        return tuple(r for r in ROLES if r in self.roles)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _in_scope(
    role: str, principal: Principal, mailbox: str, scopes: Mapping[str, tuple[str, ...]]
) -> bool:
    address = mailbox.casefold()
    if role == "self":
        return bool(principal.upn) and address == principal.upn.casefold()
    return any(fnmatch.fnmatchcase(address, p.casefold()) for p in scopes.get(role, ()))


def _glob_literal(address: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in address)


def _break_glass_open(principal: Principal, action: Action) -> bool:
    return (
        bool(principal.break_glass)
        and "admin" in principal.roles
        and (action in _BREAK_GLASS_ACTIONS)
    )


def reaches(
    principal: Principal,
    action: Action,
    scopes: Mapping[str, tuple[str, ...]],
    ranges: Mapping[str, DateRange] | None = None,
) -> tuple[Reach, ...]:
    """Where ``principal`` may do ``action`` (a mailbox action): the mailboxes (address
    patterns) and date windows that the SQL of every query for it carries, matching
    mailbox by mailbox what :func:`decide` allows."""
    found: list[Reach] = []
    windows = ranges or {}
    for role in principal.known_roles:
        if action not in _GRANTS[role]:
            continue
        if role == "self":
            if principal.upn:
                found.append(Reach((_glob_literal(principal.upn),)))
        elif scopes.get(role):
            found.append(windows.get(role, DateRange()).reach(scopes[role]))
    if _break_glass_open(principal, action):
        found.append(
            windows.get("admin", DateRange()).reach((_glob_literal(principal.break_glass),))
        )
    return tuple(dict.fromkeys(found))


def window(
    principal: Principal,
    action: Action,
    mailbox: str,
    scopes: Mapping[str, tuple[str, ...]],
    ranges: Mapping[str, DateRange],
) -> DateRange:
    """The date window of the first of ``principal``'s roles that allows ``action`` on
    ``mailbox`` (for a selection outside the search index: an export, a restore)."""
    for role in principal.known_roles:
        if action in _GRANTS[role] and _in_scope(role, principal, mailbox, scopes):
            return ranges.get(role, DateRange())
    return DateRange()


def decide(
    principal: Principal | None,
    action: Action,
    mailbox: str | None = None,
    scopes: Mapping[str, tuple[str, ...]] | None = None,
) -> Decision:
    """May ``principal`` do ``action`` (on the mailbox with address ``mailbox``)?"""
    if principal is None:
        return Decision(False, "not signed in")
    if action is Action.SIGNED_IN:
        return Decision(True, "signed in")
    if _break_glass_open(principal, action) and (
        mailbox is None or mailbox.casefold() == principal.break_glass.casefold()
    ):
        return Decision(True, f"break-glass on {principal.break_glass}")
    granting = [r for r in principal.known_roles if action in _GRANTS[r]]
    if not granting:
        return Decision(False, "no role of this person allows it")
    if action not in _MAILBOX_ACTIONS:
        return Decision(True, f"role {granting[0]}")
    if mailbox is None:
        return Decision(False, "no such mailbox")
    for role in granting:
        if _in_scope(role, principal, mailbox, scopes or {}):
            return Decision(True, f"role {role}")
    return Decision(False, "the mailbox is outside the scope of this person's roles")
