"""The token endpoint's grants and the device-code endpoint, without HTTP.

:func:`token_request` takes the tenant path segment, the form fields and the request URL and
returns the JSON success body or raises :class:`AadstsError` (which the endpoint turns into
Microsoft's error body and status).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography import x509

from exoimap.sandbox.identity.aadsts import AadstsError
from exoimap.sandbox.identity.core import AuthCode, IdentityCore, UserGrant
from exoimap.sandbox.identity.model import AppRegistration, DeviceCode, Tenant
from exoimap.sandbox.identity.scopes import parse_scopes
from exoimap.sandbox.identity.tokens import b64url

__all__ = ["GRANT_DEVICE_CODE", "device_code_request", "token_request", "verify_pkce"]

GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def token_request(
    core: IdentityCore,
    segment: str,
    form: Mapping[str, str],
    endpoint_url: str,
    basic: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Handle ``POST /<segment>/oauth2/v2.0/token``."""
    tenant = core.resolve_tenant(segment)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise AadstsError(900144, param="grant_type")
    client_id = form.get("client_id") or (basic[0] if basic else None)
    app = core.resolve_app(client_id, tenant)
    if tenant is None and grant_type == "client_credentials":
        raise AadstsError(9001023)
    tenant = tenant or core.tenant_of(app)
    appidacr = _authenticate_client(
        core, app, form, endpoint_url, basic=basic, grant_type=grant_type
    )
    want_info = form.get("client_info") == "1"
    if grant_type == "client_credentials":
        scope = parse_scopes(form.get("scope"), tenant=tenant.domain)
        core.raise_injected(app, None)
        return core.app_token_response(tenant, app, scope, appidacr)
    if grant_type == "authorization_code":
        return _redeem_code(core, tenant, app, form, appidacr=appidacr, want_info=want_info)
    if grant_type == "refresh_token":
        return _refresh(core, tenant, app, form, appidacr=appidacr, want_info=want_info)
    if grant_type == GRANT_DEVICE_CODE:
        return _device_code(core, tenant, app, form, appidacr=appidacr, want_info=want_info)
    raise AadstsError(70003, grant=grant_type)


# --- client authentication ------------------------------------------------------------------


def _authenticate_client(
    core: IdentityCore,
    app: AppRegistration,
    form: Mapping[str, str],
    endpoint_url: str,
    *,
    basic: tuple[str, str] | None,
    grant_type: str,
) -> str:
    """Check the client's credential; return ``appidacr`` (0 none, 1 secret, 2 certificate)."""
    secret = form.get("client_secret") or (basic[1] if basic else None)
    assertion = form.get("client_assertion")
    if app.public:
        if secret or assertion:
            raise AadstsError(700025)
        return "0"
    if assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise AadstsError(900144, param="client_assertion_type")
        _check_assertion(core, app, assertion, endpoint_url)
        return "2"
    if secret:
        now = core.store.now()
        for candidate in app.secrets:
            if hmac.compare_digest(candidate.value.encode(), secret.encode()):
                if candidate.expires_at <= now:
                    raise AadstsError(7000222, client_id=app.client_id)
                return "1"
        raise AadstsError(7000215, client_id=app.client_id)
    if grant_type == GRANT_DEVICE_CODE and app.allow_public_client_flows:
        return "0"
    raise AadstsError(7000218)


def _check_assertion(core: IdentityCore, app: AppRegistration, assertion: str, url: str) -> None:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise AadstsError(700027, detail="The assertion is not a well-formed JWT.") from None
    alg = header.get("alg")
    if alg == "RS256" and "x5t" in header:
        wanted, attr = str(header["x5t"]).rstrip("="), "sha1"
    elif alg == "PS256" and "x5t#S256" in header:
        wanted, attr = str(header["x5t#S256"]).rstrip("="), "sha256"
    else:
        raise AadstsError(
            700027, detail="Use RS256 with 'x5t' or PS256 with 'x5t#S256' in the header."
        )
    # MSAL pads the base64url thumbprint; the JWS spec does not: accept both.
    now = core.store.now()
    for cert in app.certificates:
        thumb = cert.thumbprint_sha1 if attr == "sha1" else cert.thumbprint_sha256
        if b64url(bytes.fromhex(thumb)) != wanted:
            continue
        public_key = x509.load_pem_x509_certificate(cert.certificate_pem.encode()).public_key()
        try:
            claims = jwt.decode(
                assertion,
                public_key,  # type: ignore[arg-type]  # an RSA key: the thumbprint matched
                algorithms=[alg],
                audience=url,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise AadstsError(
                700027, detail=f"The audience must be the token endpoint {url}."
            ) from None
        except jwt.PyJWTError:
            raise AadstsError(700027, detail="The signature does not verify.") from None
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise AadstsError(700027, detail="'iss' and 'sub' must be the client id.")
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or exp < now - 300 or nbf > now + 300:
            raise AadstsError(700024)
        if cert.expires_at <= now:
            raise AadstsError(700027, detail="The certificate has expired.")
        return
    raise AadstsError(
        700027,
        detail=f"The certificate with identifier used to sign the client assertion is not "
        f"registered on application '{app.client_id}'.",
    )


# --- user grants ------------------------------------------------------------------------------


def verify_pkce(code: AuthCode, verifier: str | None) -> bool:
    """RFC 7636: S256 compares base64url(SHA-256(verifier)); plain compares the verifier."""
    if code.code_challenge is None:
        return True
    if not verifier:
        return False
    if code.code_challenge_method == "S256":
        computed = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    else:
        computed = verifier
    return hmac.compare_digest(computed.encode(), code.code_challenge.encode())


def _redeem_code(
    core: IdentityCore,
    tenant: Tenant,
    app: AppRegistration,
    form: Mapping[str, str],
    *,
    appidacr: str,
    want_info: bool,
) -> dict[str, Any]:
    value = form.get("code")
    if not value:
        raise AadstsError(900144, param="code")
    code = core.take_code(value)
    if code is None or code.client_id != app.client_id or code.tenant_id != tenant.tenant_id:
        raise AadstsError(70000)
    if not core.claim_code(code):
        raise AadstsError(54005)
    if code.expires_at <= core.store.now():
        raise AadstsError(70008)
    if form.get("redirect_uri", "") != code.redirect_uri:
        raise AadstsError(50011, redirect_uri=form.get("redirect_uri"), client_id=app.client_id)
    if not verify_pkce(code, form.get("code_verifier")):
        raise AadstsError(501481)
    user = core.store.current().find_user_by_oid(code.user_oid)
    if user is None:
        raise AadstsError(70000)
    core.raise_injected(app, user)
    scope = parse_scopes(form.get("scope") or code.scope, tenant=tenant.domain)
    grant = UserGrant(
        tenant, app, user, scope, code.mfa, code.auth_time, appidacr, code.nonce, want_info
    )
    return core.user_token_response(grant)


def _refresh(
    core: IdentityCore,
    tenant: Tenant,
    app: AppRegistration,
    form: Mapping[str, str],
    *,
    appidacr: str,
    want_info: bool,
) -> dict[str, Any]:
    token = form.get("refresh_token")
    if not token:
        raise AadstsError(900144, param="refresh_token")
    payload = core.key.read_refresh_token(token)
    if payload is None or payload.get("cid") != app.client_id:
        raise AadstsError(9002313)
    if payload.get("tid") != tenant.tenant_id:
        raise AadstsError(9002313)
    user = core.store.current().find_user_by_oid(str(payload.get("oid")))
    if user is None:
        raise AadstsError(70008)
    now = core.store.now()
    issued, auth_time = float(payload["iat"]), float(payload["auth_time"])
    settings = core.store.current().settings
    if issued < user.tokens_valid_from:
        raise AadstsError(50173, issued=_stamp(issued), valid_from=_stamp(user.tokens_valid_from))
    if now - issued > settings.refresh_token_inactivity:
        raise AadstsError(
            700082, issued=_stamp(issued), inactive=f"{settings.refresh_token_inactivity} s"
        )
    if (
        settings.refresh_token_max_age is not None
        and now - auth_time > settings.refresh_token_max_age
    ):
        raise AadstsError(70008)
    frequency = tenant.sign_in_frequency_seconds
    if frequency is not None and now - auth_time > frequency:
        raise AadstsError(70043, issued=_stamp(auth_time), max_age=f"{frequency:g} s")
    core.raise_injected(app, user)
    requested = form.get("scope") or str(payload.get("scp", ""))
    scope = parse_scopes(requested, tenant=tenant.domain)
    grant = UserGrant(
        tenant, app, user, scope, bool(payload.get("mfa")), auth_time, appidacr, None, want_info
    )
    return core.user_token_response(grant)


def _device_code(
    core: IdentityCore,
    tenant: Tenant,
    app: AppRegistration,
    form: Mapping[str, str],
    *,
    appidacr: str,
    want_info: bool,
) -> dict[str, Any]:
    value = form.get("device_code")
    if not value:
        raise AadstsError(900144, param="device_code")
    wanted = value.encode()
    # Check and claim in one transaction, so two concurrent polls cannot both redeem it.
    with core.store.transaction() as directory:
        flow = next(
            (
                d
                for d in directory.device_codes
                if hmac.compare_digest(d.device_code.encode(), wanted)
            ),
            None,
        )
        if flow is None or flow.client_id != app.client_id:
            raise AadstsError(70018)
        if flow.status == "redeemed":
            raise AadstsError(54005)
        if flow.expires_at <= core.store.now():
            raise AadstsError(70019)
        if flow.status == "declined":
            raise AadstsError(65004)
        if flow.status != "approved" or flow.user_oid is None:
            raise AadstsError(70016)
        flow.status = "redeemed"
        user = directory.find_user_by_oid(flow.user_oid)
        scope_text, mfa, auth_time = flow.scope, flow.mfa, flow.created_at
    if user is None:
        raise AadstsError(70018)
    core.raise_injected(app, user)
    scope = parse_scopes(scope_text, tenant=tenant.domain)
    grant = UserGrant(tenant, app, user, scope, mfa, auth_time, appidacr, None, want_info)
    return core.user_token_response(grant)


# --- device code endpoint -----------------------------------------------------------------------


def device_code_request(
    core: IdentityCore, segment: str, form: Mapping[str, str], verification_uri: str
) -> dict[str, Any]:
    """Handle ``POST /<segment>/oauth2/v2.0/devicecode``."""
    tenant = core.resolve_tenant(segment)
    app = core.resolve_app(form.get("client_id"), tenant)
    tenant = tenant or core.tenant_of(app)
    if not app.public and not app.allow_public_client_flows:
        raise AadstsError(7000218)
    raw_scope = form.get("scope", "")
    parse_scopes(raw_scope, tenant=tenant.domain)
    settings = core.store.current().settings
    now = core.store.now()
    user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
    device_code = "DAQABAAEAAA" + secrets.token_urlsafe(96)
    flow = DeviceCode(
        device_code=device_code,
        user_code=user_code,
        client_id=app.client_id,
        tenant_id=tenant.tenant_id,
        scope=raw_scope,
        created_at=now,
        expires_at=now + settings.device_code_lifetime,
    )
    with core.store.transaction() as directory:
        directory.device_codes = [d for d in directory.device_codes if d.expires_at > now - 3600]
        directory.device_codes.append(flow)
    return {
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": settings.device_code_lifetime,
        "interval": settings.device_code_interval,
        "message": (
            f"To sign in, use a web browser to open the page {verification_uri} and enter the "
            f"code {user_code} to authenticate."
        ),
    }


def _stamp(epoch: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(epoch))
