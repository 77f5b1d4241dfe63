"""App passwords and the local CA from the command line, and wrong passwords through the
proxy: counted, rate-limited per source, audited, and never touching the tokens."""

from __future__ import annotations

import hashlib
import imaplib
import ssl
import stat
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.cli import EXIT_USAGE, main
from exoimap.config import Paths
from exoimap.errors import ConfigError
from exoimap.proxy.gate import SIGN_IN_ACTION
from exoimap.proxy.server import ProxyServer
from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.proxy.proxy_helpers import FAST_SCRYPT, running_proxy

pytestmark = pytest.mark.xdist_group("sandbox")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("exoimap.proxy.passwords.DEFAULT_SCRYPT", FAST_SCRYPT)
    return isolated_home(tmp_path, monkeypatch)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_is_made_once_private_and_exported(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["proxy", "ca"]) == 0
    first = capsys.readouterr()
    assert first.out.startswith("-----BEGIN CERTIFICATE-----")
    assert "SHA-256 fingerprint:" in first.err
    folder = home / "proxy" / "ca"
    assert _mode(folder) == 0o700
    assert {p.name: _mode(p) for p in folder.iterdir()} == {"ca.pem": 0o600, "ca-key.pem": 0o600}
    assert main(["proxy", "ca"]) == 0
    assert capsys.readouterr().out == first.out  # the same CA, not a new one
    assert main(["proxy", "ca", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "ca.pem")
    # the exported PEM verifies the certificate the proxy serves
    ssl.create_default_context(cadata=first.out)


def test_password_add_list_revoke(
    home: Path, capsys: pytest.CaptureFixture[str], sandbox_tenant: SandboxTenant
) -> None:
    from tests.cli.sync_helpers import add_account

    add_account(sandbox_tenant, "work", "someone@contoso.onmicrosoft.com")
    capsys.readouterr()
    assert main(["proxy", "password", "add", "laptop", "--account", "work"]) == 0
    shown = capsys.readouterr()
    password = shown.out.strip()
    assert len(password) == 23
    assert password.count("-") == 3
    stored = home / "proxy" / "passwords.json"
    assert _mode(stored) == 0o600
    assert password not in stored.read_text()
    assert main(["proxy", "password", "add", "laptop", "--account", "work"]) == EXIT_USAGE
    assert "exists" in capsys.readouterr().err
    assert main(["proxy", "password", "add", "phone", "--account", "nobody"]) == EXIT_USAGE
    assert "no account named 'nobody'" in capsys.readouterr().err
    assert main(["proxy", "password", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("laptop  account work  created ")
    assert password not in listing
    assert main(["proxy", "password", "revoke", "laptop"]) == 0
    assert main(["proxy", "password", "revoke", "laptop"]) == EXIT_USAGE
    assert main(["proxy", "password", "list"]) == 0
    assert "No app passwords" in capsys.readouterr().out
    changes = [
        (r.data["key"], r.data["action"])
        for r in audit.read_records(Paths.from_env().audit_dir)
        if r.event == "config.changed"
    ]
    assert ("proxy.password.laptop", "add") in changes
    assert ("proxy.password.laptop", "revoke") in changes


def _tokens_digest(home: Path) -> str:
    """A digest of the vault's token files (not the audit anchor kept beside them)."""
    files = sorted(p for p in (home / "vault").rglob("*") if "audit" not in p.name)
    assert files
    return hashlib.sha256(b"".join(p.read_bytes() for p in files if p.is_file())).hexdigest()


def test_wrong_passwords_are_rate_limited_audited_and_leave_tokens_alone(
    home: Path, sandbox_tenant: SandboxTenant
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    assert main(["proxy", "password", "add", "laptop", "--account", "work"]) == 0
    from tests.proxy.proxy_helpers import book

    good = book(Paths.from_env()).add("scanner", "work").reveal()
    tokens_before = _tokens_digest(home)
    answers = []
    with running_proxy(Paths.from_env()) as proxy:
        for attempt in range(20):
            client = proxy.connect()
            try:
                client.login(upn, f"wrong-guess-{attempt}")
            except imaplib.IMAP4.error as exc:
                answers.append(str(exc))
            finally:
                client.shutdown()
        # locked out: even the right password is refused, without being checked
        client = proxy.connect()
        with pytest.raises(imaplib.IMAP4.error, match="Too many failed sign-ins"):
            client.login(upn, good)
        client.shutdown()
        assert _tokens_digest(home) == tokens_before
        proxy.clock.now += 3600  # the lock-out is over
        client = proxy.connect()
        assert client.login(upn, good)[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        client.logout()
    assert all("Invalid credentials" in a for a in answers[:5])
    assert all("Too many failed sign-ins" in a for a in answers[5:])
    denied = [
        r
        for r in audit.read_records(Paths.from_env().audit_dir)
        if r.event == "access.denied" and r.data["action"] == SIGN_IN_ACTION
    ]
    assert len(denied) == 21
    assert sum("rate limited" in str(r.data["reason"]) for r in denied) == 16
    assert all(r.data["resource"] == "client 127.0.0.1" for r in denied)
    assert all("wrong-guess" not in str(r.data) for r in denied)


def test_plaintext_off_loopback_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["proxy", "--listen", "0.0.0.0:1993", "--plaintext-on-loopback"])
    assert code == EXIT_USAGE
    assert "refusing to listen without TLS on 0.0.0.0" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"without TLS on 192\.0\.2\.7"):
        ProxyServer("192.0.2.7", 1993, None, None, None)  # type: ignore[arg-type]


def test_listen_must_be_host_and_port(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxy", "--listen", "localhost"]) == EXIT_USAGE
    assert "HOST:PORT" in capsys.readouterr().err


def test_a_client_that_does_not_sign_in_is_sent_away(home: Path) -> None:
    with running_proxy(Paths.from_env(), preauth_timeout=0.5) as proxy:
        client = proxy.connect()
        try:
            assert client.readline() == b"* BYE Autologout: not signed in in time.\r\n"
            assert client.readline() == b""  # and the connection is closed
        finally:
            client.shutdown()
    closed = [r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == "imap.closed"]
    assert [r.data["reason"] for r in closed] == ["not signed in in time"]
