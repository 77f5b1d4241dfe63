"""Fixtures for the auth tests: an isolated exoimap home with a fast vault KDF."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exoimap.auth import vault as vault_module
from exoimap.auth.vault import ScryptParams, Vault
from exoimap.config import AccountConfig, parse_config
from exoimap.sandbox.identity import DAEMON_APP, PUBLIC_APP, IdentitySandbox, RunningIdentity

TEST_PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def exo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EXOIMAP_HOME in a temp dir, passphrase vault, no OS keyring, cheap scrypt."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("EXOIMAP_HOME", str(home))
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", TEST_PASSPHRASE)
    monkeypatch.setenv("EXOIMAP_NO_KEYRING", "1")
    monkeypatch.delenv("EXOIMAP_VAULT_KEY_FILE", raising=False)
    monkeypatch.setattr(vault_module, "DEFAULT_SCRYPT", ScryptParams(n=2**10, r=8, p=1))
    return home


@pytest.fixture
def vault(exo_home: Path) -> Vault:
    return Vault(exo_home / "vault")


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_jwt(claims: dict[str, object], header: dict[str, object] | None = None) -> str:
    """A JWT-shaped token with an Exchange-style header (nonce) and a dummy signature.

    Exchange tokens cannot be signature-checked by clients, so claims reading never looks at
    the signature; these tokens have the same shape.
    """
    head = header or {"typ": "JWT", "nonce": "abc", "alg": "RS256", "kid": "k1", "x5t": "k1"}
    return f"{b64url(head)}.{b64url(claims)}.c2lnbmF0dXJl"


def delegated_claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "aud": "https://outlook.office.com",
        "iss": "https://sts.windows.net/11111111-1111-1111-1111-111111111111/",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scp": "IMAP.AccessAsUser.All",
        "upn": "ada@contoso.example",
        "appid": "22222222-2222-2222-2222-222222222222",
        "tid": "11111111-1111-1111-1111-111111111111",
        "oid": "33333333-3333-3333-3333-333333333333",
        "ver": "1.0",
    }
    claims.update(overrides)
    return claims


def app_claims(**overrides: object) -> dict[str, object]:
    claims = delegated_claims(aud="https://outlook.office365.com", idtyp="app")
    del claims["scp"]
    del claims["upn"]
    claims["roles"] = ["IMAP.AccessAsApp"]
    claims.update(overrides)
    return claims


# --- the sandbox identity platform ----------------------------------------------------------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdentity]:
    """One running sandbox identity platform per test module (HTTPS, local CA)."""
    sandbox = IdentitySandbox.open(tmp_path_factory.mktemp("idp"))
    sandbox.admin.configure(device_code_interval=1)
    with sandbox.running() as running:
        yield running


def new_user(idp: RunningIdentity, *, password: str = "Sandbox-Pass-1!") -> str:
    """A fresh user per test, so injected errors and revocations stay in their test."""
    upn = f"u{uuid.uuid4().hex[:10]}@{idp.tenant_domain}"
    idp.admin.create_user(upn, password=password)
    return upn


def client_id(idp: RunningIdentity, app: str) -> str:
    registration = idp.sandbox.directory.find_app(app)
    assert registration is not None
    return registration.client_id


def sandbox_account(
    idp: RunningIdentity, email: str, *, flow: str = "device", name: str = "acct", **keys: object
) -> AccountConfig:
    """An account of the ``custom`` cloud pointing at the sandbox."""
    table: dict[str, object] = {
        "email": email,
        "cloud": "custom",
        "authority": idp.authority,
        "imap_host": "127.0.0.1",
        "ca_file": str(idp.ca_file),
        "flow": flow,
        "client_id": client_id(idp, DAEMON_APP if flow.startswith("client-") else PUBLIC_APP),
    }
    if flow.startswith("client-"):
        table["tenant"] = idp.tenant_id
    table.update(keys)
    return parse_config({"accounts": {name: table}}, Path("sandbox.toml")).account(name)


@dataclass
class DeviceApprover:
    """Plays the user on the device-login page: approves each code the moment it is shown
    (before MSAL's first poll), as ``upn``; or declines it."""

    idp: RunningIdentity
    upn: str
    approve: bool = True
    messages: list[str] = field(default_factory=list)

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        match = re.search(r"enter the code ([A-Z0-9]{9})", message)
        if match:
            self.idp.admin.approve_device_code(match.group(1), upn=self.upn, approve=self.approve)
