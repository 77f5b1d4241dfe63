"""The console's policy on its own: default deny, roles add up, scopes by address pattern."""

from __future__ import annotations

import pytest

from exoimap.console.policy import ROLES, Action, Principal, decide
from exoimap.console.sessions import SessionStore

SCOPES = {"auditor": ("*@contoso.com",), "restore_operator": ("ann@contoso.com",)}


def person(*roles: str, upn: str = "ann@contoso.com") -> Principal:
    return Principal(oid="o", upn=upn, name="Ann", roles=frozenset(roles))


@pytest.mark.parametrize("action", list(Action))
def test_nobody_signed_in_may_do_anything(action: Action) -> None:
    assert not decide(None, action, "ann@contoso.com", SCOPES).allowed


@pytest.mark.parametrize("action", [a for a in Action if a is not Action.SIGNED_IN])
def test_unknown_or_no_roles_grant_nothing(action: Action) -> None:
    for roles in ((), ("Global Administrator",), ("SELF",)):
        assert not decide(person(*roles), action, "ann@contoso.com", SCOPES).allowed


def test_self_is_the_own_mailbox_only_case_insensitively() -> None:
    me = person("self", upn="Ann@Contoso.com")
    assert decide(me, Action.READ_MESSAGE, "ann@contoso.com", SCOPES).allowed
    assert not decide(me, Action.READ_MESSAGE, "bob@contoso.com", SCOPES).allowed
    assert not decide(person("self", upn=""), Action.READ_MESSAGE, "", SCOPES).allowed


def test_scoped_roles_need_patterns_and_roles_add_up() -> None:
    operator = person("restore_operator", upn="helpdesk@contoso.com")
    assert decide(operator, Action.BROWSE_MAILBOX, "ann@contoso.com", SCOPES).allowed
    assert not decide(operator, Action.BROWSE_MAILBOX, "bob@contoso.com", SCOPES).allowed
    assert not decide(operator, Action.READ_MESSAGE, "ann@contoso.com", SCOPES).allowed
    assert not decide(person("auditor"), Action.BROWSE_MAILBOX, "ann@contoso.com", {}).allowed
    both = person("restore_operator", "auditor", upn="x@contoso.com")
    assert decide(both, Action.READ_MESSAGE, "bob@contoso.com", SCOPES).allowed
    assert not decide(both, Action.READ_MESSAGE, "bob@fabrikam.com", SCOPES).allowed


def test_admin_and_compliance_see_accounts_but_never_mail() -> None:
    everything = {role: ("*",) for role in ROLES if role != "self"}
    for role in ("admin", "compliance_officer", "audit_reader"):
        someone = person(role)
        assert not decide(someone, Action.BROWSE_MAILBOX, "ann@contoso.com", everything).allowed
        assert not decide(someone, Action.READ_MESSAGE, "ann@contoso.com", everything).allowed
    assert decide(person("admin"), Action.SEE_ALL_ACCOUNTS).allowed
    assert not decide(person("auditor"), Action.SEE_ALL_ACCOUNTS).allowed
    assert not decide(person("audit_reader"), Action.LIST_MAILBOXES).allowed


def test_ended_sessions_are_forgotten_and_sign_ins_taken_once() -> None:
    clock = [0.0]
    store = SessionStore(idle=10, absolute=100, clock=lambda: clock[0])
    first = store.create(person("auditor"))
    clock[0] = 11
    second = store.create(person("auditor"))
    assert len(store) == 1  # the idle one went when the next was made
    assert store.get(first) is None
    assert store.get(second) is not None
    pending = store.start_sign_in({"state": "s"})
    assert store.take_sign_in(pending) == {"state": "s"}
    assert store.take_sign_in(pending) is None
    late = store.start_sign_in({"state": "t"})
    clock[0] += 601
    assert store.take_sign_in(late) is None
