"""Issue 23, item 6: ``exoimap login`` for an app-only account signs in to IMAP once and names
the one step missing in Exchange Online (the sandbox answers with Exchange's own strings);
a later sync's cause list leaves out what exoimap already checked (audience, role)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from exoimap.auth.vault import Vault
from exoimap.cli import EXIT_SIGN_IN, main
from exoimap.sandbox.identity.model import AppRegistration
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret

from .sync_helpers import add_account, isolated_home, new_mailbox
from .sync_helpers import login as sync_login


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def app_only_account(tenant: SandboxTenant) -> tuple[AppRegistration, str]:
    """Account ``daemon``: a new mailbox, read by a new confidential app with IMAP.AccessAsApp
    (admin-consented, its secret stored) that Exchange does not know yet."""
    app = tenant.admin.create_app(
        f"daemon-{uuid.uuid4().hex[:8]}",
        public=False,
        application=["https://outlook.office365.com/IMAP.AccessAsApp"],
        admin_consent=True,
    )
    upn = new_mailbox(tenant, {"INBOX": 1})
    secret = tenant.admin.add_client_secret(app.name)
    assert main(["account", "add", "daemon", "--email", upn, "--flow", "client-secret",
                 "--cloud", "custom", "--authority", tenant.authority,
                 "--tenant", tenant.tenant_id, "--ca-file", str(tenant.ca_file),
                 "--imap-host", tenant.imap_host, "--imap-port", str(tenant.imap_port),
                 "--client-id", app.client_id]) == 0  # fmt: skip
    Vault.from_paths().set_account_secret("daemon", Secret(secret.value))
    return app, upn


def login(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["login", "daemon"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_login_names_each_missing_exchange_step_in_turn(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, upn = app_only_account(sandbox_tenant)
    principal = app.service_principal_id

    # 1. Not registered in Exchange: Exchange says only "AUTHENTICATE failed."
    code, out, err = login(capsys)
    assert code == EXIT_SIGN_IN
    assert "Got an app-only token for 'daemon'" in out
    assert "Signed in" not in out
    (line,) = err.splitlines()
    assert "refused the app-only XOAUTH2 sign-in" in line
    assert "'AUTHENTICATE failed.'" in line
    assert f"New-ServicePrincipal -AppId {app.client_id} -ObjectId {principal}" in line
    assert "audience" not in line  # checked before: not a cause
    assert "Likely causes" not in line

    # 2. Registered with the App Registration's object id (Microsoft's "wrong Object ID").
    sandbox_tenant.admin.register_exchange_principal(app.name, object_id=app.object_id)
    code, _, err = login(capsys)
    assert code == EXIT_SIGN_IN
    assert f"-ObjectId {principal} (the Enterprise Application's object id" in err

    # 3. Registered, but no mailbox permission: "User is authenticated but not connected."
    sandbox_tenant.admin.register_exchange_principal(app.name)
    code, out, err = login(capsys)
    assert code == EXIT_SIGN_IN
    (line,) = err.splitlines()
    assert "accepted the app-only XOAUTH2 sign-in" in line
    assert "'User is authenticated but not connected.'" in line
    grant = f'Add-MailboxPermission -Identity "{upn}" -User {principal} -AccessRights FullAccess'
    assert grant in line
    assert "New-ServicePrincipal" not in line

    # 4. Nothing missing: signed in.
    sandbox_tenant.admin.add_mailbox_permission(upn, app.name)
    code, out, err = login(capsys)
    assert code == 0, err
    assert f"Signed in 'daemon' as {upn}" in out


def test_a_later_sync_does_not_blame_what_login_ruled_out(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, upn = app_only_account(sandbox_tenant)
    sandbox_tenant.admin.register_exchange_principal(app.name)
    sandbox_tenant.admin.add_mailbox_permission(upn, app.name)
    assert login(capsys)[0] == 0
    # The permission is taken away after login: the sync names it, and only it.
    sandbox_tenant.admin.remove_mailbox_permission(upn, app.name)
    assert main(["sync", "daemon"]) == EXIT_SIGN_IN
    err = capsys.readouterr().err
    assert "Add-MailboxPermission" in err
    for ruled_out in ("audience", "IMAP permission", "lacks", "expired", "Likely causes"):
        assert ruled_out not in err, ruled_out


def test_a_delegated_refusal_lists_only_what_the_token_check_left_open(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = new_mailbox(sandbox_tenant, {"INBOX": 1})
    # The account names a mailbox that does not exist; the user signs in as themselves.
    add_account(sandbox_tenant, "typo", f"nobody-{uuid.uuid4().hex[:6]}@contoso.onmicrosoft.com")
    sync_login(sandbox_tenant, "typo", user)
    capsys.readouterr()
    assert main(["sync", "typo"]) == EXIT_SIGN_IN
    err = capsys.readouterr().err
    assert "'AUTHENTICATE failed.'" in err
    assert "the token is for Exchange Online and carries IMAP.AccessAsUser.All" in err
    assert "the user= name is not the mailbox the token was issued for" in err
    for ruled_out in ("audience", "lacks the IMAP", "has expired", "service principal"):
        assert ruled_out not in err, ruled_out
