"""Tokens from a short-lived child process (``exoimap.auth.token_child``): kept while they
last, asked for again when they would not, and every way a child can fail turned into the
error the watch acts on (sign-in needed, or try again later)."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from exoimap.auth.provider import TokenProvider
from exoimap.auth.token_child import ChildTokenProvider, token_child_command, token_provider_for
from exoimap.auth.vault import Vault, create_key_file
from exoimap.config import AccountConfig, Paths
from exoimap.errors import AuthError, TokenExpiredOrRevoked, TransientAuthError

ACCOUNT = AccountConfig(name="work", email="someone@contoso.example", flow="device")


def _child(tmp_path: Path, body: str) -> Callable[[str, float], Sequence[str]]:
    """A command running ``body`` (Python; ``runs`` counts its runs, ``asked`` is the
    min validity it was asked for) in place of ``exoimap token print``."""
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, pathlib, sys, time
            runs_file = pathlib.Path(sys.argv[1])
            runs = int(runs_file.read_text() or 0) + 1 if runs_file.exists() else 1
            runs_file.write_text(str(runs))
            asked = float(sys.argv[2])
            """
        )
        + textwrap.dedent(body)
    )
    runs = tmp_path / "runs"
    return lambda _name, min_validity: [sys.executable, str(script), str(runs), str(min_validity)]


def _runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


def test_a_token_is_kept_while_it_lasts_and_asked_for_again_when_it_would_not(
    tmp_path: Path,
) -> None:
    command = _child(
        tmp_path,
        """
        print(json.dumps({"token": f"token-number-{runs}", "expires_at": time.time() + 1000}))
        """,
    )
    provider = ChildTokenProvider(ACCOUNT, command=command)
    assert provider.access_token(600).reveal() == "token-number-1"
    assert provider.access_token(900).reveal() == "token-number-1"  # 1000 s left: kept
    assert _runs(tmp_path) == 1
    assert 990 < provider.expires_at() - time.time() <= 1000
    assert provider.access_token(1200).reveal() == "token-number-2"  # too short: asked again
    assert _runs(tmp_path) == 2
    assert provider.checked_token() is None  # not a JWT: no claims
    assert provider.imap_host == "outlook.office365.com"
    assert provider.username == "someone@contoso.example"


@pytest.mark.parametrize(
    ("exit_code", "error", "retryable"),
    [(3, TokenExpiredOrRevoked, False), (2, AuthError, False), (1, TransientAuthError, True)],
)
def test_a_failing_child_says_why_without_its_escape_sequences(
    tmp_path: Path, exit_code: int, error: type[AuthError], retryable: bool
) -> None:
    command = _child(
        tmp_path,
        f"""
        print("exoimap: error: account 'work' is not signed in\\x1b[31m", file=sys.stderr)
        sys.exit({exit_code})
        """,
    )
    with pytest.raises(error) as caught:
        ChildTokenProvider(ACCOUNT, command=command).access_token()
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    text = str(caught.value)
    assert "account 'work' is not signed in" in text
    assert "\x1b" not in text
    if exit_code == 3:
        assert "exoimap login work" in text


@pytest.mark.parametrize(
    "printed",
    ['print("not json")', 'print(json.dumps({"token": 5, "expires_at": 1}))', "pass"],
)
def test_a_child_that_prints_no_token_is_a_transient_failure(tmp_path: Path, printed: str) -> None:
    with pytest.raises(TransientAuthError, match="printed no token"):
        ChildTokenProvider(ACCOUNT, command=_child(tmp_path, printed)).access_token()


def test_a_child_that_hangs_is_stopped_and_a_transient_failure(tmp_path: Path) -> None:
    command = _child(tmp_path, "time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(TransientAuthError, match=r"did not finish within 0\.5 s"):
        ChildTokenProvider(ACCOUNT, command=command, timeout=0.5).access_token()
    assert time.monotonic() - started < 30


def test_a_child_that_cannot_start_is_a_transient_failure() -> None:
    missing = ChildTokenProvider(ACCOUNT, command=lambda *_: ["/nonexistent/exoimap"])
    with pytest.raises(TransientAuthError, match="could not start"):
        missing.access_token()


def test_the_child_is_exoimap_token_print_never_answered_by_an_agent() -> None:
    command = token_child_command("work", 600.4)
    assert command[:3] == [sys.executable, "-m", "exoimap"]
    assert command[3:] == [
        "token", "print", "work", "--json", "--no-agent", "--min-validity", "600",
    ]  # fmt: skip
    assert token_child_command("work", 5000)[-1] == "3000"  # what `token print` can promise
    assert token_child_command("work", 1)[-1] == "60"


def test_a_child_is_used_only_where_the_vault_opens_unattended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXOIMAP_NO_KEYRING", "1")
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE", raising=False)
    monkeypatch.delenv("EXOIMAP_VAULT_KEY_FILE", raising=False)
    paths = Paths.from_env()
    # no vault yet: nothing a child could read
    assert isinstance(token_provider_for(ACCOUNT, paths), TokenProvider)

    create_key_file(paths.vault_dir.parent / "vault.key")
    Vault.from_paths(paths).check_writable()  # creates the vault with the key file
    assert isinstance(token_provider_for(ACCOUNT, paths), ChildTokenProvider)

    for account in (
        AccountConfig(name="pw", email="a@b.example", mechanism="plain"),
        AccountConfig(name="cmd", email="a@b.example", flow="token-command",
                      token_command=("true",)),
    ):  # fmt: skip
        assert isinstance(token_provider_for(account, paths), TokenProvider)

    (paths.vault_dir.parent / "vault.key").unlink()  # the key is gone: no child can open it
    assert isinstance(token_provider_for(ACCOUNT, paths), TokenProvider)
