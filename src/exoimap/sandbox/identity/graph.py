"""An offline Microsoft Graph, as far as mailbox discovery and the console use it: ``GET
/v1.0/users``, ``GET /v1.0/groups/{id}/transitiveMembers[/microsoft.graph.user]`` (nested
groups' members included; ``GroupMember.Read.All`` or ``Group.Read.All``; 404
``Request_ResourceNotFound``), and ``POST /v1.0/users/{id}/getMemberObjects`` and ``POST
/v1.0/me/getMemberObjects`` (every group the user is in, nested ones included;
``GroupMember.Read.All`` or ``Directory.Read.All``; a delegated token may ask about its own
user only, which is stricter than Graph and what the console needs).

What it keeps from the real service: a bearer token for the Graph audience with the
``User.Read.All`` application role (401 ``InvalidAuthenticationToken`` / 403
``Authorization_RequestDenied`` otherwise), ``$top`` (1..999, default 100) with an opaque
``$skiptoken`` in ``@odata.nextLink``, ``$select``, ``$filter`` on ``accountEnabled eq
true|false`` only (anything else: 400 ``Request_UnsupportedQuery``), and throttling per
application across every connection: past the budget (``Settings.graph_budget`` requests per
``graph_budget_window`` seconds) a request gets 429 ``TooManyRequests`` with ``Retry-After``
in whole seconds. :attr:`GraphService.served` and :attr:`GraphService.throttled` count what
each app was given, and :attr:`GraphService.answers` says when (``time.monotonic()``), so
tests can check that no client ignored a ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exoimap.sandbox.identity.model import User
from exoimap.sandbox.identity.scopes import GRAPH_APP_ID
from exoimap.sandbox.identity.store import DirectoryStore
from exoimap.sandbox.identity.tokens import (
    AccessTokenClaims,
    AccessTokenVerifier,
    InvalidAccessToken,
    SigningKey,
)

__all__ = ["GRAPH_AUDIENCES", "GraphAnswer", "GraphService"]

GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", GRAPH_APP_ID})
_DEFAULT_TOP, _MAX_TOP = 100, 999
#: What ``/v1.0/users`` returns without ``$select`` (Graph's default user properties).
_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_SELECTABLE = frozenset({*_DEFAULT_PROPERTIES, "accountEnabled", "userType"})
#: The application roles (or delegated scopes) each listing needs.
_USER_ROLES = frozenset({"User.Read.All"})
_GROUP_ROLES = frozenset({"GroupMember.Read.All", "Group.Read.All"})
_MEMBERSHIP_ROLES = frozenset({"GroupMember.Read.All", "Directory.Read.All"})


class _GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def _user_properties(user: User) -> dict[str, Any]:
    given, _, surname = user.display_name.partition(" ")
    return {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given or None,
        "jobTitle": None,
        "mail": user.upn,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.oid,
        "accountEnabled": not user.blocked_by_conditional_access,
        "userType": "Member",
    }


def _skiptoken(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _after(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _GraphError(400, "Request_BadRequest", "Invalid $skiptoken.") from None
    if not isinstance(value, str):
        raise _GraphError(400, "Request_BadRequest", "Invalid $skiptoken.")
    return value


def _top(raw: str | None) -> int:
    if raw is None:
        return _DEFAULT_TOP
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_TOP:
        raise _GraphError(
            400, "Request_BadRequest", f"Invalid page size specified: '{raw}'. Must be 1-999."
        )
    return int(raw)


def _select(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return _DEFAULT_PROPERTIES
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    unknown = [n for n in names if n not in _SELECTABLE]
    if unknown:
        raise _GraphError(
            400,
            "Request_BadRequest",
            f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.user'.",
        )
    return names


def _enabled_filter(raw: str | None) -> bool | None:
    if not raw:
        return None
    words = raw.split()
    if words[:2] == ["accountEnabled", "eq"] and words[2:] in (["true"], ["false"]):
        return words[2] == "true"
    raise _GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")


class GraphAnswer(NamedTuple):
    """When an app was answered (``time.monotonic()``), and the ``Retry-After`` of a 429
    (0: served)."""

    app_id: str
    at: float
    retry_after: int


class _Budget:
    """Requests per app in a sliding window, shared by every connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def take(self, app_id: str, budget: int, window: float) -> int:
        """0 when the request may go ahead, else the seconds to wait (at least 1)."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault(app_id, deque())
            while recent and recent[0] <= now - window:
                recent.popleft()
            if len(recent) >= budget:
                return max(1, math.ceil(recent[0] + window - now))
            recent.append(now)
            return 0


class GraphService:
    """``/v1.0/users`` over a directory store, verifying tokens with the sandbox key."""

    def __init__(self, store: DirectoryStore, key: SigningKey) -> None:
        self.store = store
        self.verifier = AccessTokenVerifier(key)
        self.budget = _Budget()
        #: Requests answered (any status but 429) and 429s, per app id.
        self.served: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        #: The latest answers, oldest first.
        self.answers: deque[GraphAnswer] = deque(maxlen=100_000)

    def routes(self) -> list[Route]:
        members = "/v1.0/groups/{group_id}/transitiveMembers"
        return [
            Route("/v1.0/users", self._endpoint(self.users)),
            Route(members, self._endpoint(self.group_members)),
            Route(members + "/microsoft.graph.user", self._endpoint(self.group_members)),
            Route(
                "/v1.0/users/{user_id}/getMemberObjects",
                self._endpoint(self.member_objects, posted=True),
                methods=["POST"],
            ),
            Route(
                "/v1.0/me/getMemberObjects",
                self._endpoint(self.member_objects, posted=True),
                methods=["POST"],
            ),
        ]

    def _endpoint(
        self, answer: Callable[[Request], dict[str, Any]], *, posted: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if posted:
                    request.state.body = await request.body()
                body = await run_in_threadpool(answer, request)
            except _GraphError as exc:
                return _error(request, exc)
            return _response(request, body, 200)

        return endpoint

    def _caller(self, request: Request, roles: frozenset[str] = _USER_ROLES) -> AccessTokenClaims:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Access token is empty.", retry_after=0
            )
        try:
            claims = self.verifier.verify(
                header[7:].strip(), audiences=GRAPH_AUDIENCES, now=self.store.now()
            )
        except InvalidAccessToken as exc:
            raise _GraphError(
                401, "InvalidAuthenticationToken", f"Access token validation failure: {exc}."
            ) from None
        settings = self.store.current().settings
        wait = self.budget.take(claims.app_id, settings.graph_budget, settings.graph_budget_window)
        self.answers.append(GraphAnswer(claims.app_id, time.monotonic(), wait))
        if wait:
            self.throttled[claims.app_id] += 1
            raise _GraphError(
                429,
                "TooManyRequests",
                "Too many requests. Please retry after the indicated time.",
                retry_after=wait,
            )
        self.served[claims.app_id] += 1
        if not roles & (set(claims.roles) | set(claims.scopes)):
            raise _GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return claims

    def users(self, request: Request) -> dict[str, Any]:
        """One page of the caller's tenant's users."""
        tenant_id = self._caller(request).tenant_id
        enabled = _enabled_filter(request.query_params.get("$filter"))
        tenant = self.store.current().tenant_by_id(tenant_id)
        rows = [_user_properties(u) for u in (tenant.users if tenant else [])]
        if enabled is not None:
            rows = [r for r in rows if r["accountEnabled"] is enabled]
        return _page(request, rows, "users")

    def group_members(self, request: Request) -> dict[str, Any]:
        """One page of a group's members, nested groups' members included (the
        ``microsoft.graph.user`` cast keeps the users only)."""
        tenant_id = self._caller(request, _GROUP_ROLES).tenant_id
        tenant = self.store.current().tenant_by_id(tenant_id)
        groups = {g.object_id: g for g in (tenant.groups if tenant else [])}
        wanted = str(request.path_params["group_id"])
        if wanted not in groups:
            raise _GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{wanted}' does not exist or one of its queried reference-property"
                " objects are not present.",
            )
        seen, todo, users = {wanted}, [wanted], set()
        while todo:
            for member in groups[todo.pop()].members:
                if member in groups and member not in seen:
                    seen.add(member)
                    todo.append(member)
                elif member not in groups:
                    users.add(member)
        users_only = request.url.path.endswith("/microsoft.graph.user")
        rows = [
            {"@odata.type": "#microsoft.graph.user", **_user_properties(u)}
            for u in (tenant.users if tenant else [])
            if u.oid in users
        ]
        if not users_only:
            rows += [
                {
                    "@odata.type": "#microsoft.graph.group",
                    "id": g,
                    "displayName": groups[g].display_name,
                }
                for g in seen - {wanted}
            ]
        return _page(request, rows, "directoryObjects")

    def member_objects(self, request: Request) -> dict[str, Any]:
        """Every group (by object id) the user is in, directly or through nested groups."""
        claims = self._caller(request, _MEMBERSHIP_ROLES)
        _security_enabled_only(request.state.body)
        wanted = request.path_params.get("user_id")
        if wanted is None and claims.app_only:
            raise _GraphError(
                400,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            )
        tenant = self.store.current().tenant_by_id(claims.tenant_id)
        key = str(wanted or claims.object_id).lower()
        user = next(
            (u for u in (tenant.users if tenant else []) if key in (u.oid.lower(), u.upn.lower())),
            None,
        )
        if user is None:
            raise _GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{wanted}' does not exist or one of its queried reference-property"
                " objects are not present.",
            )
        if not claims.app_only and user.oid != claims.object_id:
            raise _GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        held = set(user.groups)
        nested = [g for g in (tenant.groups if tenant else []) if g.members]
        grown = True
        while grown:  # groups holding the user or a group they are in, until none is new
            found = {g.object_id for g in nested if {user.oid, *held} & set(g.members)}
            grown = not found <= held
            held |= found
        return {
            "@odata.context": f"{_base(request)}/v1.0/$metadata#Collection(Edm.String)",
            "value": sorted(held),
        }


def _security_enabled_only(body: bytes) -> bool:
    """The one parameter of ``getMemberObjects`` (every sandbox group is a security group)."""
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        parsed = None
    flag = parsed.get("securityEnabledOnly") if isinstance(parsed, dict) else None
    if not isinstance(flag, bool):
        raise _GraphError(
            400,
            "Request_BadRequest",
            "The request body must be an object with a boolean 'securityEnabledOnly'.",
        )
    return flag


def _page(request: Request, rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The page of ``rows`` (by id) that ``$top`` and ``$skiptoken`` ask for, with
    ``$select`` applied and a next link while more are left."""
    query = request.query_params
    top, select = _top(query.get("$top")), _select(query.get("$select"))
    rows = sorted(rows, key=lambda r: str(r["id"]))
    if "$skiptoken" in query:
        after = _after(query["$skiptoken"])
        rows = [r for r in rows if str(r["id"]) > after]
    page = rows[:top]
    keep = ("@odata.type", *select)
    body: dict[str, Any] = {
        "@odata.context": f"{_base(request)}/v1.0/$metadata#{kind}",
        "value": [{name: row[name] for name in keep if name in row} for row in page],
    }
    if len(rows) > top:
        params = dict(query)
        params["$skiptoken"] = _skiptoken(str(page[-1]["id"]))
        link = urlencode(params, safe="$,", quote_via=quote)
        body["@odata.nextLink"] = f"{_base(request)}{request.url.path}?{link}"
    return body


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _response(
    request: Request, body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    sent = {
        "request-id": str(uuid.uuid4()),
        "client-request-id": request.headers.get("client-request-id", str(uuid.uuid4())),
        "Cache-Control": "no-cache",
        **(headers or {}),
    }
    return JSONResponse(body, status_code=status, headers=sent)


def _error(request: Request, exc: _GraphError) -> JSONResponse:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "")
    body = {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "innerError": {"date": now, "request-id": str(uuid.uuid4())},
        }
    }
    headers = {"Retry-After": str(exc.retry_after)} if exc.status == 429 else {}
    return _response(request, body, exc.status, headers)
