"""Nothing secret reaches the audit log, the log file, or the terminal, even at -vv.

Sign-in and sync are not built yet: this test drives the audit CLI and feeds secrets in
through audit events and log calls the way buggy code might. The lead extends it to the
sign-in and sync commands with ``secret_scan`` when they land.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.secrets import Secret

from .secret_scan import assert_no_secrets, find_secrets

ACCESS_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1yNS1BVWliZkJpaTdOZDFqQmViYXhib1hXMCJ9"
    ".eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlLmNvbSIsInNjcCI6IklNQVAuQWNjZXNzQXNVc2VyLkFsbCJ9"
    ".c2lnbmF0dXJlLXRoYXQtaXMtbm90LXJlYWxseS1hLXNpZ25hdHVyZQ"
)
REFRESH_TOKEN = "1.AXEAj8d3kLq0mE2xR7vYtPz9wQ" + "b" * 60 + ".AgABAwEAAAApTwJmzXqdR4BN2miheQMY"
CLIENT_SECRET = "kR48Q~qv0bN3y_Wd7pLx.ZcA1eF5gH2jK9mT6uV-"
PASSWORD = "correct horse battery staple 42"

KNOWN = {
    "access token": ACCESS_TOKEN,
    "refresh token": REFRESH_TOKEN,
    "client secret": CLIENT_SECRET,
    "password": PASSWORD,
}


def test_scanner_finds_what_it_should(tmp_path: Path) -> None:
    import base64

    (tmp_path / "plain.log").write_text(f"oops {CLIENT_SECRET}\n")
    blob = base64.b64encode(
        f"user=someone@example.com\x01auth=Bearer {ACCESS_TOKEN}\x01\x01".encode()
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "wire.bin").write_bytes(b"\x00AUTHENTICATE XOAUTH2 " + blob)
    found = find_secrets(KNOWN, paths=[tmp_path], texts={"stdout": f"pw: {PASSWORD!r}"})
    whats = {(Path(f.where).name, f.what) for f in found}
    assert ("plain.log", "client secret (raw)") in whats
    assert ("wire.bin", "access token (xoauth2)") in whats
    assert ("stdout", "password (raw)") in whats
    assert find_secrets({}, texts={"x": f"Bearer {ACCESS_TOKEN}"})  # JWT shape, unknown value
    assert find_secrets(KNOWN, texts={"clean": "nothing to see here ***"}) == []


def test_no_secret_anywhere_at_debug_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("EXOIMAP_HOME", str(home))
    outputs: dict[str, str] = {}

    def run(*argv: str) -> int:
        code = main(["-vv", *argv])
        captured = capfd.readouterr()
        outputs[" ".join(argv) + " (stdout)"] = captured.out
        outputs[" ".join(argv) + " (stderr)"] = captured.err
        return code

    assert run("audit", "verify") == 0  # sets up -vv logging to the log file as well
    secrets = [Secret(v) for v in (ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET, PASSWORD)]
    token, refresh, client_secret, password = (s.reveal() for s in secrets)
    logger = logging.getLogger("exoimap.auth.flows")

    with audit.open_auditor(Paths.from_env(), key=audit_key_for(Paths.from_env())) as auditor:
        # What careless code might do: revealed values in messages and free-text fields.
        auditor.emit(
            audit.TokenRefreshed(account="work", flow="device", client_id="0d1e2f", tenant=token)
        )
        auditor.emit(
            audit.TokenFailed(
                account="svc",
                flow="client-secret",
                aadsts=7000215,
                error=f"invalid client secret {client_secret} refresh_token={refresh}",
            )
        )
        auditor.emit(
            audit.ImapAuthFailed(
                account="work",
                host="outlook.office365.com",
                mechanism="XOAUTH2",
                error=f"AUTHENTICATE failed for Bearer {token}; password={password}",
                username=f"user:{password}",
            )
        )
        auditor.emit(audit.FolderSynced(account="work", folder=f"INBOX {refresh}", bytes=10))
        with pytest.raises(TypeError) as caught:
            audit.TokenRequested(flow="device", client_id=secrets[2])  # type: ignore[arg-type]
        assert CLIENT_SECRET not in str(caught.value)
        logger.debug("got token %s (refresh %s)", token, refresh)
        logger.info("client_secret=%s password=%s", client_secret, password)
        logger.debug("secrets as objects: %r %s", secrets[0], secrets[1])
        try:
            raise RuntimeError(f"token endpoint said no to {client_secret}")
        except RuntimeError:
            logger.exception("sign-in failed with %s", token)

    for command in (
        ["audit", "tail", "-n", "50"],
        ["audit", "tail", "--format", "json"],
        ["audit", "query", "--format", "json"],
        ["audit", "query", "--outcome", "failure"],
        ["audit", "export"],
        ["audit", "export", "--format", "csv"],
        ["audit", "report"],
        ["audit", "report", "--format", "json"],
        ["audit", "verify"],
    ):
        assert run(*command) == 0, command

    # The records are there, only the secrets are not.
    assert "7000215" in outputs["audit query --format json (stdout)"]
    assert "INBOX ***" in outputs["audit tail -n 50 (stdout)"]
    log_file = home / "logs" / "exoimap.log"
    assert "sign-in failed" in log_file.read_text()
    assert "token endpoint said no" in log_file.read_text()
    assert len(list(audit.read_records(home / "audit"))) == 4
    assert_no_secrets(KNOWN, paths=[home], texts=outputs)
