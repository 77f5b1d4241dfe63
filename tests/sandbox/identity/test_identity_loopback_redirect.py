"""Issue 23, item 4: the authorize endpoint matches redirect URIs by Entra's loopback rule (the
port of a ``localhost`` or ``127.0.0.1`` URI is ignored; scheme, host as registered and path
are not; ``[::1]`` gets no such leniency)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .conftest import IMAP_SCOPE, World

REGISTERED = ["http://localhost", "https://localhost/native", "http://127.0.0.1/cb", "http://[::1]"]


@pytest.mark.parametrize(
    ("asked", "accepted"),
    [
        ("http://localhost", True),
        ("http://localhost:53117", True),
        ("http://localhost:8/", True),
        ("https://localhost:4443/native", True),  # https loopback: any port too
        ("http://127.0.0.1:61000/cb", True),
        ("http://127.0.0.1:61000", False),  # registered with a path
        ("http://127.0.0.1:61000/CB", False),  # paths are case-sensitive
        ("https://localhost:4443", False),  # the scheme as registered
        ("http://localhost:4443/native", False),
        ("http://[::1]", True),  # exactly as registered
        ("http://[::1]:61000", False),  # [::1] is not a port-free loopback in Entra
        ("http://localhost.example.com:80", False),
        ("http://localhost:notaport", False),
    ],
)
def test_authorize_applies_entras_loopback_rule(world: World, asked: str, accepted: bool) -> None:
    app = world.new_app(redirect_uris=REGISTERED)
    params = {
        "client_id": app.client_id,
        "response_type": "code",
        "redirect_uri": asked,
        "scope": f"{IMAP_SCOPE} openid offline_access",
        "state": "s",
    }
    page = world.http.get(
        f"{world.idp.authority}/oauth2/v2.0/authorize?{urlencode(params)}", allow_redirects=False
    )
    if accepted:
        assert page.status_code == 200, page.text[:300]
        assert "AADSTS50011" not in page.text
    else:
        assert page.status_code == 400
        assert "AADSTS50011" in page.text
