"""A scripted user for the sandbox's sign-in pages, so tests need no browser.

:class:`SignInRobot` answers the pages the way a person would: username and password,
the MFA prompt, the consent page, the device-login code. It stops where a browser would
hand control back to the app: the redirect to the app's ``redirect_uri`` (or the
``form_post`` page), whose parameters it returns.

Example (MSAL's auth code flow, with the robot as the browser)::

    flow = app.initiate_auth_code_flow(scopes, redirect_uri="http://localhost:8400")
    robot = SignInRobot(idp.requests_session())
    response = robot.sign_in(flow["auth_uri"], upn, password).params
    result = app.acquire_token_by_auth_code_flow(flow, response)

    flow = app.initiate_device_flow(scopes)
    robot.device_login(flow["verification_uri"], flow["user_code"], upn, password)
    result = app.acquire_token_by_device_flow(flow)

The robot only understands this sandbox's pages (plain HTML forms, see
:mod:`exoimap.sandbox.identity.pages`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import requests

from exoimap.errors import AuthError

__all__ = ["SignInRobot", "SignInOutcome"]

_FORM = re.compile(r'<form method=post action="([^"]*)">')
_HIDDEN = re.compile(r'<input type=hidden name="([^"]*)" value="([^"]*)">')
_ERROR = re.compile(r"<p class=error id=error[^>]*>(.*?)</p>", re.S)
_MAX_PAGES = 8


@dataclass
class SignInOutcome:
    """Where the sign-in ended.

    ``params`` is what the app receives (``code`` and ``state``, or ``error`` and
    ``error_description``) when the pages handed back to the app; ``redirect_uri`` is where;
    ``page`` is the last HTML page otherwise (an error page, or the device-login result),
    with ``error`` set to its error text when it shows one.
    """

    params: dict[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None
    page: str | None = None
    error: str | None = None
    status: int = 200


def _form(page: str) -> tuple[str, dict[str, str]] | None:
    action = _FORM.search(page)
    if action is None:
        return None
    fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page)}
    return html.unescape(action.group(1)), fields


class SignInRobot:
    """Drives the sign-in pages over ``session`` (which must trust the sandbox CA)."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    def sign_in(
        self,
        auth_url: str,
        upn: str,
        password: str,
        *,
        mfa: bool = True,
        consent: bool = True,
    ) -> SignInOutcome:
        """Open an authorize URL and answer its pages. ``mfa`` and ``consent`` say whether
        to approve the MFA prompt and accept the consent page (False: deny / cancel)."""
        response = self.session.get(auth_url, allow_redirects=False)
        return self._answer(response, upn, password, mfa=mfa, consent=consent)

    def device_login(
        self,
        verification_uri: str,
        user_code: str,
        upn: str,
        password: str,
        *,
        approve: bool = True,
        mfa: bool = True,
    ) -> SignInOutcome:
        """Enter ``user_code`` on the device-login page, sign in, then approve (or decline)."""
        entry = self.session.get(verification_uri)
        form = _form(entry.text)
        if form is None:
            raise AuthError("the device-login page has no form")
        action, fields = form
        response = self.session.post(action, data={**fields, "otc": user_code})
        return self._answer(response, upn, password, mfa=mfa, consent=approve)

    def _answer(
        self, response: requests.Response, upn: str, password: str, *, mfa: bool, consent: bool
    ) -> SignInOutcome:
        for _ in range(_MAX_PAGES):
            if response.is_redirect:
                location = response.headers["location"]
                target = urlsplit(location)
                params = dict(parse_qsl(target.query)) or dict(parse_qsl(target.fragment))
                uri = location.split("?", 1)[0].split("#", 1)[0]
                return SignInOutcome(params=params, redirect_uri=uri, status=response.status_code)
            page = response.text
            form = _form(page)
            if form is not None and "document.forms[0].submit()" in page:
                return SignInOutcome(params=form[1], redirect_uri=form[0])  # form_post
            step = form[1].get("step") if form else None
            error = _ERROR.search(page)
            error_text = html.unescape(error.group(1)) if error else None
            if form is None or step is None or (error_text and step == "login"):
                return SignInOutcome(page=page, error=error_text, status=response.status_code)
            action, fields = form
            if step == "login":
                fields.update(login=upn, passwd=password)
            elif step == "mfa":
                fields["action"] = "approve" if mfa else "deny"
            elif step == "consent":
                fields["action"] = "accept" if consent else "cancel"
            elif step == "code":
                return SignInOutcome(page=page, error=error_text, status=response.status_code)
            response = self.session.post(action, data=fields, allow_redirects=False)
        raise AuthError("the sign-in pages did not finish")
