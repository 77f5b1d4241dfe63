"""Who may do what in the console: one decision function, default deny.

Roles come from the ID token's ``roles`` claim (app roles of the console's app
registration). A role grants a set of actions; for actions on a mailbox the mailbox must also
be inside the role's scope: ``self`` covers the mailbox whose address is the person's own
sign-in name, the other roles the address patterns configured for them
(:class:`~exoimap.console.settings.ConsoleSettings.scopes`; no patterns, no mailboxes).
Several roles add up; an unknown role grants nothing.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ROLES", "Action", "Decision", "Principal", "decide", "scope_patterns"]

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
        }
    ),
    "admin": frozenset({Action.LIST_MAILBOXES, Action.SEE_ALL_ACCOUNTS, Action.VIEW_DASHBOARD}),
    "audit_reader": frozenset({Action.READ_AUDIT}),
}
_MAILBOX_ACTIONS = frozenset(
    {
        Action.BROWSE_MAILBOX,
        Action.READ_MESSAGE,
        Action.RESTORE_MESSAGE,
        Action.DOWNLOAD_MESSAGE,
        Action.EXPORT_FOLDER,
    }
)


@dataclass(frozen=True)
class Principal:
    """A signed-in person, as the ID token names them."""

    oid: str
    upn: str
    name: str
    roles: frozenset[str]

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


def scope_patterns(
    principal: Principal, action: Action, scopes: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """The address patterns of the mailboxes where ``principal`` may do ``action`` (a
    mailbox action): what a search puts into its SQL, matching exactly what
    :func:`decide` allows mailbox by mailbox."""
    patterns: list[str] = []
    for role in principal.known_roles:
        if action not in _GRANTS[role]:
            continue
        if role == "self":
            if principal.upn:
                patterns.append(_glob_literal(principal.upn))
        else:
            patterns.extend(scopes.get(role, ()))
    return tuple(dict.fromkeys(patterns))


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
