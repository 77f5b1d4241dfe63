"""Log redaction: nothing that looks like a secret reaches stderr or the JSON log file."""

from __future__ import annotations

import base64
import json
import logging
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from exoimap.config import Paths, load_config
from exoimap.errors import ConfigError
from exoimap.logs import redact, setup_logging
from exoimap.secrets import Secret
from exoimap.untrusted import shown

JWT = (
    "eyJ0eXAiOiJKV1QiLCJub25jZSI6IkFCQyIsImFsZyI6IlJTMjU2In0."
    "eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlLmNvbSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)
REFRESH = "0.AXoA" + "q" * 30 + "-Zz_" + "k" * 80
CLIENT_SECRET = "abc8Q~" + "x" * 34
XOAUTH2 = base64.b64encode(b"user=a@b.c\x01auth=Bearer " + JWT.encode() + b"\x01\x01").decode()


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (f"got token {JWT} ok", JWT),
        (f"Authorization: Bearer {REFRESH[:40]}", REFRESH[:40]),
        (f"refresh {REFRESH}", REFRESH),
        (f"secret is {CLIENT_SECRET}", CLIENT_SECRET),
        (f"C: A1 AUTHENTICATE XOAUTH2 {XOAUTH2}", XOAUTH2),
        ("password=hunter2hunter2 next", "hunter2hunter2"),
        ('{"client_secret": "s3cr3t-value", "x": 1}', "s3cr3t-value"),
        ("passphrase: correct-horse-battery", "correct-horse-battery"),
        ("opaque " + "A" * 120, "A" * 120),
    ],
)
def test_redact_removes_secret_looking_values(text: str, leak: str) -> None:
    cleaned = redact(text)
    assert leak not in cleaned
    assert "***" in cleaned


def test_redact_keeps_ordinary_text_and_hashes() -> None:
    sha = "a" * 64
    text = f"synced 1200 messages from INBOX for alice@contoso.com, sha256 {sha}"
    assert redact(text) == text


def test_a_config_error_about_a_secret_key_keeps_its_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[accounts.work]\nemail = "a@b.c"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        load_config(Paths(config_dir=tmp_path, data_dir=tmp_path))
    message = str(info.value)
    assert "accounts.work.password: secrets are never stored" in message
    assert "hunter2" not in message
    assert redact(message) == message
    setup_logging(0)
    logging.getLogger("exoimap.test").warning("%s", message)
    assert "accounts.work.password: secrets are never stored in the config file" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "text",
    [
        "accounts.work.password: hunter2",
        "accounts.work.password: hunter2, then more",
        "accounts.work.password=hunter2 is set",
        'accounts.work.password: "hunter2 quoted"',
    ],
)
def test_a_secret_after_a_dotted_key_is_still_masked(text: str) -> None:
    assert "hunter2" not in redact(text)


def test_a_known_secret_that_is_a_word_is_masked_only_as_a_whole_token() -> None:
    Secret("classified")
    text = "a public client cannot have classifieds; token=classified, (classified)"
    assert redact(text) == "a public client cannot have classifieds; token=***, (***)"


def test_redact_scrubs_known_secret_values_of_any_shape() -> None:
    odd = "plain words but secret"
    Secret(odd)
    assert redact(f"oops: {odd}!") == "oops: ***!"


def _logged(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    log: Callable[[logging.Logger], None],
    failure: str,
) -> tuple[str, str]:
    """Log through ``log`` and an exception saying ``failure``: (stderr, the JSON lines)."""
    log_file = tmp_path / "logs" / "exoimap.log"
    setup_logging(2, log_file)
    logger = logging.getLogger("exoimap.test")
    log(logger)
    try:
        raise RuntimeError(failure)
    except RuntimeError:
        logger.exception("failed")
    for handler in logging.getLogger("exoimap").handlers:
        handler.flush()
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    return capsys.readouterr().err, log_file.read_text()


def test_handlers_redact_args_exceptions_and_extras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err, content = _logged(
        tmp_path,
        capsys,
        lambda logger: logger.debug("token %s", JWT, extra={"header": f"Bearer {REFRESH}"}),
        f"failed with refresh token {REFRESH}",
    )
    for output in (err, content):
        assert JWT not in output
        assert REFRESH not in output
        assert "***" in output
    records = [json.loads(line) for line in content.splitlines()]
    assert records[0]["level"] == "debug"
    assert records[0]["header"] == "Bearer ***"
    assert "RuntimeError" in records[1]["exception"]


def test_verbosity_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(-1, None)
    logging.getLogger("exoimap.x").warning("quiet warning")
    assert "quiet warning" not in capsys.readouterr().err
    setup_logging(1, None)
    logging.getLogger("exoimap.x").info("loud info")
    assert "loud info" in capsys.readouterr().err


def test_a_known_secret_that_is_a_word_of_a_key_does_not_unmask_its_value() -> None:
    # the word is forgotten after this test (conftest): it would mask "secret" everywhere
    Secret("secret")  # e.g. another part of the program wrapped this word
    cleaned = redact('{"client_secret": "s3cr3t-value", "x": 1}')
    assert "s3cr3t-value" not in cleaned


def test_the_stderr_log_shows_server_text_escaped_and_the_file_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    greeting = "OK \x1b]0;owned\x07 ready\x1b[2J\nINFO forged line \u202egnp.exe"
    err, content = _logged(
        tmp_path, capsys, lambda logger: logger.info("connect %s", greeting), f"in {greeting}"
    )
    assert "connect OK \\x1b]0;owned\\x07 ready\\x1b[2J\\x0aINFO forged line \\u202egnp" in err
    assert not any(ord(ch) < 32 and ch != "\n" for ch in err)
    assert "\u202e" not in err
    assert len(err.splitlines()) >= 3  # the traceback keeps its lines
    records = [json.loads(line) for line in content.splitlines()]
    assert records[0]["message"] == f"connect {greeting}"


def test_shown_escapes_what_does_not_print_itself_and_nothing_else() -> None:
    assert shown("Inbox/Sub folder & more \\ [x]") == "Inbox/Sub folder & more \\ [x]"
    assert shown("Entwürfe 日本") == "Entwürfe 日本"
    assert shown("a\x1b[2Jb\x07\x7f\x9b") == "a\\x1b[2Jb\\x07\\x7f\\x9b"
    assert shown("\u202e\u2028\udc80\U000e0041") == "\\u202e\\u2028\\udc80\\U000e0041"
    assert shown(shown("a\x1bb")) == shown("a\x1bb")
