"""Sign-in failures against the sandbox: each error class with its message and fix, a
revoked refresh token, and transient failures (network down, HTTP 503 and 429) that are
retried with backoff and never remove the stored sign-in."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exoimap.auth.policy import TokenRetryPolicy
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.errors import (
    AppMisconfigured,
    ConsentRequired,
    InsufficientPermission,
    InteractionRequired,
    InvalidClientCredentials,
    TenantOrAppNotFound,
    TokenExpiredOrRevoked,
    TransientAuthError,
)
from exoimap.sandbox.identity import DAEMON_APP, PUBLIC_APP, IdentitySandbox, RunningIdentity
from exoimap.secrets import Secret

from .conftest import DeviceApprover, new_user, sandbox_account


def signed_in(idp: RunningIdentity, vault: Vault, **keys: Any) -> tuple[TokenProvider, str]:
    upn = new_user(idp)
    account = sandbox_account(idp, upn, **keys)
    provider = TokenProvider(account, vault=vault, say=DeviceApprover(idp, upn))
    provider.login()
    return provider, upn


def cache_digest(vault: Vault) -> str:
    return hashlib.sha256((vault.directory / "token-cache" / "acct.bin").read_bytes()).hexdigest()


def test_revoked_refresh_token(idp: RunningIdentity, vault: Vault) -> None:
    provider, upn = signed_in(idp, vault)
    idp.admin.revoke_sessions(upn)
    with pytest.raises(TokenExpiredOrRevoked) as info:
        TokenProvider(provider.account, vault=vault).token_info(min_validity=3700)
    assert info.value.code == 50173
    assert "revoked" in str(info.value)
    assert "exoimap login acct" in str(info.value)
    assert vault.has_token_cache("acct")  # kept: only a new sign-in replaces it
    # Signing in again fixes it. (The sandbox stamps tokens in whole seconds, so a token
    # minted in the second of the revocation would count as revoked: move on a second.)
    idp.admin.advance_clock(1.5)
    provider.login()
    assert TokenProvider(provider.account, vault=vault).token_info(min_validity=3700).fresh


def test_not_signed_in(idp: RunningIdentity, vault: Vault) -> None:
    account = sandbox_account(idp, new_user(idp))
    with pytest.raises(TokenExpiredOrRevoked, match="exoimap login acct"):
        TokenProvider(account, vault=vault).access_token()


@pytest.mark.parametrize(
    ("code", "error_class", "words"),
    [
        (50076, InteractionRequired, "multi-factor"),
        (53003, InteractionRequired, "Conditional Access"),
        (70043, TokenExpiredOrRevoked, "sign-in frequency"),
        (70008, TokenExpiredOrRevoked, "expired or was revoked"),
    ],
)
def test_refresh_failures_map_to_their_class(
    idp: RunningIdentity, vault: Vault, code: int, error_class: type[Exception], words: str
) -> None:
    provider, upn = signed_in(idp, vault)
    before = cache_digest(vault)
    idp.admin.fail_next(code, upn=upn)
    with pytest.raises(error_class) as info:
        TokenProvider(provider.account, vault=vault).token_info(min_validity=3700)
    assert words in str(info.value)
    assert "exoimap login acct" in str(info.value)
    assert getattr(info.value, "code", None) == code
    assert vault.load_token_cache("acct") is not None
    assert cache_digest(vault) == before  # the stored sign-in is untouched


def test_refresh_token_inactive_for_90_days(idp: RunningIdentity, vault: Vault) -> None:
    provider, _ = signed_in(idp, vault)
    idp.admin.advance_clock(91 * 86400)
    try:
        with pytest.raises(TokenExpiredOrRevoked) as info:
            TokenProvider(provider.account, vault=vault).token_info(min_validity=3700)
    finally:
        idp.admin.advance_clock(-91 * 86400)
    assert info.value.code == 700082
    assert "90 days" in str(info.value)


def test_inactivity_warning_before_the_90_day_limit(
    idp: RunningIdentity, vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    provider, _ = signed_in(idp, vault)
    stored = vault.load_token_cache("acct")
    assert stored is not None
    cache = json.loads(stored.reveal())
    for entry in cache["RefreshToken"].values():  # as if last used 80 days ago
        entry["last_modification_time"] = str(int(entry["last_modification_time"]) - 80 * 86400)
    vault.save_token_cache("acct", Secret(json.dumps(cache)))
    with caplog.at_level(logging.WARNING, logger="exoimap.auth"):
        TokenProvider(provider.account, vault=vault).token_info()
    assert any("unused for 80 days" in r.getMessage() for r in caplog.records)


def test_missing_consent_gives_the_admin_consent_url(idp: RunningIdentity, vault: Vault) -> None:
    app = idp.admin.create_app(
        "no-consent-app",
        public=True,
        delegated=["https://outlook.office.com/IMAP.AccessAsUser.All"],
        admin_consent=False,
    )
    idp.admin.set_tenant_policy(user_consent_allowed=False)
    try:
        upn = new_user(idp)
        account = sandbox_account(idp, upn, client_id=app.client_id)
        with pytest.raises(ConsentRequired) as info:
            TokenProvider(account, vault=vault, say=DeviceApprover(idp, upn)).login()
    finally:
        idp.admin.set_tenant_policy(user_consent_allowed=True)
    assert info.value.code == 65001
    assert info.value.fix is not None
    assert f"{idp.authority}/v2.0/adminconsent?client_id={app.client_id}" in info.value.fix


def test_unknown_app(idp: RunningIdentity, vault: Vault) -> None:
    account = sandbox_account(idp, new_user(idp), client_id="99999999-9999-9999-9999-999999999999")
    with pytest.raises(TenantOrAppNotFound) as info:
        TokenProvider(account, vault=vault, say=lambda _: None).login()
    assert info.value.code == 700016
    assert "99999999-9999-9999-9999-999999999999" in str(info.value)
    assert "client_id" in str(info.value)


def test_unknown_tenant(idp: RunningIdentity, vault: Vault) -> None:
    authority = f"{idp.base_url}/nosuch.example"
    account = sandbox_account(idp, new_user(idp), authority=authority)
    with pytest.raises(TenantOrAppNotFound, match="tenant"):
        TokenProvider(account, vault=vault, say=lambda _: None).login()


def test_public_app_used_for_app_only(idp: RunningIdentity, vault: Vault) -> None:
    public = idp.sandbox.directory.find_app(PUBLIC_APP)
    assert public is not None
    vault.set_account_secret("acct", Secret("abc8Q~a-secret-for-a-public-client-app-00"))
    account = sandbox_account(
        idp, f"alice@{idp.tenant_domain}", flow="client-secret", client_id=public.client_id
    )
    with pytest.raises(AppMisconfigured) as info:
        TokenProvider(account, vault=vault).login()
    assert info.value.code == 700025
    assert "public client" in str(info.value)


def test_declined_device_sign_in(idp: RunningIdentity, vault: Vault) -> None:
    upn = new_user(idp)
    account = sandbox_account(idp, upn)
    with pytest.raises(InteractionRequired, match="declined"):
        TokenProvider(account, vault=vault, say=DeviceApprover(idp, upn, approve=False)).login()
    assert not vault.has_token_cache("acct")


def test_wrong_and_expired_client_secrets(idp: RunningIdentity, vault: Vault) -> None:
    account = sandbox_account(idp, f"alice@{idp.tenant_domain}", flow="client-secret")
    vault.set_account_secret("acct", Secret("abc8Q~this-is-not-the-secret-value-at-all"))
    with pytest.raises(InvalidClientCredentials) as info:
        TokenProvider(account, vault=vault).login()
    assert info.value.code == 7000215
    assert "exoimap account set-secret acct" in str(info.value)
    assert "Value (not its Secret ID)" in str(info.value)
    expired = idp.admin.add_client_secret(DAEMON_APP, lifetime=-60)
    vault.set_account_secret("acct", Secret(expired.value))
    with pytest.raises(InvalidClientCredentials) as info:
        TokenProvider(account, vault=vault).login()
    assert info.value.code == 7000222
    assert "expired" in str(info.value)


def test_token_without_the_imap_permission_is_refused(idp: RunningIdentity, vault: Vault) -> None:
    app = idp.admin.create_app(
        "smtp-only-daemon",
        public=False,
        application=["https://outlook.office365.com/SMTP.SendAsApp"],
        admin_consent=True,
    )
    secret = idp.admin.add_client_secret("smtp-only-daemon")
    vault.set_account_secret("acct", Secret(secret.value))
    account = sandbox_account(
        idp, f"alice@{idp.tenant_domain}", flow="client-secret", client_id=app.client_id
    )
    with pytest.raises(InsufficientPermission) as info:
        TokenProvider(account, vault=vault).login()
    assert "IMAP.AccessAsApp" in str(info.value)
    assert "SMTP.SendAsApp" in str(info.value)


def test_broad_permissions_are_warned_about(
    idp: RunningIdentity, vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    app = idp.admin.create_app(
        "greedy-daemon",
        public=False,
        application=[
            "https://outlook.office365.com/IMAP.AccessAsApp",
            "https://outlook.office365.com/full_access_as_app",
        ],
        admin_consent=True,
    )
    secret = idp.admin.add_client_secret("greedy-daemon")
    vault.set_account_secret("acct", Secret(secret.value))
    account = sandbox_account(
        idp, f"alice@{idp.tenant_domain}", flow="client-secret", client_id=app.client_id
    )
    with caplog.at_level(logging.WARNING, logger="exoimap.auth"):
        info = TokenProvider(account, vault=vault).login()
    assert any("full_access_as_app" in w for w in info.warnings)
    assert any("full_access_as_app" in r.getMessage() for r in caplog.records)


# --- transient failures --------------------------------------------------------------------


class FaultyTokenEndpoint:
    """ASGI middleware in front of the sandbox: the next ``count`` token requests get
    ``status`` (503 or 429, with Retry-After) instead of reaching the sandbox."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.status = 503
        self.count = 0
        self.hits = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/oauth2/v2.0/token"):
            self.hits += 1
            if self.count > 0:
                self.count -= 1
                body = json.dumps(
                    {"error": "temporarily_unavailable", "error_description": "busy"}
                ).encode()
                headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
                await send(
                    {"type": "http.response.start", "status": self.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@pytest.fixture
def own_idp(tmp_path: Path) -> tuple[IdentitySandbox, FaultyTokenEndpoint]:
    """A sandbox this test may stop, restart and put faults in front of."""
    sandbox = IdentitySandbox.open(tmp_path / "own-idp")
    faults = FaultyTokenEndpoint(sandbox.app)
    sandbox.app = faults  # type: ignore[assignment]
    return sandbox, faults


class Sleeps:
    def __init__(self, action: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self.action = action

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.action is not None:
            self.action()
            self.action = None


def test_network_down_is_retried_and_keeps_the_token(
    own_idp: tuple[IdentitySandbox, FaultyTokenEndpoint], vault: Vault
) -> None:
    sandbox, _ = own_idp
    with contextlib.ExitStack() as stack:
        running = stack.enter_context(sandbox.running())
        upn = f"alice@{running.tenant_domain}"
        account = sandbox_account(running, upn)
        TokenProvider(account, vault=vault, say=DeviceApprover(running, upn)).login()
        port = running.port
    before = cache_digest(vault)
    # The server is down: every attempt fails, with backoff between them.
    sleeps = Sleeps()
    provider = TokenProvider(account, vault=vault, retry=TokenRetryPolicy(attempts=3, sleep=sleeps))
    with pytest.raises(TransientAuthError) as info:
        provider.token_info(min_validity=3700)
    assert "kept" in str(info.value)
    assert info.value.retryable
    assert len(sleeps.delays) == 2
    assert sleeps.delays[1] > sleeps.delays[0] * 0.9  # backoff grows (with jitter)
    assert cache_digest(vault) == before
    # The server comes back while we wait: the retry succeeds.
    with contextlib.ExitStack() as stack:
        sleeps = Sleeps(lambda: stack.enter_context(sandbox.running(port=port)))
        provider = TokenProvider(account, vault=vault, retry=TokenRetryPolicy(sleep=sleeps))
        assert provider.token_info(min_validity=3700).fresh
        assert len(sleeps.delays) == 1
    assert cache_digest(vault) != before  # the rotated refresh token was saved


@pytest.mark.parametrize("status", [503, 429])
def test_http_5xx_and_429_are_retried_and_keep_the_token(
    own_idp: tuple[IdentitySandbox, FaultyTokenEndpoint], vault: Vault, status: int
) -> None:
    sandbox, faults = own_idp
    with sandbox.running() as running:
        upn = f"alice@{running.tenant_domain}"
        account = sandbox_account(running, upn)
        TokenProvider(account, vault=vault, say=DeviceApprover(running, upn)).login()
        before = cache_digest(vault)
        faults.status, faults.count, faults.hits = status, 10, 0
        sleeps = Sleeps()
        provider = TokenProvider(
            account, vault=vault, retry=TokenRetryPolicy(attempts=3, sleep=sleeps)
        )
        with pytest.raises(TransientAuthError, match="kept"):
            provider.token_info(min_validity=3700)
        assert faults.hits == 3  # every retry really asked the server again
        assert cache_digest(vault) == before
        faults.count = 1
        sleeps = Sleeps()
        provider = TokenProvider(account, vault=vault, retry=TokenRetryPolicy(sleep=sleeps))
        assert provider.token_info(min_validity=3700).fresh
        assert len(sleeps.delays) == 1


def test_token_requests_refreshes_and_failures_are_audited(
    idp: RunningIdentity, vault: Vault
) -> None:
    from exoimap import audit
    from exoimap.audit import events

    seen: list[events.AuditEvent] = []
    auditor = audit.Auditor(None)
    auditor.add_listener(seen.append)
    with audit.use_auditor(auditor):
        provider, upn = signed_in(idp, vault)  # interactive sign-in: token.requested
        provider.token_info(min_validity=10)  # a cache hit: nothing to record
        TokenProvider(provider.account, vault=vault).token_info(min_validity=3700)  # refresh
        idp.admin.fail_next(50076, upn=upn)
        with pytest.raises(InteractionRequired):
            TokenProvider(provider.account, vault=vault).token_info(min_validity=3700)
    names = [event.name for event in seen]
    assert names == ["token.requested", "token.refreshed", "token.failed"]
    requested, refreshed, failed = seen
    assert isinstance(refreshed, events.TokenRefreshed)
    assert refreshed.flow == "device"
    assert refreshed.scopes == ("https://outlook.office.com/IMAP.AccessAsUser.All",)
    assert refreshed.expires_in is not None
    assert refreshed.expires_in > 3000
    assert isinstance(failed, events.TokenFailed)
    assert failed.aadsts == 50076
    assert failed.outcome == "failure"
    assert requested.account == "acct"
