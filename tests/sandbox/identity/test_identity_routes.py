"""The identity sandbox's routes, registered by endpoint group: each documented path once,
with its methods, and no path that two routes could both claim (so the groups' order in
build_app does not matter)."""

from __future__ import annotations

from starlette.routing import Route

from exoimap.sandbox.identity import RunningIdentity

DOCUMENTED = {
    ("/_sandbox/health", frozenset({"GET", "HEAD"})),
    ("/common/discovery/instance", frozenset({"GET", "HEAD"})),
    ("/devicelogin", frozenset({"GET", "HEAD", "POST"})),
    ("/{tenant}/v2.0/.well-known/openid-configuration", frozenset({"GET", "HEAD"})),
    ("/{tenant}/discovery/v2.0/keys", frozenset({"GET", "HEAD"})),
    ("/{tenant}/discovery/keys", frozenset({"GET", "HEAD"})),
    ("/{tenant}/oauth2/v2.0/authorize", frozenset({"GET", "HEAD", "POST"})),
    ("/{tenant}/oauth2/v2.0/token", frozenset({"POST"})),
    ("/{tenant}/oauth2/v2.0/devicecode", frozenset({"POST"})),
    ("/{tenant}/oauth2/v2.0/logout", frozenset({"GET", "HEAD", "POST"})),
    ("/v1.0/users", frozenset({"GET", "HEAD"})),  # Microsoft Graph (graph.py)
    ("/v1.0/groups/{group_id}/transitiveMembers", frozenset({"GET", "HEAD"})),
    ("/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.user", frozenset({"GET", "HEAD"})),
    ("/v1.0/users/{user_id}/getMemberObjects", frozenset({"POST"})),
    ("/v1.0/me/getMemberObjects", frozenset({"POST"})),
}


def routes(idp: RunningIdentity) -> list[Route]:
    found = [route for route in idp.sandbox.app.routes if isinstance(route, Route)]
    assert len(found) == len(idp.sandbox.app.routes)
    return found


def test_each_documented_path_is_served_once(idp: RunningIdentity) -> None:
    served = [(route.path, frozenset(route.methods or ())) for route in routes(idp)]
    assert len(served) == len(set(served))
    assert set(served) == DOCUMENTED


def test_no_two_routes_claim_the_same_path(idp: RunningIdentity) -> None:
    for route in routes(idp):
        # "common" is a tenant segment a client may really send
        example = route.path.replace("{tenant}", "common")
        claimants = [other.path for other in routes(idp) if other.path_regex.match(example)]
        assert claimants == [route.path]
