"""Fixtures for the auth tests: an isolated exoimap home with a fast vault KDF."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from exoimap.auth import vault as vault_module
from exoimap.auth.vault import ScryptParams, Vault

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
