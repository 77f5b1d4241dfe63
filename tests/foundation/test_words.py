"""Words (issue 23, item 10): counts with the right plural, messages joined as sentences,
redaction that masks values and keeps sentences, client ids and tenants checked, and
throttling waits counted as the wall time they took."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.cli.progress import SyncDisplay, WaitClock
from exoimap.config import parse_config
from exoimap.errors import AuthError, ConfigError, ImapAuthenticationFailed, TokenExpiredOrRevoked
from exoimap.logs import redact, setup_logging
from exoimap.net.session import NetEvent
from exoimap.words import byte_size, first_few, noun, plural, sentences


def test_plural_and_sentences() -> None:
    assert [plural(n, "message") for n in (0, 1, 2)] == ["0 messages", "1 message", "2 messages"]
    assert plural(1, "flag change") == "1 flag change"
    assert noun(3, "entry", "entries") == "entries"
    assert sentences("a is wrong", "Do b.") == "a is wrong. Do b."
    assert sentences("a is wrong.", None, "", "Run `x`") == "a is wrong. Run `x`."
    assert sentences("see the list:") == "see the list:"


def test_first_few_numbers_say_when_there_are_more() -> None:
    assert first_few([3, 1, 2]) == "3, 1, 2"
    assert first_few(list(range(1, 11))) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert first_few(list(range(1, 12))) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ..."
    assert first_few([5, 6, 7], shown=2) == "5, 6 ..."


def test_an_error_and_its_fix_are_two_sentences() -> None:
    error = TokenExpiredOrRevoked(
        "account 'work' is not signed in", fix="Sign in with `exoimap login work`."
    )
    assert str(error) == "account 'work' is not signed in. Sign in with `exoimap login work`."
    assert error.message == "account 'work' is not signed in"
    explained = ImapAuthenticationFailed(
        "the server refused the sign-in", causes=("one", "two"), fix="Check the app"
    )
    assert str(explained) == (
        "the server refused the sign-in. Likely causes: one; two. Check the app."
    )
    assert str(AuthError("already a sentence.", fix="Fix it.")) == "already a sentence. Fix it."


@pytest.mark.parametrize(
    "text",
    [
        "/home/u/config.toml: password: unknown key (known keys: accounts, audit, logging)",
        "accounts.work.password: secrets are never stored in the config file",
        "token: not needed for this flow",
    ],
)
def test_redaction_keeps_a_sentence_after_a_key(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("password: hunter2", "hunter2"),
        ("password: hunter2 is set", "hunter2"),
        ("secret=words and more", "words"),
        ('{"token": "two words"}', "two words"),
        ("passphrase:\tcorrect-horse", "correct-horse"),
    ],
)
def test_redaction_still_masks_values(text: str, value: str) -> None:
    assert value not in redact(text)


def test_a_secret_looking_top_level_key_is_reported_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text('password = "hunter2"\n')
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "password: unknown key (known keys: accounts, audit, logging)." in err
    assert "***" not in err
    assert "hunter2" not in err
    setup_logging(0)
    logging.getLogger("exoimap.test").warning("%s", err.strip())
    assert "***" not in capsys.readouterr().err


def _account(**keys: object) -> None:
    table = {"email": "a@contoso.example", **keys}
    parse_config({"accounts": {"work": table}}, Path("config.toml")).account("work")


def test_a_client_id_must_be_a_guid() -> None:
    _account(client_id="0D1E2F3A-0000-4000-8000-000000000001")
    with pytest.raises(ConfigError) as info:
        _account(client_id="my-app")
    assert "accounts.work.client_id: 'my-app' is not an Application (client) ID" in str(info.value)
    assert "GUID" in str(info.value)


def test_a_tenant_must_agree_with_a_custom_authority() -> None:
    custom = {"cloud": "custom", "imap_host": "127.0.0.1"}
    _account(**custom, authority="https://login.example/contoso.example", tenant="Contoso.example")
    _account(**custom, authority="https://login.example/contoso.example")
    with pytest.raises(ConfigError) as info:
        _account(**custom, authority="https://login.example/contoso.example", tenant="fabrikam.com")
    message = str(info.value)
    assert "accounts.work.tenant: the tenant 'fabrikam.com' contradicts the authority" in message
    assert "whose tenant is 'contoso.example'" in message


def test_account_add_refuses_both_before_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    base = ["account", "add", "work", "--email", "a@contoso.example"]
    assert main([*base, "--client-id", "not-a-guid", "--tenant", "contoso.example"]) == 2
    assert "is not an Application (client) ID" in capsys.readouterr().err
    custom = ["--cloud", "custom", "--imap-host", "127.0.0.1"]
    authority = ["--authority", "https://127.0.0.1:8443/11111111-2222-3333-4444-555555555555"]
    guid = ["--client-id", "0d1e2f3a-0000-4000-8000-000000000001"]
    assert main([*base, *custom, *authority, *guid, "--tenant", "fabrikam.com"]) == 2
    assert "contradicts the authority" in capsys.readouterr().err
    assert not (tmp_path / "config.toml").exists()


def test_overlapping_waits_count_once() -> None:
    clock = WaitClock()
    clock.add(10.0, 4.5)  # two connections told to wait at about the same time
    clock.add(11.0, 4.5)
    clock.add(30.0, 2.0)  # and one later
    assert clock.count == 3
    assert clock.waited() == pytest.approx(5.5 + 2.0)
    assert clock.waited(now=12.0) == pytest.approx(2.0)  # only what has passed so far


def test_the_display_says_each_wait_once_and_sums_wall_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [100.0]
    event = NetEvent("throttled", "127.0.0.1", 993, detail="Request is throttled.", wait=4.5)
    with SyncDisplay(rich=False, clock=lambda: now[0]) as display:
        for _ in range(4):  # four connections throttled within one second
            display.net_event("work", event)
            now[0] += 0.25
        now[0] = 123.6
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["  work: the server asked us to slow down; waiting 4.5 s."] * 4
    count, waited = display.throttle_summary("work")
    assert count == 4
    assert waited == pytest.approx(4.5 + 0.75)  # not 18 s: the waits overlapped


def test_login_help_names_the_flows_and_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from exoimap.auth.vault import KEY_FILE_ENV, NO_KEYRING_ENV, PASSPHRASE_ENV
    from exoimap.config import FLOWS

    assert main(["login", "--help"]) == 0
    out = capsys.readouterr().out
    for flow in FLOWS:
        assert re.search(rf"^\s+{flow}\s+\w", out, re.M), flow
    for variable in (PASSPHRASE_ENV, KEY_FILE_ENV, NO_KEYRING_ENV, "EXOIMAP_HOME"):
        assert re.search(rf"^\s+{variable}\s+\w", out, re.M), variable
    # and no variable the code does not read
    source = "".join(p.read_text() for p in Path(exoimap_root()).rglob("*.py"))
    for named in set(re.findall(r"EXOIMAP_[A-Z_]+", out)):
        assert source.count(f'"{named}"') >= 1, named


def exoimap_root() -> Path:
    import exoimap

    return Path(exoimap.__file__).parent


def test_sizes_read_as_people_read_them() -> None:
    assert byte_size(512) == "512 B"
    assert byte_size(2048) == "2.0 KB"
    assert byte_size(5 * 1024**3) == "5.0 GB"
    assert byte_size(3 * 1024**4) == "3.0 TB"  # a disk's size, not "3072.0 GB"
