"""The sandbox's Microsoft Graph ``getMemberObjects``: every group of a user, nested ones
included, for a token with ``GroupMember.Read.All`` (or ``Directory.Read.All``)."""

from __future__ import annotations

import uuid
from pathlib import Path

import requests

from exoimap.sandbox.backup_app import make_backup_app
from exoimap.sandbox.tenant import SandboxTenant

GRAPH = "https://graph.microsoft.com"


def _member_objects(
    http: requests.Session,
    sandbox: SandboxTenant,
    who: str,
    token: str | None,
    body: dict[str, object] | None = None,
) -> requests.Response:
    """``POST /v1.0/{who}/getMemberObjects`` (``who``: ``me`` or ``users/ID``)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http.post(
        f"{sandbox.identity_url}/v1.0/{who}/getMemberObjects",
        json={"securityEnabledOnly": False} if body is None else body,
        headers=headers,
        timeout=30,
    )


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
    with sandbox_tenant.http_session() as http:
        me = _member_objects(http, sandbox_tenant, "me", token, {"securityEnabledOnly": True})
        assert me.status_code == 200, me.text
        assert sorted(me.json()["value"]) == sorted([*direct, inner.object_id, outer.object_id])
        own = _member_objects(http, sandbox_tenant, f"users/{oid.upper()}", token)
        assert sorted(own.json()["value"]) == sorted(me.json()["value"])
        # a delegated token asks about its own user only
        other = _member_objects(http, sandbox_tenant, f"users/{other_oid}", token)
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "Authorization_RequestDenied"
        odd = _member_objects(http, sandbox_tenant, "me", token, {"x": 1})
        assert odd.status_code == 400
        assert odd.json()["error"]["code"] == "Request_BadRequest"


def test_a_token_without_the_permission_is_refused_graph_style(
    sandbox_tenant: SandboxTenant,
) -> None:
    upn, _, _ = _user(sandbox_tenant, 3)
    token = sandbox_tenant.user_token(upn, scope=f"{GRAPH}/User.Read")
    with sandbox_tenant.http_session() as http:
        refused = _member_objects(http, sandbox_tenant, "me", token)
        anonymous = _member_objects(http, sandbox_tenant, "me", None)
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
    security_only = {"securityEnabledOnly": True}
    with sandbox_tenant.http_session() as http:
        by_upn = _member_objects(http, sandbox_tenant, f"users/{upn}", token, security_only)
        assert by_upn.status_code == 200, by_upn.text
        assert sorted(by_upn.json()["value"]) == sorted(direct)
        nobody = _member_objects(
            http, sandbox_tenant, f"users/{uuid.uuid4()}", token, security_only
        )
        assert nobody.status_code == 404
        assert nobody.json()["error"]["code"] == "Request_ResourceNotFound"
        me = _member_objects(http, sandbox_tenant, "me", token, security_only)
        assert me.status_code == 400
