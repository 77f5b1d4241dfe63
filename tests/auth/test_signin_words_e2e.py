"""What a failed sign-in says about the stored one (issue 23, item 10): "the stored sign-in
was kept" only when there is one, and a refresh that failed for good is remembered for
`account list` until the next sign-in."""

from __future__ import annotations

import pytest

from exoimap.auth import refresh_status
from exoimap.auth.policy import TokenRetryPolicy
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.errors import TokenExpiredOrRevoked, TransientAuthError
from exoimap.sandbox.identity import IdentitySandbox, RunningIdentity

from .conftest import DeviceApprover, sandbox_account
from .test_signin_errors_e2e import FaultyTokenEndpoint, Sleeps, own_idp, signed_in

__all__ = ["own_idp"]  # the fixture, used by name below


def test_the_stored_sign_in_is_said_kept_only_when_there_is_one(
    own_idp: tuple[IdentitySandbox, FaultyTokenEndpoint], vault: Vault
) -> None:
    sandbox, faults = own_idp
    with sandbox.running() as running:
        upn = f"alice@{running.tenant_domain}"
        account = sandbox_account(running, upn)
        approver = DeviceApprover(running, upn)
        TokenProvider(account, vault=vault, say=approver).login()
        retry = TokenRetryPolicy(attempts=2, sleep=Sleeps())
        provider = TokenProvider(account, vault=vault, retry=retry, say=approver)

        faults.status, faults.count = 503, 10
        with pytest.raises(TransientAuthError) as kept:
            provider.token_info(min_validity=3700)
        assert str(kept.value).count(". The stored sign-in was kept. ") == 1
        assert vault.has_token_cache("acct")

        faults.count = 0
        assert provider.logout()
        faults.count = 10
        with pytest.raises(TransientAuthError) as nothing_stored:
            provider.login()
        assert "kept" not in str(nothing_stored.value)
        assert "HTTP 503" in str(nothing_stored.value)
        assert not vault.has_token_cache("acct")


def test_a_revoked_refresh_is_remembered_until_the_next_sign_in(
    idp: RunningIdentity, vault: Vault
) -> None:
    provider, upn = signed_in(idp, vault)
    assert refresh_status.last_failure(vault.directory, "acct") is None
    idp.admin.revoke_sessions(upn)
    with pytest.raises(TokenExpiredOrRevoked):
        TokenProvider(provider.account, vault=vault).token_info(min_validity=3700)
    failure = refresh_status.last_failure(vault.directory, "acct")
    assert failure is not None
    assert failure.reason.startswith("the refresh token was revoked")
    assert "AADSTS50173" in failure.reason
    assert not failure.reason.startswith("account")
    idp.admin.advance_clock(1.5)  # tokens are stamped in whole seconds (see the errors test)
    provider.login()
    assert refresh_status.last_failure(vault.directory, "acct") is None
