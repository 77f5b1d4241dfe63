"""The sandbox's Microsoft Graph ``getMemberObjects``: every group of a user, nested ones
included, for a token with ``GroupMember.Read.All`` (or ``Directory.Read.All``)."""

from __future__ import annotations

import uuid
from pathlib import Path

from exoimap.sandbox.backup_app import make_backup_app
from exoimap.sandbox.tenant import SandboxTenant

GRAPH = "https://graph.microsoft.com"


def _user(sandbox: SandboxTenant, groups: int) -> tuple[str, str, list[str]]:
    """A new user (upn, oid) directly in ``groups`` groups."""
    upn = f"member-{uuid.uuid4().hex[:8]}@{sandbox.tenant_domain}"
    user = sandbox.admin.create_user(upn, password="Sandbox-Pass-1!")
    direct = [str(uuid.uuid4()) for _ in range(groups)]
    for group in direct:
        sandbox.admin.add_to_group(upn, group)
    return upn, user.oid, direct


def test_delegated_token_gets_every_group_of_its_own_user(sandbox_tenant: SandboxTenant) -> None:
    upn, oid, direct = _user(sandbox_tenant, 250)
    inner = sandbox_tenant.admin.create_group("inner", [upn])
    outer = sandbox_tenant.admin.create_group("outer", [inner.object_id])
    _, other_oid, _ = _user(sandbox_tenant, 1)
    token = sandbox_tenant.user_token(upn, scope=f"{GRAPH}/GroupMember.Read.All")
    bearer = {"Authorization": f"Bearer {token}"}
    base = sandbox_tenant.identity_url
    with sandbox_tenant.http_session() as http:
        me = http.post(
            f"{base}/v1.0/me/getMemberObjects",
            json={"securityEnabledOnly": True},
            headers=bearer,
            timeout=30,
        )
        assert me.status_code == 200, me.text
        assert sorted(me.json()["value"]) == sorted([*direct, inner.object_id, outer.object_id])
        own = http.post(
            f"{base}/v1.0/users/{oid.upper()}/getMemberObjects",
            json={"securityEnabledOnly": False},
            headers=bearer,
            timeout=30,
        )
        assert sorted(own.json()["value"]) == sorted(me.json()["value"])
        # a delegated token asks about its own user only
        other = http.post(
            f"{base}/v1.0/users/{other_oid}/getMemberObjects",
            json={"securityEnabledOnly": False},
            headers=bearer,
            timeout=30,
        )
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "Authorization_RequestDenied"
        odd = http.post(
            f"{base}/v1.0/me/getMemberObjects", json={"x": 1}, headers=bearer, timeout=30
        )
        assert odd.status_code == 400
        assert odd.json()["error"]["code"] == "Request_BadRequest"


def test_a_token_without_the_permission_is_refused_graph_style(
    sandbox_tenant: SandboxTenant,
) -> None:
    upn, _, _ = _user(sandbox_tenant, 3)
    token = sandbox_tenant.user_token(upn, scope=f"{GRAPH}/User.Read")
    with sandbox_tenant.http_session() as http:
        refused = http.post(
            f"{sandbox_tenant.identity_url}/v1.0/me/getMemberObjects",
            json={"securityEnabledOnly": False},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        anonymous = http.post(
            f"{sandbox_tenant.identity_url}/v1.0/me/getMemberObjects",
            json={"securityEnabledOnly": False},
            timeout=30,
        )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert error["message"] == "Insufficient privileges to complete the operation."
    assert "request-id" in error["innerError"]
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_an_app_only_token_may_ask_about_any_user_but_not_me(
    sandbox_tenant: SandboxTenant, tmp_path: Path
) -> None:
    app = make_backup_app(
        sandbox_tenant, f"groups-{uuid.uuid4().hex[:8]}", tmp_path, graph=("Directory.Read.All",)
    )
    upn, _, direct = _user(sandbox_tenant, 2)
    token = sandbox_tenant.app_token(app.name, scope=f"{GRAPH}/.default")
    bearer = {"Authorization": f"Bearer {token}"}
    base = sandbox_tenant.identity_url
    with sandbox_tenant.http_session() as http:
        by_upn = http.post(
            f"{base}/v1.0/users/{upn}/getMemberObjects",
            json={"securityEnabledOnly": True},
            headers=bearer,
            timeout=30,
        )
        assert by_upn.status_code == 200, by_upn.text
        assert sorted(by_upn.json()["value"]) == sorted(direct)
        nobody = http.post(
            f"{base}/v1.0/users/{uuid.uuid4()}/getMemberObjects",
            json={"securityEnabledOnly": True},
            headers=bearer,
            timeout=30,
        )
        assert nobody.status_code == 404
        assert nobody.json()["error"]["code"] == "Request_ResourceNotFound"
        me = http.post(
            f"{base}/v1.0/me/getMemberObjects",
            json={"securityEnabledOnly": True},
            headers=bearer,
            timeout=30,
        )
        assert me.status_code == 400
