"""The token-command flow against real child processes (small Python scripts)."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from exoimap.auth.provider import TokenProvider
from exoimap.auth.token_command import run_token_command
from exoimap.config import parse_config
from exoimap.errors import AuthError, ConfigError, InsufficientPermission

from .conftest import app_claims, delegated_claims, make_jwt


def script(tmp_path: Path, body: str, name: str = "broker.py") -> list[str]:
    path = tmp_path / name
    path.write_text(
        "import json, pathlib, sys, time\n"
        f"COUNT = pathlib.Path({str(tmp_path / (name + '.count'))!r})\n"
        "COUNT.write_text(str(int(COUNT.read_text()) + 1 if COUNT.exists() else 1))\n" + body
    )
    return [sys.executable, str(path)]


def runs(tmp_path: Path, name: str = "broker.py") -> int:
    count = tmp_path / (name + ".count")
    return int(count.read_text()) if count.exists() else 0


def provider_for(argv: list[str], tmp_path: Path, **keys: object) -> TokenProvider:
    table: dict[str, object] = {
        "email": "ada@example.org",
        "flow": "token-command",
        "token_command": argv,
        "imap_host": "imap.example.org",
        **keys,
    }
    config = parse_config({"accounts": {"dove": table}}, tmp_path / "config.toml")
    return TokenProvider(config.account("dove"))


def test_plain_output_first_line_is_the_token(tmp_path: Path) -> None:
    argv = script(tmp_path, "print()\nprint('opaque-token-123')\nprint('ignored')\n")
    got = run_token_command(argv, account="x")
    assert got.token.reveal() == "opaque-token-123"
    assert got.expires_at is None
    assert got.claims is None


def test_bearer_prefix_is_removed(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('Bearer abc.def')\n")
    assert run_token_command(argv, account="x").token.reveal() == "abc.def"


def test_json_output_with_expiry(tmp_path: Path) -> None:
    argv = script(tmp_path, "print(json.dumps({'access_token': 'tok-1', 'expires_in': 1200}))\n")
    got = run_token_command(argv, account="x")
    assert got.token.reveal() == "tok-1"
    assert got.expires_at == pytest.approx(time.time() + 1200, abs=5)


def test_jwt_expiry_comes_from_its_claims(tmp_path: Path) -> None:
    token = make_jwt(delegated_claims(exp=int(time.time()) + 777))
    argv = script(tmp_path, f"print({token!r})\n")
    got = run_token_command(argv, account="x")
    assert got.claims is not None
    assert got.expires_at == pytest.approx(time.time() + 777, abs=5)


def test_failure_reports_status_and_redacted_stderr(tmp_path: Path) -> None:
    leaked = make_jwt(delegated_claims())
    argv = script(
        tmp_path, f"sys.stderr.write('no session; last token {leaked}\\n')\nsys.exit(3)\n"
    )
    with pytest.raises(AuthError) as info:
        run_token_command(argv, account="x")
    text = str(info.value)
    assert "exit status 3" in text
    assert "no session" in text
    assert leaked not in text


def test_failure_shows_stderr_on_one_short_line_without_the_token(tmp_path: Path) -> None:
    opaque = "opaque-Secret-9f8e7d6c5b4a"  # matches no pattern: only its echo gives it away
    body = (
        f"print({opaque!r})\n"
        f"sys.stderr.write('refused {opaque}\\x1b[2J\\x07\\nsecond line' + ' and more' * 60)\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(AuthError) as info:
        run_token_command(script(tmp_path, body), account="x")
    text = str(info.value)
    assert "refused ***" in text
    assert opaque not in text
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\\x1b[2J\\x07\\nsecond line" in text  # escaped, so visible and harmless
    said = text.split("exit status 2: ", 1)[1].split(" Run the command", 1)[0]
    assert len(said) <= 203  # the first 200 characters and "..."
    assert said.endswith("...")


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_timeout_stops_the_command_and_every_process_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The child's output goes elsewhere, so nothing waits for it: only the kill can end it.
    argv = ["/bin/sh", "-c", f"sleep 600 >/dev/null 2>&1 & echo $! > {pid_file}; wait"]
    try:
        with pytest.raises(AuthError, match="did not finish"):
            run_token_command(argv, account="x", timeout=2)
        child = int(pid_file.read_text())
        # SIGKILL was sent to the group; its delivery is asynchronous, so wait for it to
        # land (the old code never sent it: the child would sleep on for ten minutes).
        deadline = time.monotonic() + 30
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child)
    finally:
        if pid_file.exists() and _running(child := int(pid_file.read_text())):
            os.kill(child, signal.SIGKILL)


def test_no_output_is_an_error(tmp_path: Path) -> None:
    argv = script(tmp_path, "pass\n")
    with pytest.raises(AuthError, match="no token"):
        run_token_command(argv, account="x")


def test_bad_json_is_an_error(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('{\"token\": 1}')\n")
    with pytest.raises(AuthError, match="access_token"):
        run_token_command(argv, account="x")


def test_missing_command_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        run_token_command([str(tmp_path / "nope")], account="x")


def test_timeout(tmp_path: Path) -> None:
    argv = script(tmp_path, "time.sleep(30)\n")
    with pytest.raises(AuthError, match="did not finish"):
        run_token_command(argv, account="x", timeout=0.5)


def test_provider_reuses_a_token_with_known_expiry(exo_home: Path, tmp_path: Path) -> None:
    argv = script(tmp_path, "print(json.dumps({'access_token': 'tok-a', 'expires_in': 3600}))\n")
    provider = provider_for(argv, tmp_path)
    assert provider.cloud.name == "custom"  # no cloud given: the imap_host decides
    assert provider.imap_host == "imap.example.org"
    assert provider.access_token().reveal() == "tok-a"
    assert provider.access_token().reveal() == "tok-a"
    assert runs(tmp_path) == 1
    assert provider.expires_at() == pytest.approx(time.time() + 3600, abs=5)
    # Asking for more validity than is left runs the command again.
    provider.access_token(min_validity=4000)
    assert runs(tmp_path) == 2
    # No vault and no Microsoft endpoint were involved.
    assert not (exo_home / "vault").exists()


def test_provider_reruns_when_the_expiry_is_unknown(exo_home: Path, tmp_path: Path) -> None:
    argv = script(tmp_path, "print('opaque')\n")
    provider = provider_for(argv, tmp_path)
    provider.access_token()
    provider.access_token()
    assert runs(tmp_path) == 2
    assert math.isinf(provider.expires_at())


def test_provider_refuses_an_expired_token(exo_home: Path, tmp_path: Path) -> None:
    argv = script(tmp_path, "print(json.dumps({'access_token': 'old', 'expires_in': -5}))\n")
    with pytest.raises(AuthError, match="expired"):
        provider_for(argv, tmp_path).access_token()


def test_microsoft_cloud_tokens_from_a_broker_are_checked(exo_home: Path, tmp_path: Path) -> None:
    bad = make_jwt(delegated_claims(scp="Mail.Read"))
    argv = script(tmp_path, f"print({bad!r})\n")
    provider = provider_for(argv, tmp_path, cloud="worldwide")
    assert provider.imap_host == "imap.example.org"  # the configured host wins
    with pytest.raises(InsufficientPermission):
        provider.access_token()
    good = make_jwt(app_claims())
    argv2 = script(tmp_path, f"print({good!r})\n", name="broker2.py")
    info = provider_for(argv2, tmp_path, cloud="worldwide").token_info()
    assert info.claims is not None
    assert info.claims.roles == ("IMAP.AccessAsApp",)


def test_password_accounts_have_no_token(exo_home: Path, tmp_path: Path) -> None:
    argv = script(tmp_path, "print('x')\n")
    provider = provider_for(argv, tmp_path, mechanism="plain")
    with pytest.raises(ConfigError, match="password"):
        provider.access_token()
    with pytest.raises(ConfigError, match="set-secret dove"):
        provider.password()
