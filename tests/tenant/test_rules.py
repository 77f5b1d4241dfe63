"""Discovery filters and the retry rule, on their own."""

from __future__ import annotations

import pytest

from exoimap.errors import ConfigError, InsufficientPermission, NetworkError
from exoimap.tenant.discover import check_filters, matches
from exoimap.tenant.jobs import should_retry
from exoimap.tenant.lease import LeaseBusy
from exoimap.tenant.run_mailbox import PartialBackup


@pytest.mark.parametrize(
    ("upn", "include", "exclude", "kept"),
    [
        ("a@contoso.com", [], [], True),
        ("a@contoso.com", ["@contoso.com"], [], True),
        ("a@sub.contoso.com", ["@contoso.com"], [], False),  # a domain entry is exact
        ("A@Contoso.com", ["@CONTOSO.COM"], [], True),  # case does not matter
        ("sales-1@contoso.com", ["sales-*@*"], [], True),
        ("hr@contoso.com", ["sales-*@*"], [], False),
        ("sales-1@contoso.com", ["sales-*@*"], ["sales-1@*"], False),  # exclude wins
        ("a@test.contoso.com", [], ["@test.contoso.com"], False),
    ],
)
def test_filters(upn: str, include: list[str], exclude: list[str], kept: bool) -> None:
    assert matches(upn, include, exclude) is kept


@pytest.mark.parametrize(
    ("upn", "include", "exclude", "kept"),
    [
        ("a@contoso.com", ["group:g1"], [], True),
        ("B@contoso.com", ["group:g1"], [], True),  # members are compared in lower case
        ("c@contoso.com", ["group:g1"], [], False),
        ("c@contoso.com", ["group:g1", "c@*"], [], True),
        ("a@contoso.com", [], ["GROUP:g1"], False),  # the prefix in any case
        ("a@contoso.com", ["group:unknown"], [], False),
    ],
)
def test_group_filters(upn: str, include: list[str], exclude: list[str], kept: bool) -> None:
    groups = {"g1": frozenset({"a@contoso.com", "b@contoso.com"})}
    assert matches(upn, include, exclude, groups) is kept


@pytest.mark.parametrize("entry", ["", " ", "@", "group:"])
def test_empty_filter_entries_are_refused(entry: str) -> None:
    with pytest.raises(ConfigError, match="empty filter entry"):
        check_filters([entry])


def test_transient_failures_are_retried_until_the_limit() -> None:
    for error in (NetworkError("gone"), PartialBackup("one folder failed"), OSError("disk")):
        assert should_retry(0, error, 3)
        assert should_retry(2, error, 3)
        assert not should_retry(3, error, 3)


def test_permanent_failures_go_to_the_dead_letters_at_once() -> None:
    assert not should_retry(0, InsufficientPermission("no FullAccess"), 8)
    assert not should_retry(0, ConfigError("mailbox gone from the catalog"), 8)


def test_a_busy_mailbox_waits_longer_than_a_failure_is_retried() -> None:
    assert should_retry(8, LeaseBusy("busy"), 8)
    assert not should_retry(1000, LeaseBusy("busy"), 8)
