"""Interactive sign-in: the authorize endpoint's pages and the device-login pages.

Each step returns an :class:`Outcome` (HTML, or a redirect to the app) that the endpoint
layer sends. A sign-in in progress is a :class:`Transaction` kept in memory under a random
id that travels in the form's hidden ``txn`` field; it lives ten minutes.

Authorize steps: login (``login``, ``passwd``) -> MFA when the user needs it
(``action=approve``) -> consent when something is not consented (``action=accept``) ->
redirect with ``code`` and ``state``. Device login: code (``otc``) -> login -> MFA -> a
consent page whose ``accept`` approves and ``cancel`` declines the device code.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import jwt

from exoimap.sandbox.identity import pages
from exoimap.sandbox.identity.aadsts import AadstsError, error_body
from exoimap.sandbox.identity.core import AuthCode, IdentityCore
from exoimap.sandbox.identity.model import AppRegistration, Tenant, User
from exoimap.sandbox.identity.scopes import ScopeRequest, parse_scopes

__all__ = ["Outcome", "SignIn", "redirect_uri_matches"]

_TXN_LIFETIME = 600.0
SESSION_COOKIE = "ESTSAUTH"
_SESSION_AUDIENCE = "urn:exoimap:sandbox:session"


@dataclass
class Outcome:
    """What to send: ``html`` with ``status``, or a 302 to ``redirect``; maybe a cookie."""

    html: str | None = None
    status: int = 200
    redirect: str | None = None
    set_session: str | None = None


@dataclass
class Transaction:
    kind: str  # "authorize" or "device"
    tenant: Tenant | None
    app: AppRegistration
    scope: ScopeRequest
    raw_scope: str
    created_at: float = field(default_factory=time.monotonic)
    redirect_uri: str = ""
    given_redirect_uri: str = ""  # as the request sent it ("" when absent)
    response_mode: str = "query"
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    prompt: str | None = None
    login_hint: str = ""
    user_code: str | None = None
    user: User | None = None
    mfa: bool = False
    awaiting: str = "login"  # the step whose page was shown last
    auth_time: float = 0.0


#: Hosts whose redirect URIs match on any port. Entra's documented rule: for localhost and
#: 127.0.0.1 the port is ignored (so a native app may listen on any free one), while the
#: scheme, the host as registered and the case-sensitive path must match; [::1] is not
#: supported, so it gets no such leniency.
_ANY_PORT_HOSTS = ("localhost", "127.0.0.1")


def redirect_uri_matches(registered: list[str], given: str) -> bool:
    """Exact match, or a loopback URI that differs only in its port (Entra's rule)."""
    if given in registered:
        return True
    try:
        asked = urlsplit(given)
        asked_host = asked.hostname
        asked.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return False
    if asked.scheme not in ("http", "https") or asked_host not in _ANY_PORT_HOSTS:
        return False
    for uri in registered:
        known = urlsplit(uri)
        if (
            known.scheme == asked.scheme
            and known.hostname == asked_host
            and (known.path or "/") == (asked.path or "/")
            and known.query == asked.query
        ):
            return True
    return False


class SignIn:
    """The interactive pages of one identity server."""

    def __init__(self, core: IdentityCore) -> None:
        self.core = core
        self._txns: dict[str, Transaction] = {}
        self._lock = threading.Lock()

    # --- authorize ----------------------------------------------------------------------------

    def authorize(
        self, segment: str, params: dict[str, str], action: str, session: str | None
    ) -> Outcome:
        """``GET /<segment>/oauth2/v2.0/authorize``: validate, then show the sign-in page."""
        try:
            tenant = self.core.resolve_tenant(segment)
            app = self.core.resolve_app(params.get("client_id"), tenant)
        except AadstsError as exc:
            return Outcome(pages.error_page(exc.code, exc.description), 400)
        given_redirect = params.get("redirect_uri", "")
        # Without redirect_uri Entra uses the app's first registered one.
        redirect_uri = given_redirect or (app.redirect_uris[0] if app.redirect_uris else "")
        if not redirect_uri_matches(app.redirect_uris, redirect_uri):
            mismatch = AadstsError(50011, redirect_uri=redirect_uri, client_id=app.client_id)
            return Outcome(pages.error_page(50011, mismatch.description), 400)
        txn = Transaction(
            "authorize", tenant, app, ScopeRequest(None, None, "", (), False, frozenset()), ""
        )
        txn.redirect_uri = redirect_uri
        txn.given_redirect_uri = given_redirect
        txn.response_mode = params.get("response_mode", "query")
        txn.state = params.get("state")
        if params.get("response_type") != "code":
            return self._error_redirect(txn, "unsupported_response_type", None)
        try:
            txn.scope = parse_scopes(params.get("scope"), tenant=segment)
            txn.scope.require_delegated()
        except AadstsError as exc:
            return self._error_redirect(txn, exc.error, exc)
        txn.raw_scope = params.get("scope", "")
        txn.nonce = params.get("nonce")
        txn.code_challenge = params.get("code_challenge") or None
        txn.code_challenge_method = params.get("code_challenge_method") or "plain"
        if txn.code_challenge_method not in ("S256", "plain"):
            return self._error_redirect(txn, "invalid_request", None)
        txn.prompt = params.get("prompt")
        txn.login_hint = params.get("login_hint", "")
        user = self._session_user(session, tenant)
        if (
            user is not None
            and txn.prompt not in ("login", "select_account")
            and (not txn.login_hint or txn.login_hint.lower() == user[0].upn.lower())
        ):
            txn.user, txn.auth_time, txn.mfa = user[0], user[1], user[2]
            return self._after_login(self._store(txn), txn, action)
        if txn.prompt == "none":
            return self._error_redirect(txn, "login_required", AadstsError(50058))
        return Outcome(self._login_html(self._store(txn), txn, action, None))

    def post(self, form: dict[str, str], action: str) -> Outcome:
        """A POST of any sign-in page (authorize or device login)."""
        txn_id = form.get("txn", "")
        txn = self._load(txn_id)
        if txn is None:
            return Outcome(
                pages.error_page(None, "This sign-in has expired. Start again from the app."), 400
            )
        step = form.get("step")
        if step != txn.awaiting:  # pages must be answered in order (no skipping MFA)
            return Outcome(
                pages.error_page(None, "Unexpected step. Start again from the app."), 400
            )
        if step == "login":
            return self._login(txn_id, txn, form, action)
        if step == "mfa":
            if form.get("action") != "approve":
                return self._deny(txn_id, txn)
            txn.mfa = True
            return self._after_mfa(txn_id, txn, action)
        if step == "consent":
            if form.get("action") != "accept":
                return self._deny(txn_id, txn)
            return self._finish(txn_id, txn, consented=True)
        return Outcome(pages.error_page(None, "Unknown step."), 400)

    # --- device login ----------------------------------------------------------------------

    def device_code_entry(self, form: dict[str, str], action: str) -> Outcome:
        """``POST /devicelogin`` with ``otc``: find the pending device code, then sign in."""
        user_code = form.get("otc", "").strip().upper()
        wanted = user_code.encode()
        directory = self.core.store.current()
        flow = next(
            (
                d
                for d in directory.device_codes
                if hmac.compare_digest(d.user_code.encode(), wanted)
            ),
            None,
        )
        if flow is None or flow.status != "pending" or flow.expires_at <= self.core.store.now():
            message = "That code didn't work. Check the code and try again."
            return Outcome(pages.device_code_page(action, message), 400)
        app = directory.find_app(flow.client_id)
        tenant = directory.tenant_by_id(flow.tenant_id)
        if app is None or tenant is None:
            return Outcome(pages.device_code_page(action, "That code didn't work."), 400)
        scope = parse_scopes(flow.scope, tenant=tenant.domain)
        txn = Transaction("device", tenant, app, scope, flow.scope, user_code=user_code)
        return Outcome(self._login_html(self._store(txn), txn, action, None))

    # --- steps -------------------------------------------------------------------------------

    def _login(self, txn_id: str, txn: Transaction, form: dict[str, str], action: str) -> Outcome:
        upn = form.get("login", "").strip()
        password = form.get("passwd", "")
        directory = self.core.store.current()
        user = directory.find_user(upn)
        if user is None:
            message = "We couldn't find an account with that username."
            return Outcome(self._login_html(txn_id, txn, action, message), 400)
        if not hmac.compare_digest(user.password.encode(), password.encode()):
            message = "Your account or password is incorrect."
            return Outcome(self._login_html(txn_id, txn, action, message), 400)
        if user.tenant_id != txn.app.tenant_id:
            exc = AadstsError(700016, client_id=txn.app.client_id, tenant=user.tenant_id)
            return Outcome(pages.error_page(700016, exc.description), 400)
        txn.user, txn.auth_time, txn.mfa = user, self.core.store.now(), False
        txn.login_hint = user.upn
        return self._after_login(txn_id, txn, action)

    def _after_login(self, txn_id: str, txn: Transaction, action: str) -> Outcome:
        assert txn.user is not None
        if txn.user.mfa_required and not txn.mfa:
            if txn.prompt == "none":
                return self._error_redirect(txn, "interaction_required", AadstsError(50076))
            txn.awaiting = "mfa"
            return Outcome(pages.mfa_page(action, {"txn": txn_id, "step": "mfa"}, txn.user.upn))
        return self._after_mfa(txn_id, txn, action)

    def _after_mfa(self, txn_id: str, txn: Transaction, action: str) -> Outcome:
        assert txn.user is not None
        tenant = self.core.tenant_of(txn.app)
        missing = self.core.missing_consent(tenant, txn.app, txn.user, txn.scope)
        hidden = {"txn": txn_id, "step": "consent"}
        txn.awaiting = "consent"
        if txn.kind == "device":
            shown = _describe(txn.scope) or ["Sign you in"]
            return Outcome(
                pages.consent_page(
                    action, hidden, txn.app.name, txn.user.upn, shown, accept_label="Continue"
                )
            )
        if missing or txn.prompt == "consent":
            if not tenant.user_consent_allowed and missing:
                exc = AadstsError(65001, client_id=txn.app.client_id, app_name=txn.app.name)
                return self._error_redirect(txn, "consent_required", exc)
            if txn.prompt == "none":
                exc = AadstsError(65001, client_id=txn.app.client_id, app_name=txn.app.name)
                return self._error_redirect(txn, "consent_required", exc)
            shown = _describe(txn.scope)
            return Outcome(pages.consent_page(action, hidden, txn.app.name, txn.user.upn, shown))
        return self._finish(txn_id, txn, consented=False)

    def _finish(self, txn_id: str, txn: Transaction, *, consented: bool) -> Outcome:
        assert txn.user is not None
        self._drop(txn_id)
        tenant = self.core.tenant_of(txn.app)
        missing = self.core.missing_consent(tenant, txn.app, txn.user, txn.scope)
        if consented and missing and tenant.user_consent_allowed:
            self.core.record_consent(tenant.tenant_id, txn.app.client_id, txn.user.oid, missing)
        session = self._session_value(txn)
        if txn.kind == "device":
            with self.core.store.transaction() as directory:
                for flow in directory.device_codes:
                    if flow.user_code == txn.user_code and flow.status == "pending":
                        flow.status, flow.user_oid, flow.mfa = "approved", txn.user.oid, txn.mfa
            return Outcome(pages.device_done_page(txn.app.name, True), set_session=session)
        code = self.core.new_code(
            AuthCode(
                client_id=txn.app.client_id,
                tenant_id=tenant.tenant_id,
                user_oid=txn.user.oid,
                redirect_uri=txn.given_redirect_uri,
                scope=txn.raw_scope,
                code_challenge=txn.code_challenge,
                code_challenge_method=txn.code_challenge_method,
                nonce=txn.nonce,
                expires_at=self.core.store.now()
                + self.core.store.current().settings.auth_code_lifetime,
                mfa=txn.mfa,
                auth_time=txn.auth_time,
            )
        )
        fields = {"code": code}
        if txn.state is not None:
            fields["state"] = txn.state
        fields["session_state"] = secrets.token_hex(16)
        outcome = self._deliver(txn, fields)
        outcome.set_session = session
        return outcome

    def _deny(self, txn_id: str, txn: Transaction) -> Outcome:
        self._drop(txn_id)
        if txn.kind == "device":
            with self.core.store.transaction() as directory:
                for flow in directory.device_codes:
                    if flow.user_code == txn.user_code and flow.status == "pending":
                        flow.status = "declined"
            return Outcome(pages.device_done_page(txn.app.name, False))
        return self._error_redirect(txn, "access_denied", AadstsError(65004))

    # --- helpers -----------------------------------------------------------------------------

    def _error_redirect(self, txn: Transaction, error: str, exc: AadstsError | None) -> Outcome:
        fields = {"error": error}
        if exc is not None:
            fields["error_description"] = error_body(exc)["error_description"]
        if txn.state is not None:
            fields["state"] = txn.state
        return self._deliver(txn, fields)

    @staticmethod
    def _deliver(txn: Transaction, fields: dict[str, str]) -> Outcome:
        if txn.response_mode == "form_post":
            return Outcome(pages.form_post_page(txn.redirect_uri, fields))
        separator = (
            "#" if txn.response_mode == "fragment" else ("&" if "?" in txn.redirect_uri else "?")
        )
        return Outcome(redirect=txn.redirect_uri + separator + urlencode(fields))

    def _login_html(self, txn_id: str, txn: Transaction, action: str, error: str | None) -> str:
        txn.awaiting = "login"
        hidden = {"txn": txn_id, "step": "login"}
        return pages.login_page(action, hidden, txn.app.name, txn.login_hint, error)

    def _store(self, txn: Transaction) -> str:
        txn_id = secrets.token_urlsafe(24)
        with self._lock:
            cutoff = time.monotonic() - _TXN_LIFETIME
            for old in [k for k, v in self._txns.items() if v.created_at < cutoff]:
                del self._txns[old]
            self._txns[txn_id] = txn
        return txn_id

    def _load(self, txn_id: str) -> Transaction | None:
        with self._lock:
            txn = self._txns.get(txn_id)
        if txn is None or txn.created_at < time.monotonic() - _TXN_LIFETIME:
            return None
        return txn

    def _drop(self, txn_id: str) -> None:
        with self._lock:
            self._txns.pop(txn_id, None)

    def _session_value(self, txn: Transaction) -> str:
        assert txn.user is not None
        claims = {
            "aud": _SESSION_AUDIENCE,
            "oid": txn.user.oid,
            "auth_time": txn.auth_time,
            "mfa": txn.mfa,
        }
        return self.core.key.sign(claims)

    def _session_user(
        self, value: str | None, tenant: Tenant | None
    ) -> tuple[User, float, bool] | None:
        if not value:
            return None
        try:
            claims = jwt.decode(
                value,
                self.core.key.private_key.public_key(),
                algorithms=["RS256"],
                audience=_SESSION_AUDIENCE,
            )
        except jwt.PyJWTError:
            return None
        user = self.core.store.current().find_user_by_oid(str(claims.get("oid")))
        if user is None or (tenant is not None and user.tenant_id != tenant.tenant_id):
            return None
        auth_time = float(claims.get("auth_time", 0))
        if auth_time < user.tokens_valid_from:
            return None
        return user, auth_time, bool(claims.get("mfa"))


def _describe(scope: ScopeRequest) -> list[str]:
    shown = [f"{scope.prefix}/{p}" if scope.prefix else p for p in scope.permissions]
    if scope.default and scope.resource is not None:
        shown.append(f"Access {scope.resource.display_name} as you")
    if "offline_access" in scope.oidc:
        shown.append("Maintain access to data you have given it access to")
    if "openid" in scope.oidc:
        shown.append("Sign you in and read your profile")
    return shown
