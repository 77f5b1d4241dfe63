"""After a full round of sign-ins against the sandbox (CLI and library, every Microsoft flow,
refreshes, a failure), no token, refresh token, client secret, passphrase or password appears
in clear in any file exoimap wrote (config, vault, logs) or in anything it printed or logged."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.cli import main
from exoimap.errors import TokenExpiredOrRevoked
from exoimap.logs import setup_logging
from exoimap.sandbox.identity import DAEMON_APP, RunningIdentity
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret

from .conftest import TEST_PASSPHRASE, DeviceApprover, new_user, sandbox_account


def cache_secrets(vault: Vault, name: str) -> list[str]:
    stored = vault.load_token_cache(name)
    assert stored is not None
    cache = json.loads(stored.reveal())
    return [
        entry["secret"]
        for kind in ("AccessToken", "RefreshToken", "IdToken")
        for entry in cache.get(kind, {}).values()
    ]


def test_nothing_secret_is_written_or_printed_in_clear(
    idp: RunningIdentity,
    sandbox_tenant: SandboxTenant,
    exo_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, MSAL's included
    log_file = exo_home / "logs" / "exoimap.log"
    setup_logging(2, log_file)
    secrets: list[str] = [TEST_PASSPHRASE]
    vault = Vault(exo_home / "vault")

    # Library: device code sign-in, then refreshes.
    password = "Scan-Password-123!"
    upn = new_user(idp, password=password)
    secrets.append(password)
    work = sandbox_account(idp, upn, name="work")
    provider = TokenProvider(work, vault=vault, say=DeviceApprover(idp, upn))
    secrets.append(provider.login().token.reveal())
    secrets.extend(cache_secrets(vault, "work"))
    for _ in range(2):
        secrets.append(provider.token_info(min_validity=3700).token.reveal())
        secrets.extend(cache_secrets(vault, "work"))

    # A refresh that fails (revoked) is logged and reported without the token.
    idp.admin.revoke_sessions(upn)
    with pytest.raises(TokenExpiredOrRevoked) as failure:
        TokenProvider(work, vault=vault).token_info(min_validity=3700)
    logging.getLogger("exoimap.auth").warning("refresh failed: %s", failure.value)

    # CLI: add an app-only account, store its secret from stdin, sign in (which signs in to
    # IMAP too: the whole tenant's), show the token.
    tenant = sandbox_tenant
    secret = tenant.admin.add_client_secret(DAEMON_APP, display_name="scan").value
    secrets.append(secret)
    registration = tenant.identity.directory.find_app(DAEMON_APP)
    assert registration is not None
    argv = ["account", "add", "daemon", "--email", f"alice@{tenant.tenant_domain}",
            "--flow", "client-secret", "--cloud", "custom", "--authority", tenant.authority,
            "--imap-host", tenant.imap_host, "--imap-port", str(tenant.imap_port),
            "--ca-file", str(tenant.ca_file),
            "--client-id", registration.client_id, "--tenant", tenant.tenant_id]  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(argv) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
    assert main(["account", "set-secret", "daemon"]) == 0
    assert main(["login", "daemon"]) == 0
    assert main(["token", "show", "daemon"]) == 0
    assert main(["account", "list"]) == 0
    secrets.extend(cache_secrets(vault, "daemon"))

    # Certificate in a PFX whose passphrase is in the vault.
    folder = idp.sandbox.state_dir / "apps" / DAEMON_APP
    key_file = next(folder.glob("*-key.pem"))
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(
        key_file.with_name(key_file.name.replace("-key", "")).read_bytes()
    )
    pfx_passphrase = "pfx-Passphrase-for-scan"
    secrets.append(pfx_passphrase)
    pfx = tmp_path / "daemon.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"d", key, cert, None,  # type: ignore[arg-type]
            serialization.BestAvailableEncryption(pfx_passphrase.encode()),
        )
    )  # fmt: skip
    vault.set_account_secret("cert", Secret(pfx_passphrase))
    cert_account = sandbox_account(
        idp, f"alice@{idp.tenant_domain}", flow="client-certificate", name="cert",
        certificate=str(pfx),
    )  # fmt: skip
    secrets.append(TokenProvider(cert_account, vault=vault).login().token.reveal())
    secrets.extend(cache_secrets(vault, "cert"))

    # Now look everywhere.
    captured = capsys.readouterr()
    for handler in logging.getLogger("exoimap").handlers:
        handler.flush()
    written = [p for p in exo_home.rglob("*") if p.is_file()]
    names = {p.relative_to(exo_home).as_posix() for p in written}
    assert "config.toml" in names
    assert "vault/token-cache/work.bin" in names
    assert "vault/account-secret/daemon.bin" in names
    assert log_file.stat().st_size > 0
    texts = {str(p): p.read_bytes().decode("utf-8", "replace") for p in written}
    texts["stdout"] = captured.out
    texts["stderr"] = captured.err
    texts["log records"] = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert "Signed in 'daemon'" in texts["stdout"]
    assert "roles:     IMAP.AccessAsApp" in texts["stdout"]  # token show: claims, no token
    assert "audience:  https://outlook.office365.com" in texts["stdout"]
    secrets = [s for s in set(secrets) if len(s) >= 8]
    assert len(secrets) >= 12
    # Look for the whole value and for every 24-character piece of it (stride 48), so a
    # truncated or partly printed token is found too. For a JWT only its signature is
    # secret material: its header and claims (user ids, tenant) appear in public places
    # (the sandbox's refresh tokens are JWTs too; Entra's are opaque).
    pieces: set[str] = set()
    for value in secrets:
        pieces.add(value)
        material = value.rsplit(".", 1)[-1] if value.count(".") >= 2 else value
        pieces.update(material[i : i + 24] for i in range(0, len(material) - 23, 48))
    for where, text in texts.items():
        for piece in pieces:
            assert piece not in text, f"part of a secret ({piece[:6]}...) is in clear in {where}"
