"""Fixtures: one running identity sandbox per test session (per xdist worker), and a fresh
user + public app per test so tests never see each other's state."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msal
import pytest
import requests

from exoimap.sandbox.identity import (
    AppRegistration,
    IdentitySandbox,
    RunningIdentity,
    SignInRobot,
    User,
)

IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
APP_ONLY_SCOPE = "https://outlook.office365.com/.default"
DOMAIN = "contoso.onmicrosoft.com"

_HIDDEN = re.compile(r'<input type=hidden name="([^"]*)" value="([^"]*)">')
_ACTION = re.compile(r'<form method=post action="([^"]*)">')


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdentity]:
    sandbox = IdentitySandbox.open(tmp_path_factory.mktemp("idp") / "state")
    sandbox.admin.configure(device_code_interval=1, device_code_lifetime=60)
    with sandbox.running() as running:
        yield running


def make_session(idp: RunningIdentity) -> requests.Session:
    session = requests.Session()
    session.verify = str(idp.ca_file)
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    return session


@pytest.fixture
def http(idp: RunningIdentity) -> Iterator[requests.Session]:
    session = make_session(idp)
    yield session
    session.close()


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    """The action URL and hidden fields of the page's first form."""
    action = _ACTION.search(page)
    assert action is not None, page
    return html.unescape(action.group(1)), {
        html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page)
    }


def step_of(page: str) -> str | None:
    return form_fields(page)[1].get("step") if _ACTION.search(page) else None


def drive(
    http: requests.Session,
    response: requests.Response,
    *,
    upn: str,
    password: str,
    mfa: str = "approve",
    consent: str = "accept",
) -> requests.Response:
    """Answer sign-in pages like a person would, until a redirect or a final page."""
    for _ in range(6):
        if response.status_code == 302 or step_of(response.text) is None:
            return response
        action, fields = form_fields(response.text)
        step = fields["step"]
        if step == "login":
            fields.update(login=upn, passwd=password)
        elif step == "mfa":
            fields["action"] = mfa
        elif step == "consent":
            fields["action"] = consent
        response = http.post(action, data=fields, allow_redirects=False)
        if response.status_code == 400 and step == "login":
            return response
    raise AssertionError("the sign-in pages did not finish")


def redirect_params(response: requests.Response) -> dict[str, str]:
    """What the app receives: the query of a 302, or the fields of a form_post page."""
    if response.status_code == 200 and "document.forms[0].submit()" in response.text:
        return form_fields(response.text)[1]
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


@dataclass
class World:
    """A fresh user and public app in the shared sandbox, plus MSAL helpers."""

    idp: RunningIdentity
    http: requests.Session
    user: User
    password: str
    app: AppRegistration

    def public(
        self, app: AppRegistration | None = None, authority: str | None = None
    ) -> msal.PublicClientApplication:
        return msal.PublicClientApplication(
            (app or self.app).client_id,
            authority=authority or self.idp.authority,
            http_client=self.http,
            instance_discovery=False,
        )

    def confidential(
        self, client_id: str, credential: Any, authority: str | None = None
    ) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=authority or self.idp.authority,
            http_client=self.http,
            instance_discovery=False,
        )

    def new_user(self, *, mfa: bool = False) -> tuple[User, str]:
        password = f"Pw-{uuid.uuid4().hex}"
        user = self.idp.admin.create_user(
            f"u{uuid.uuid4().hex[:10]}@{DOMAIN}", password=password, mfa_required=mfa
        )
        return user, password

    def new_app(self, **kwargs: Any) -> AppRegistration:
        kwargs.setdefault("public", True)
        kwargs.setdefault("redirect_uris", ["http://localhost"])
        return self.idp.admin.create_app(f"app-{uuid.uuid4().hex[:10]}", **kwargs)

    def browser_sign_in(
        self,
        client: msal.ClientApplication,
        scopes: list[str],
        *,
        upn: str | None = None,
        password: str | None = None,
        **flow_kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """MSAL's auth code flow with the pages driven over HTTP; returns (flow, response)."""
        flow_kwargs.setdefault("response_mode", "form_post")
        flow = client.initiate_auth_code_flow(
            scopes, redirect_uri="http://localhost:8400", **flow_kwargs
        )
        robot = SignInRobot(self.http)
        outcome = robot.sign_in(flow["auth_uri"], upn or self.user.upn, password or self.password)
        assert outcome.redirect_uri == "http://localhost:8400", outcome
        return flow, outcome.params

    def device_token(self, client: msal.ClientApplication, scopes: list[str]) -> dict[str, Any]:
        flow = client.initiate_device_flow(scopes)
        assert "user_code" in flow, flow
        self.idp.admin.approve_device_code(flow["user_code"], upn=self.user.upn)
        result: dict[str, Any] = client.acquire_token_by_device_flow(flow)
        return result


@pytest.fixture
def world(idp: RunningIdentity, http: requests.Session) -> World:
    password = f"Pw-{uuid.uuid4().hex}"
    user = idp.admin.create_user(f"u{uuid.uuid4().hex[:10]}@{DOMAIN}", password=password)
    app = idp.admin.create_app(
        f"app-{uuid.uuid4().hex[:10]}",
        public=True,
        redirect_uris=["http://localhost"],
        delegated=[IMAP_SCOPE, "https://outlook.office.com/SMTP.Send"],
        admin_consent=True,
    )
    return World(idp, http, user, password, app)


@pytest.fixture
def clock(idp: RunningIdentity) -> Iterator[Callable[[float], None]]:
    """Advance the sandbox clock; restored after the test."""
    moved: list[float] = []

    def advance(seconds: float) -> None:
        moved.append(seconds)
        idp.admin.advance_clock(seconds)

    yield advance
    idp.admin.advance_clock(-sum(moved))


def aadsts(result: dict[str, Any]) -> int:
    """The AADSTS code of an MSAL error result (and check the body shape)."""
    assert "access_token" not in result, "expected an error"
    codes = result["error_codes"]
    assert result["error_description"].startswith(f"AADSTS{codes[0]}: ")
    assert "Trace ID: " in result["error_description"]
    assert "Correlation ID: " in result["error_description"]
    return int(codes[0])
