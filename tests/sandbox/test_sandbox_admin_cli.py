"""The sandbox admin commands (``exoimap sandbox app secret / redirect-uri``, ``settings``,
``clock``, ``exchange faults``) against a real running sandbox in this process: each change
is made by the CLI, as from a second terminal, and observed through MSAL or IMAP."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
import pytest

from exoimap.cli import main
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.identity import DAEMON_APP, PUBLIC_APP, SignInRobot
from exoimap.sandbox.tenant import APP_ONLY_SCOPE, SandboxTenant, TenantOptions, running_tenant


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[SandboxTenant]:
    options = TenantOptions(exchange=ExchangeSettings.for_tests(), seed_messages=0)
    with running_tenant(tmp_path / "state", options) as running:
        yield running


@pytest.fixture
def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """``exoimap sandbox ARGS --state STATE`` in this process; its output."""
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path / "home"))

    def call(*args: str) -> Ran:
        capsys.readouterr()
        code = main(["sandbox", *args, "--state", str(tmp_path / "state")])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return call


def _document(tenant: SandboxTenant) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((tenant.state_dir / "sandbox.json").read_text())
    return document


def _app(tenant: SandboxTenant, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(a for a in _document(tenant)["apps"] if a["name"] == name)
    return entry


def _public_client(tenant: SandboxTenant) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        _app(tenant, PUBLIC_APP)["client_id"],
        authority=tenant.authority,
        http_client=tenant.http_session(),
        instance_discovery=False,
    )


def _app_token(tenant: SandboxTenant, secret: str) -> dict[str, Any]:
    client = msal.ConfidentialClientApplication(
        _app(tenant, DAEMON_APP)["client_id"],
        client_credential=secret,
        authority=tenant.authority,
        http_client=tenant.http_session(),
        instance_discovery=False,
    )
    result: dict[str, Any] = client.acquire_token_for_client([APP_ONLY_SCOPE])
    return result


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _unexpected_failure(ran: Ran) -> None:
    assert "Traceback" not in ran.err
    assert len(ran.err.splitlines()) == 1, ran.err


def _shown_secret(ran: Ran) -> str:
    """The secret value ``app secret`` printed (its last line), checked without ever
    putting it into an assertion message."""
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    value = lines[-1]
    looks_right = len(value) == 40 and "Q~" in value and "sandbox.json" in lines[0]
    assert looks_right, "app secret did not print a secret value after saying where it is kept"
    return value


def _token_outcome(result: dict[str, Any]) -> str | int:
    """``token`` or the AADSTS code: what a token request gave, without its secrets."""
    if "access_token" in result:
        return "token"
    return int(result["error_codes"][0])


def test_app_secret_is_shown_once_kept_in_sandbox_json_and_works(
    tenant: SandboxTenant, sandbox: Callable[..., Ran], tmp_path: Path
) -> None:
    # Secrets are compared into booleans first: a failing test must not print them.
    value = _shown_secret(sandbox("app", "secret", DAEMON_APP))
    path = tenant.state_dir / "sandbox.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    daemon = _app(tenant, DAEMON_APP)
    newest = daemon["client_secret"] == value
    listed = value in [s["value"] for s in daemon["client_secrets"]]
    assert newest, "sandbox.json's client_secret is not the value shown"
    assert listed, "sandbox.json's client_secrets lacks the value shown"
    outcome = _token_outcome(_app_token(tenant, value))
    assert outcome == "token"  # the running server knows it

    old = _shown_secret(sandbox("app", "secret", DAEMON_APP, "--days", "-1"))
    daemon = _app(tenant, DAEMON_APP)
    still_newest = daemon["client_secret"] == value
    last = daemon["client_secrets"][-1]
    listed_expired = last["value"] == old and last["expired"] is True
    assert still_newest, "an expired secret replaced the live one as client_secret"
    assert listed_expired, "the expired secret is not listed as expired"
    outcome = _token_outcome(_app_token(tenant, old))
    assert outcome == 7000222  # expired

    shown = sandbox("info")
    assert shown.code == 0
    masked = value not in shown.out and old not in shown.out
    assert masked, "sandbox info shows a secret"
    logs = [p.read_text(errors="replace") for p in (tmp_path / "home").rglob("*.log")]
    logged = any(value in text or old in text for text in logs)
    assert not logged, "a secret value reached a log file"

    public = sandbox("app", "secret", PUBLIC_APP)
    assert public.code == 2
    assert "public client cannot have secrets" in public.err
    _unexpected_failure(public)


def test_sandbox_json_gets_a_new_secret_before_the_first_up(
    tmp_path: Path, sandbox: Callable[..., Ran]
) -> None:
    value = _shown_secret(sandbox("app", "secret", DAEMON_APP))
    document = json.loads((tmp_path / "state" / "sandbox.json").read_text())
    daemon = next(a for a in document["apps"] if a["name"] == DAEMON_APP)
    kept = daemon["client_secret"] == value
    assert kept, "sandbox.json's client_secret is not the value shown"
    assert "authority" not in document  # no server yet: `up` adds where it listens
    assert sandbox("info").code == 0


def test_redirect_uri_added_to_an_existing_app_is_accepted_by_the_running_server(
    tenant: SandboxTenant, sandbox: Callable[..., Ran]
) -> None:
    uri = "https://app.contoso.example/signed-in"
    added = sandbox("app", "redirect-uri", PUBLIC_APP, uri)
    assert added.code == 0, added.err
    assert uri in added.out
    assert uri in _app(tenant, PUBLIC_APP)["redirect_uris"]
    assert sandbox("app", "redirect-uri", PUBLIC_APP, uri).code == 0  # kept once
    assert _app(tenant, PUBLIC_APP)["redirect_uris"].count(uri) == 1

    client = _public_client(tenant)
    flow = client.initiate_auth_code_flow(
        ["https://outlook.office.com/IMAP.AccessAsUser.All"],
        redirect_uri=uri,
        response_mode="form_post",
    )
    upn, password = tenant.users[0]
    outcome = SignInRobot(tenant.http_session()).sign_in(flow["auth_uri"], upn, password)
    assert outcome.redirect_uri == uri
    assert "code" in outcome.params

    for bad, reason in [
        ("http://app.contoso.example/x", "http is allowed only for localhost"),
        ("not a uri", "not an absolute URI"),
        ("https://app.contoso.example/#x", "fragment"),
    ]:
        refused = sandbox("app", "redirect-uri", PUBLIC_APP, bad)
        assert refused.code == 2, bad
        assert reason in refused.err
        _unexpected_failure(refused)
    unknown = sandbox("app", "redirect-uri", "no-such-app", uri)
    assert unknown.code == 2
    assert "no app 'no-such-app'" in unknown.err


def test_settings_change_token_lifetime_on_the_running_server(
    tenant: SandboxTenant, sandbox: Callable[..., Ran]
) -> None:
    shown = sandbox("settings")
    assert shown.code == 0
    assert "access-token-lifetime: 3599 s" in shown.out
    assert "http-keep-alive: 120 s" in shown.out
    assert "refresh-token-max-age: none" in shown.out

    changed = sandbox(
        "settings", "--access-token-lifetime", "300", "--refresh-token-max-age", "7200"
    )
    assert changed.code == 0, changed.err
    assert "access-token-lifetime: 300 s" in changed.out
    assert "refresh-token-max-age: 7200 s" in changed.out
    secret = _app(tenant, DAEMON_APP)["client_secret"]
    result = _app_token(tenant, secret)
    lifetime = result.get("expires_in")
    assert lifetime == 300
    claims = _claims(result["access_token"])
    assert claims["exp"] - claims["iat"] == 300

    assert "refresh-token-max-age: none" in sandbox("settings", "--refresh-token-max-age", "0").out
    refused = sandbox("settings", "--device-code-interval", "0")
    assert refused.code == 2
    assert "device_code_interval" in refused.err
    _unexpected_failure(refused)


def test_clock_advance_show_and_reset(tenant: SandboxTenant, sandbox: Callable[..., Ran]) -> None:
    secret = _app(tenant, DAEMON_APP)["client_secret"]
    advanced = sandbox("clock", "advance", "2h")
    assert advanced.code == 0, advanced.err
    assert "(real time +7200 s)" in advanced.out
    assert "(real time +7290 s)" in sandbox("clock", "advance", "90").out
    issued = _claims(_app_token(tenant, secret)["access_token"])["iat"]
    assert abs(issued - (time.time() + 7290)) < 60  # the running server's clock moved

    assert "(real time +7290 s)" in sandbox("clock", "show").out
    reset = sandbox("clock", "reset")
    assert reset.code == 0
    assert "(real time +0 s)" in reset.out
    issued = _claims(_app_token(tenant, secret)["access_token"])["iat"]
    assert abs(issued - time.time()) < 60

    bad = sandbox("clock", "advance", "soon")
    assert bad.code == 2
    assert "not a duration" in bad.err


def _greeting(tenant: SandboxTenant) -> bytes:
    """What the IMAP server sends a new connection until it stops or a line ends."""
    context = tenant.ssl_context()
    with socket.create_connection((tenant.imap_host, tenant.imap_port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="outlook.office365.com") as tls:
                received = b""
                while not received.endswith(b"\r\n"):
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    received += chunk
                return received
        except (ssl.SSLError, ConnectionError):
            return b""  # dropped during the handshake


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the running server did not apply the change"
        time.sleep(0.05)


def test_imap_faults_reach_the_running_server(
    tenant: SandboxTenant, sandbox: Callable[..., Ran]
) -> None:
    assert sandbox("exchange", "faults").out == "IMAP faults: none\n"
    assert _greeting(tenant).startswith(b"* OK The Microsoft Exchange IMAP4 service is ready.")

    dropped = sandbox("exchange", "faults", "--drop-after-bytes", "20")
    assert dropped.code == 0, dropped.err
    assert "drop each connection after 20 bytes" in dropped.out
    _wait_for(lambda: len(_greeting(tenant)) <= 20)

    slow = sandbox("exchange", "faults", "--clear", "--delay", "0.25")
    assert "IMAP faults: delay 0.25 s before each write" in slow.out
    _wait_for(lambda: tenant.exchange.faults.delay == 0.25)
    assert _greeting(tenant).endswith(b"\r\n")

    assert sandbox("exchange", "faults", "--clear").out == "IMAP faults: none\n"
    _wait_for(lambda: not tenant.exchange.faults.active)

    refused = sandbox("exchange", "faults", "--drop-probability", "2")
    assert refused.code == 2
    assert "Error: Invalid value for '--drop-probability'" in refused.err  # click's usage error
    assert "Traceback" not in refused.err


def test_names_are_printed_with_control_characters_made_visible(
    tenant: SandboxTenant, sandbox: Callable[..., Ran]
) -> None:
    added = sandbox("app", "add", "evil\x1b[2Japp", "--confidential")
    assert added.code == 0, added.err
    assert "\x1b" not in added.out
    assert "evil\\x1b[2Japp" in added.out


def test_app_roles_defined_and_assigned_from_the_cli_reach_the_id_token(
    tenant: SandboxTenant, sandbox: Callable[..., Ran]
) -> None:
    defined = sandbox("app", "role", PUBLIC_APP, "auditor", "self")
    assert defined.code == 0, defined.err
    upn, password = tenant.users[0]
    assigned = sandbox("app", "assign", PUBLIC_APP, upn, "auditor")
    assert assigned.code == 0, assigned.err
    assert "has the role auditor" in assigned.out
    refused = sandbox("app", "assign", PUBLIC_APP, upn, "admin")
    assert refused.code == 2
    assert "no role 'admin'" in refused.err

    client = _public_client(tenant)
    flow = client.initiate_auth_code_flow(
        [], redirect_uri="http://localhost", response_mode="form_post"
    )
    outcome = SignInRobot(tenant.http_session()).sign_in(flow["auth_uri"], upn, password)
    result = client.acquire_token_by_auth_code_flow(flow, outcome.params)
    assert result["id_token_claims"]["roles"] == ["auditor"]
