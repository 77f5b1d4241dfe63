"""The sandbox's Microsoft Graph ``/v1.0/users`` answers as Graph does."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.sandbox.tenant import SandboxTenant
from tests.tenant.helpers import make_tenant_app

pytestmark = pytest.mark.xdist_group("tenant")

GRAPH = "https://graph.microsoft.com/.default"


def test_users_pages_with_next_link_and_select(sandbox_tenant: SandboxTenant, tmp_path: Path):
    app = make_tenant_app(sandbox_tenant, tmp_path)
    token = sandbox_tenant.app_token(app.name, scope=GRAPH)
    with sandbox_tenant.http_session() as http:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{sandbox_tenant.identity_url}/v1.0/users?$top=1&$select=id,userPrincipalName"
        seen = []
        while url:
            page = http.get(url, headers=headers, timeout=30)
            assert page.status_code == 200
            body = page.json()
            assert len(body["value"]) == 1
            assert set(body["value"][0]) == {"id", "userPrincipalName"}
            seen.append(body["value"][0]["userPrincipalName"])
            url = body.get("@odata.nextLink")
    assert sorted(seen) == sorted(upn for upn, _ in sandbox_tenant.users)


def test_users_refusals_carry_graphs_error_shape(sandbox_tenant: SandboxTenant, tmp_path: Path):
    app = make_tenant_app(sandbox_tenant, tmp_path)
    users = f"{sandbox_tenant.identity_url}/v1.0/users"
    with sandbox_tenant.http_session() as http:
        anonymous = http.get(users, timeout=30)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
        # an IMAP token is not a Graph token
        imap = sandbox_tenant.app_token(app.name)
        wrong = http.get(users, headers={"Authorization": f"Bearer {imap}"}, timeout=30)
        assert wrong.status_code == 401
        graph = {"Authorization": f"Bearer {sandbox_tenant.app_token(app.name, scope=GRAPH)}"}
        too_big = http.get(users, params={"$top": "1000"}, headers=graph, timeout=30)
        assert too_big.status_code == 400
        assert too_big.json()["error"]["code"] == "Request_BadRequest"
        odd = http.get(users, params={"$filter": "startswith(mail,'a')"}, headers=graph, timeout=30)
        assert odd.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_budget_is_per_app_and_answers_429_with_retry_after(
    sandbox_tenant: SandboxTenant, tmp_path: Path
):
    first = make_tenant_app(sandbox_tenant, tmp_path / "a")
    second = make_tenant_app(sandbox_tenant, tmp_path / "b")
    tokens = [sandbox_tenant.app_token(a.name, scope=GRAPH) for a in (first, second)]
    users = f"{sandbox_tenant.identity_url}/v1.0/users?$top=1"
    sandbox_tenant.admin.configure(graph_budget=1, graph_budget_window=600)
    try:
        with sandbox_tenant.http_session() as one, sandbox_tenant.http_session() as other:
            bearer = {"Authorization": f"Bearer {tokens[0]}"}
            assert one.get(users, headers=bearer, timeout=30).status_code == 200
            # a second connection of the same app shares its budget
            throttled = other.get(users, headers=bearer, timeout=30)
            assert throttled.status_code == 429
            assert throttled.json()["error"]["code"] == "TooManyRequests"
            assert 1 <= int(throttled.headers["Retry-After"]) <= 600
            # another app has its own
            bearer = {"Authorization": f"Bearer {tokens[1]}"}
            assert other.get(users, headers=bearer, timeout=30).status_code == 200
    finally:
        sandbox_tenant.admin.configure(graph_budget=10_000, graph_budget_window=10)


def test_transitive_members_pages_users_of_nested_groups_and_404s_unknown_groups(
    sandbox_tenant: SandboxTenant, tmp_path: Path
) -> None:
    app = make_tenant_app(sandbox_tenant, tmp_path)
    a, b, c = (f"{app.prefix}-{n}@{sandbox_tenant.tenant_domain}" for n in "abc")
    for upn in (a, b, c):
        sandbox_tenant.admin.create_user(upn)
    inner = sandbox_tenant.admin.create_group("inner", [b])
    outer = sandbox_tenant.admin.create_group("outer", [a, inner.object_id])
    sandbox_tenant.admin.add_group_member(inner.object_id, outer.object_id)  # a cycle is fine
    graph = {"Authorization": f"Bearer {sandbox_tenant.app_token(app.name, scope=GRAPH)}"}
    base = f"{sandbox_tenant.identity_url}/v1.0/groups/{outer.object_id}/transitiveMembers"
    with sandbox_tenant.http_session() as http:
        url: str | None = f"{base}/microsoft.graph.user?$top=1&$select=id,userPrincipalName"
        seen = []
        while url:
            body = http.get(url, headers=graph, timeout=30).json()
            assert len(body["value"]) == 1
            assert body["value"][0]["@odata.type"] == "#microsoft.graph.user"
            seen.append(body["value"][0]["userPrincipalName"])
            url = body.get("@odata.nextLink")
        assert sorted(seen) == sorted([a, b])
        # without the cast, the nested group is a member too
        every = http.get(base, headers=graph, timeout=30).json()["value"]
        kinds = sorted(item["@odata.type"] for item in every)
        assert kinds == ["#microsoft.graph.group", "#microsoft.graph.user", "#microsoft.graph.user"]
        missing = http.get(
            base.replace(outer.object_id, "no-such-group"), headers=graph, timeout=30
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
