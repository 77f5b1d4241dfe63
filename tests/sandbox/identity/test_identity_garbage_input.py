"""Bad input gets a Microsoft-shaped error, never a server error (Hypothesis, real server)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exoimap.sandbox.identity import PUBLIC_APP, RunningIdentity

from .conftest import make_session

FIELDS = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "device_code",
    "client_info",
    "txn",
    "step",
    "login",
    "passwd",
    "otc",
    "action",
]
GRANTS = [
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "password",
]
text = st.text(max_size=40)
values = st.one_of(text, st.sampled_from(GRANTS), st.just("eyJhbGciOiJub25lIn0.e30."))
FIXTURE_OK = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Target:
    http: requests.Session
    base_url: str
    tenant_id: str
    public_id: str


@pytest.fixture(scope="module")
def target(idp: RunningIdentity) -> Iterator[Target]:
    public = next(a for a in idp.document()["apps"] if a["name"] == PUBLIC_APP)
    with make_session(idp) as http:
        yield Target(http, idp.base_url, idp.tenant_id, public["client_id"])


@settings(FIXTURE_OK, max_examples=60)
@given(
    form=st.dictionaries(st.sampled_from(FIELDS), values, max_size=8),
    segment=st.sampled_from(["TENANT", "common", "organizations", "consumers", "nope", "%00"]),
    path=st.sampled_from(
        [
            "oauth2/v2.0/token",
            "oauth2/v2.0/devicecode",
            "oauth2/v2.0/authorize",
            "v2.0/.well-known/openid-configuration",
        ]
    ),
    use_app=st.booleans(),
)
def test_no_input_makes_a_server_error(
    target: Target, form: dict[str, str], segment: str, path: str, use_app: bool
) -> None:
    if use_app:
        form["client_id"] = target.public_id
    url = f"{target.base_url}/{target.tenant_id if segment == 'TENANT' else segment}/{path}"
    if path.startswith("v2.0") or (path.endswith("authorize") and "txn" not in form):
        response = target.http.get(url, params=form, allow_redirects=False)
    else:
        response = target.http.post(url, data=form, allow_redirects=False)
    assert response.status_code < 500, response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if response.status_code >= 400:
            assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")


@settings(FIXTURE_OK, max_examples=30)
@given(form=st.dictionaries(st.sampled_from(FIELDS), text, max_size=6))
def test_device_login_pages_survive_garbage(target: Target, form: dict[str, str]) -> None:
    response = target.http.post(f"{target.base_url}/devicelogin", data=form)
    assert response.status_code < 500, response.text


def test_unknown_path_is_404(target: Target) -> None:
    assert target.http.get(f"{target.base_url}/nothing/here").status_code == 404
