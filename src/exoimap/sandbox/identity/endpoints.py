"""The Starlette application: Microsoft's paths on top of the flows.

Flow work (signing, directory writes with fsync) runs in Starlette's thread pool so that a
server sharing the event loop (the sandbox's IMAP half) is never stalled by it.

Paths (``T`` is a tenant id, a verified domain, ``common`` or ``organizations``)::

    GET  /T/v2.0/.well-known/openid-configuration     OIDC discovery
    GET  /T/discovery/v2.0/keys, /T/discovery/keys    JWKS
    GET  /common/discovery/instance                   MSAL instance discovery
    GET  /T/oauth2/v2.0/authorize                     sign-in page (POST: its forms)
    POST /T/oauth2/v2.0/token                         token endpoint
    POST /T/oauth2/v2.0/devicecode                    device authorization
    GET  /T/oauth2/v2.0/logout                        sign out
    GET  /devicelogin                                 device login page (POST: its forms)
    GET  /_sandbox/health                             liveness for scripts
    GET  /v1.0/users                                  Microsoft Graph (see graph.py)
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from exoimap.sandbox.identity import pages
from exoimap.sandbox.identity.aadsts import AadstsError, error_body
from exoimap.sandbox.identity.core import IdentityCore
from exoimap.sandbox.identity.grants import device_code_request, token_request
from exoimap.sandbox.identity.signin import (
    SESSION_COOKIE,
    Outcome,
    SignIn,
    redirect_uri_matches,
)

__all__ = ["build_app", "discovery_document"]

_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _json(body: dict[str, Any], status: int = 200, cache: bool = False) -> JSONResponse:
    headers = {"x-ms-request-id": str(uuid.uuid4())}
    headers.update({"Cache-Control": "max-age=86400, private"} if cache else _NO_STORE)
    return JSONResponse(body, status_code=status, headers=headers)


def _aadsts(exc: AadstsError, request: Request) -> JSONResponse:
    body = error_body(exc, request.headers.get("client-request-id"))
    return _json(body, exc.status)


def discovery_document(base: str, segment: str, tenant_id: str | None) -> dict[str, Any]:
    """The v2.0 OpenID configuration for a tenant (or ``common`` when ``tenant_id`` is None)."""
    path = tenant_id or segment
    issuer_tenant = tenant_id or "{tenantid}"
    return {
        "token_endpoint": f"{base}/{path}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/{path}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/{path}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{path}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{path}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{base}/{path}/kerberos",
        "tenant_region_scope": "WW" if tenant_id else None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else None


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _send(outcome: Outcome) -> Response:
    response: Response
    if outcome.redirect is not None:
        response = RedirectResponse(outcome.redirect, status_code=302)
    else:
        response = HTMLResponse(outcome.html or "", status_code=outcome.status)
    response.headers.update(_NO_STORE)
    if outcome.set_session:
        response.set_cookie(
            SESSION_COOKIE, outcome.set_session, secure=True, httponly=True, samesite="none"
        )
    return response


def build_app(core: IdentityCore, extra: Sequence[Route] = ()) -> Starlette:
    """The ASGI app serving ``core`` (and ``extra`` routes: the Graph endpoint)."""
    # no two paths overlap, so the order of the groups does not matter
    routes = [
        Route("/_sandbox/health", _health),
        *_discovery_routes(core),
        *_signin_routes(core, SignIn(core)),
        *_token_routes(core),
        *extra,
    ]
    return Starlette(routes=routes)


async def _health(request: Request) -> Response:
    return _json({"status": "ok"})


def _discovery_routes(core: IdentityCore) -> list[Route]:
    """OIDC discovery, the signing keys (JWKS) and MSAL's instance discovery."""

    async def openid_configuration(request: Request) -> Response:
        segment = request.path_params["tenant"]
        try:
            tenant = core.resolve_tenant(segment)
        except AadstsError as exc:
            body = error_body(exc, request.headers.get("client-request-id"))
            body["error"] = "invalid_tenant"
            return _json(body, 400)
        tenant_id = tenant.tenant_id if tenant else None
        return _json(discovery_document(_base(request), segment, tenant_id), cache=True)

    async def keys(request: Request) -> Response:
        segment = request.path_params["tenant"]
        try:
            tenant = core.resolve_tenant(segment)
        except AadstsError as exc:
            return _aadsts(exc, request)
        issuer = None
        if tenant is not None and "v2.0" in request.url.path:
            issuer = f"{_base(request)}/{tenant.tenant_id}/v2.0"
        return _json({"keys": [core.key.jwk(issuer)]}, cache=True)

    async def instance_discovery(request: Request) -> Response:
        host = request.url.netloc
        return _json(
            {
                "tenant_discovery_endpoint": (
                    f"{_base(request)}/{{tenant}}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
            cache=True,
        )

    return [
        Route("/common/discovery/instance", instance_discovery),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        Route("/{tenant}/discovery/v2.0/keys", keys),
        Route("/{tenant}/discovery/keys", keys),
    ]


def _signin_routes(core: IdentityCore, signin: SignIn) -> list[Route]:
    """The pages a person sees: sign-in (authorize), device login and sign-out."""

    async def authorize(request: Request) -> Response:
        action = str(request.url.replace(query=""))
        if request.method == "POST":
            return _send(await run_in_threadpool(signin.post, await _form(request), action))
        params = dict(request.query_params)
        session = request.cookies.get(SESSION_COOKIE)
        segment = request.path_params["tenant"]
        return _send(await run_in_threadpool(signin.authorize, segment, params, action, session))

    async def devicelogin(request: Request) -> Response:
        action = f"{_base(request)}/devicelogin"
        if request.method == "GET":
            return _send(Outcome(pages.device_code_page(action)))
        form = await _form(request)
        if form.get("step") == "code":
            return _send(await run_in_threadpool(signin.device_code_entry, form, action))
        return _send(await run_in_threadpool(signin.post, form, action))

    async def logout(request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri", "")
        registered = [
            u for t in core.store.current().tenants for a in t.apps for u in a.redirect_uris
        ]
        response: Response
        if target and redirect_uri_matches(registered, target):  # never an open redirect
            response = RedirectResponse(target, status_code=302)
        else:
            response = HTMLResponse(pages.signed_out_page())
        response.delete_cookie(SESSION_COOKIE)
        return response

    return [
        Route("/devicelogin", devicelogin, methods=["GET", "POST"]),
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
        Route("/{tenant}/oauth2/v2.0/logout", logout, methods=["GET", "POST"]),
    ]


def _token_routes(core: IdentityCore) -> list[Route]:
    """What applications call: the token endpoint and device authorization."""

    async def token(request: Request) -> Response:
        form = await _form(request)
        url = str(request.url.replace(query=""))
        try:
            body = await run_in_threadpool(
                token_request, core, request.path_params["tenant"], form, url, _basic_auth(request)
            )
        except AadstsError as exc:
            return _aadsts(exc, request)
        return _json(body)

    async def devicecode(request: Request) -> Response:
        form = await _form(request)
        try:
            body = await run_in_threadpool(
                device_code_request,
                core,
                request.path_params["tenant"],
                form,
                f"{_base(request)}/devicelogin",
            )
        except AadstsError as exc:
            return _aadsts(exc, request)
        return _json(body)

    return [
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
    ]
