"""Scopes with date windows in console.toml, and what break-glass opens, on their own:
the settings (one-line errors for bad dates), and the reaches the SQL of every query
carries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.console.break_glass import MAX_REASON, Grant, normal_reason, opened_to, reason_refusal
from exoimap.console.policy import Action, DateRange, Principal, decide, reaches, window
from exoimap.console.settings import ConsoleSettings, load_settings
from exoimap.errors import ConfigError
from exoimap.store.search import Reach

HEAD = 'authority = "https://login.example/t"\nclient_id = "c"\n'
SCOPES = {"auditor": ("*@contoso.com",), "admin": ("*@contoso.com",)}
YEAR_2024 = DateRange(dt.date(2024, 1, 1), dt.date(2025, 1, 1))


def _load(tmp_path: Path, text: str) -> ConsoleSettings:
    path = tmp_path / "console.toml"
    path.write_text(HEAD + text)
    return load_settings(path, public_url="https://c.example", environ={})


def test_a_scope_table_names_mailboxes_domains_and_a_date_window(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        'break_glass_minutes = 5\n[scopes]\nrestore_operator = ["*@x.example"]\n'
        '[scopes.auditor]\nmailboxes = ["ann@contoso.com"]\ndomains = ["fabrikam.example"]\n'
        'after = "2024-01-01"\nbefore = 2025-01-01\n',
    )
    assert settings.scopes == {
        "restore_operator": ("*@x.example",),
        "auditor": ("ann@contoso.com", "*@fabrikam.example"),
    }
    assert settings.date_ranges == {"auditor": YEAR_2024}
    assert settings.break_glass_minutes == 5
    assert YEAR_2024.days == (dt.date(2024, 1, 1), dt.date(2024, 12, 31))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('after = "2024-13-01"', "scopes.auditor.after must be a date such as 2024-01-31"),
        ('before = "yesterday"', "scopes.auditor.before must be a date such as 2024-01-31"),
        ("before = 2024-01-01T10:00:00Z", "scopes.auditor.before must be a date"),
        (
            'after = "2025-01-01"\nbefore = "2024-01-01"',
            "after \\(2025-01-01\\) must be earlier than before",
        ),
        ('since = "2024-01-01"', "scopes.auditor: unknown key 'since'"),
        ("domains = [1]", "scopes.auditor.domains must be a list of address patterns"),
    ],
)
def test_bad_scope_tables_are_one_line_errors(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _load(tmp_path, f'[scopes.auditor]\nmailboxes = ["*"]\n{table}\n')
    assert "\n" not in str(caught.value)


def test_the_console_command_reports_a_bad_date_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    settings = tmp_path / "console.toml"
    settings.write_text(HEAD + '[scopes.auditor]\nmailboxes = ["*"]\nafter = "2024-02-30"\n')
    assert main(["console", "--listen", "127.0.0.1:0", "--settings", str(settings)]) != 0
    err = capsys.readouterr().err
    assert "scopes.auditor.after must be a date such as 2024-01-31, not '2024-02-30'" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _admin(**extra: str) -> Principal:
    return Principal("oid-admin", "root@contoso.com", "Root", frozenset({"admin"}), **extra)


def test_an_admin_reads_nothing_without_break_glass() -> None:
    admin = _admin()
    for action in (Action.BROWSE_MAILBOX, Action.READ_MESSAGE, Action.DOWNLOAD_MESSAGE):
        assert not decide(admin, action, "ann@contoso.com", SCOPES).allowed
        assert reaches(admin, action, SCOPES) == ()
    assert not decide(admin, Action.SEARCH).allowed
    assert decide(admin, Action.BREAK_GLASS, "ann@contoso.com", SCOPES).allowed
    assert not decide(admin, Action.BREAK_GLASS, "dan@fabrikam.example", SCOPES).allowed
    assert not decide(admin, Action.BREAK_GLASS, "ann@contoso.com", {}).allowed


def test_break_glass_opens_one_mailbox_for_reading_within_the_admin_window() -> None:
    admin = _admin(break_glass="ann@contoso.com")
    for action in (Action.BROWSE_MAILBOX, Action.READ_MESSAGE):
        assert decide(admin, action, "ANN@contoso.com", SCOPES).allowed
        assert not decide(admin, action, "bob@contoso.com", SCOPES).allowed
    assert decide(admin, Action.SEARCH).allowed
    for action in (Action.DOWNLOAD_MESSAGE, Action.RESTORE_MESSAGE, Action.EXPORT_FOLDER):
        assert not decide(admin, action, "ann@contoso.com", SCOPES).allowed
    assert reaches(admin, Action.READ_MESSAGE, SCOPES, {"admin": YEAR_2024}) == (
        Reach(
            ("ann@contoso.com",),
            dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        ),
    )
    # another role's break-glass field opens nothing: it is the admin's grant
    auditor = Principal("o", "a@contoso.com", "A", frozenset({"audit_reader"}), "ann@contoso.com")
    assert not decide(auditor, Action.READ_MESSAGE, "ann@contoso.com", SCOPES).allowed
    assert reaches(auditor, Action.READ_MESSAGE, SCOPES) == ()


def test_a_grant_opens_only_while_it_lasts() -> None:
    grant = Grant("own", "ann@contoso.com", "incident 42", started=1000.0, expires=2800.0)
    assert opened_to(_admin(), grant, 2799.0).break_glass == "ann@contoso.com"
    assert opened_to(_admin(), grant, 2800.0).break_glass == ""
    assert opened_to(_admin(), None, 0.0).break_glass == ""


def test_the_reason_is_required_bounded_and_kept_on_one_line() -> None:
    assert reason_refusal(normal_reason("  \t\n ")) == "give a reason"
    assert "too long" in reason_refusal("x" * (MAX_REASON + 1))
    assert reason_refusal("x" * MAX_REASON) == ""
    assert normal_reason("ticket\n 42\u202e\x00 <b>") == "ticket 42 <b>"


def test_scope_windows_of_each_role_reach_the_sql_and_the_selections() -> None:
    auditor = Principal("o", "a@contoso.com", "A", frozenset({"auditor", "self"}))
    ranges = {"auditor": YEAR_2024}
    assert set(reaches(auditor, Action.READ_MESSAGE, SCOPES, ranges)) == {
        Reach(("a@contoso.com",)),  # self: the own mailbox, no window
        YEAR_2024.reach(("*@contoso.com",)),
    }
    assert window(auditor, Action.EXPORT_FOLDER, "b@contoso.com", SCOPES, ranges) == YEAR_2024
    assert window(auditor, Action.EXPORT_FOLDER, "b@fabrikam.example", SCOPES, ranges) == (
        DateRange()
    )
