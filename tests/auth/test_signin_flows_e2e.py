"""Each sign-in flow end to end against the sandbox identity platform, over HTTPS, with real
MSAL: device code, browser + PKCE on a loopback redirect, client secret, certificate (PEM and
PFX); refresh and refresh-token rotation persisted in the vault."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.errors import InvalidClientCredentials
from exoimap.sandbox.identity import DAEMON_APP, RunningIdentity
from exoimap.secrets import Secret

from .conftest import DeviceApprover, new_user, sandbox_account


def stored_cache(vault: Vault, name: str = "acct") -> dict[str, dict[str, dict[str, str]]]:
    secret = vault.load_token_cache(name)
    assert secret is not None
    data: dict[str, dict[str, dict[str, str]]] = json.loads(secret.reveal())
    return data


def refresh_token_of(vault: Vault, name: str = "acct") -> str:
    (entry,) = stored_cache(vault, name)["RefreshToken"].values()
    return entry["secret"]


def test_device_code_login_refresh_and_rotation(idp: RunningIdentity, vault: Vault) -> None:
    upn = new_user(idp)
    approver = DeviceApprover(idp, upn)
    provider = TokenProvider(sandbox_account(idp, upn), vault=vault, say=approver)
    info = provider.login()
    assert "enter the code" in approver.messages[0]
    assert info.fresh
    assert info.claims is not None
    assert info.claims.user == upn
    assert info.claims.audience == "https://outlook.office.com"
    assert info.claims.scopes == ("IMAP.AccessAsUser.All",)
    assert provider.expires_at() == info.expires_at
    assert info.expires_at - time.time() > 3000
    first_rt = refresh_token_of(vault)

    # A second provider (as another run would) finds the cached token without a request.
    again = TokenProvider(sandbox_account(idp, upn), vault=Vault(vault.directory))
    cached = again.token_info()
    assert not cached.fresh
    assert cached.token == info.token

    # Asking for more validity than the cached token has left refreshes proactively; the
    # rotated refresh token is in the vault as soon as the call returns.
    refreshed = again.token_info(min_validity=3700)
    assert refreshed.fresh
    assert refreshed.token != info.token
    second_rt = refresh_token_of(vault)
    assert second_rt != first_rt
    assert again.refresh_token_last_used() == pytest.approx(time.time(), abs=10)

    # And a third run uses the rotated one.
    third = TokenProvider(sandbox_account(idp, upn), vault=Vault(vault.directory))
    assert third.token_info(min_validity=3700).fresh
    assert refresh_token_of(vault) not in (first_rt, second_rt)


def test_async_access_token(idp: RunningIdentity, vault: Vault) -> None:
    import asyncio

    upn = new_user(idp)
    provider = TokenProvider(sandbox_account(idp, upn), vault=vault, say=DeviceApprover(idp, upn))
    provider.login()
    token = asyncio.run(provider.access_token_async())
    assert token == provider.access_token()


def drive_sign_in(url: str, ca_file: Path, upn: str, password: str) -> requests.Response:
    """What the user does in the browser: follow the sign-in page's forms to the redirect."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_file)
    page = session.get(url, timeout=10)
    data = {"login": upn, "passwd": password}
    for _ in range(5):
        assert page.status_code == 200, page.text[:300]
        action = _form_action(page.text)
        fields = dict(_hidden_fields(page.text))
        if "name=passwd" in page.text:
            fields.update(data)
        elif "value=accept" in page.text:
            fields["action"] = "accept"
        elif "value=approve" in page.text:
            fields["action"] = "approve"
        page = session.post(urljoin(page.url, action), data=fields, timeout=10)
        if page.url.startswith("http://localhost:"):
            return page
    raise AssertionError("the sign-in did not reach the redirect")


def _form_action(html: str) -> str:
    start = html.index("<form")
    start = html.index('action="', start) + len('action="')
    return html[start : html.index('"', start)].replace("&amp;", "&")


def _hidden_fields(html: str) -> list[tuple[str, str]]:
    import re

    return [
        (m.group(1), m.group(2).replace("&amp;", "&"))
        for m in re.finditer(r'<input type=hidden name="([^"]*)" value="([^"]*)">', html)
    ]


def test_browser_login_with_pkce_on_a_loopback_redirect(idp: RunningIdentity, vault: Vault) -> None:
    upn = new_user(idp, password="Browser-Pass-1!")
    said: list[str] = []
    seen: list[str] = []

    def browser(url: str) -> bool:
        seen.append(url)
        threading.Thread(
            target=drive_sign_in, args=(url, idp.ca_file, upn, "Browser-Pass-1!"), daemon=True
        ).start()
        return True

    provider = TokenProvider(
        sandbox_account(idp, upn, flow="browser"),
        vault=vault,
        say=said.append,
        open_browser=browser,
        browser_timeout=20,
    )
    info = provider.login()
    assert info.claims is not None
    assert info.claims.user == upn
    assert info.claims.scopes == ("IMAP.AccessAsUser.All",)
    (url,) = seen
    assert "code_challenge_method=S256" in url
    assert "response_mode=form_post" in url  # the code never sits in a URL
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in url  # the seeded app's http://localhost
    assert url in said[0]  # the URL is always printed too
    assert provider.token_info(min_validity=3700).fresh  # its refresh token works


def test_browser_login_prints_the_url_when_no_browser_opens(
    idp: RunningIdentity, vault: Vault
) -> None:
    upn = new_user(idp, password="Browser-Pass-2!")
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        if text.startswith("Sign in at this address"):
            url = text.splitlines()[1]
            # The user copies the printed URL into a browser elsewhere.
            threading.Thread(
                target=drive_sign_in,
                args=(url, idp.ca_file, upn, "Browser-Pass-2!"),
                daemon=True,
            ).start()

    provider = TokenProvider(
        sandbox_account(idp, upn, flow="browser"),
        vault=vault,
        say=say,
        open_browser=lambda url: False,
        browser_timeout=20,
    )
    info = provider.login()
    assert info.claims is not None
    assert info.claims.user == upn
    assert any("No browser could be opened" in s for s in said)


def test_client_secret_app_only(idp: RunningIdentity, vault: Vault) -> None:
    secret = idp.admin.add_client_secret(DAEMON_APP, display_name="e2e")
    vault.set_account_secret("acct", Secret(secret.value))
    account = sandbox_account(idp, f"alice@{idp.tenant_domain}", flow="client-secret")
    provider = TokenProvider(account, vault=vault)
    info = provider.login()
    assert info.claims is not None
    assert info.claims.app_only
    assert info.claims.roles == ("IMAP.AccessAsApp",)
    assert info.claims.audience == "https://outlook.office365.com"
    assert not info.warnings
    # The next call is served from the (encrypted) cache, then proactive refresh re-asks.
    assert not provider.token_info().fresh
    assert provider.token_info(min_validity=3700).fresh
    assert provider.refresh_token_last_used() is None


def test_client_secret_missing(idp: RunningIdentity, vault: Vault) -> None:
    account = sandbox_account(idp, f"alice@{idp.tenant_domain}", flow="client-secret")
    with pytest.raises(InvalidClientCredentials, match="set-secret acct"):
        TokenProvider(account, vault=vault).login()


def daemon_cert_files(idp: RunningIdentity) -> tuple[Path, Path]:
    folder = idp.sandbox.state_dir / "apps" / DAEMON_APP
    key = next(folder.glob("*-key.pem"))
    cert = key.with_name(key.name.replace("-key", ""))
    return cert, key


def test_client_certificate_pem(idp: RunningIdentity, vault: Vault, tmp_path: Path) -> None:
    cert, key = daemon_cert_files(idp)
    combined = tmp_path / "app.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    account = sandbox_account(
        idp, f"alice@{idp.tenant_domain}", flow="client-certificate", certificate=str(combined)
    )
    info = TokenProvider(account, vault=vault).login()
    assert info.claims is not None
    assert info.claims.roles == ("IMAP.AccessAsApp",)
    assert info.claims.raw.get("appidacr") == "2"  # certificate credential


def test_client_certificate_pfx_with_passphrase(
    idp: RunningIdentity, vault: Vault, tmp_path: Path
) -> None:
    from cryptography import x509

    cert_path, key_path = daemon_cert_files(idp)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"daemon",
            key,  # type: ignore[arg-type]
            cert,
            None,
            serialization.BestAvailableEncryption(b"pfx-passphrase"),
        )
    )
    account = sandbox_account(
        idp, f"alice@{idp.tenant_domain}", flow="client-certificate", certificate=str(pfx)
    )
    provider = TokenProvider(account, vault=vault)
    with pytest.raises(InvalidClientCredentials, match="is encrypted"):
        provider.login()
    vault.set_account_secret("acct", Secret("wrong passphrase"))
    with pytest.raises(InvalidClientCredentials, match="does not open"):
        TokenProvider(account, vault=vault).login()
    vault.set_account_secret("acct", Secret("pfx-passphrase"))
    info = TokenProvider(account, vault=vault).login()
    assert info.claims is not None
    assert info.claims.roles == ("IMAP.AccessAsApp",)


def test_logout_removes_local_tokens(idp: RunningIdentity, vault: Vault) -> None:
    upn = new_user(idp)
    provider = TokenProvider(sandbox_account(idp, upn), vault=vault, say=DeviceApprover(idp, upn))
    provider.login()
    assert vault.has_token_cache("acct")
    assert provider.logout() is True
    assert not vault.has_token_cache("acct")
    assert provider.logout() is False


def test_no_display_means_no_browser_is_started() -> None:
    from exoimap.auth.provider import open_system_browser

    if sys.platform.startswith("linux"):
        assert open_system_browser("https://example.invalid/", environ={}) is False
