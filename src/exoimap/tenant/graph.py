"""A small Microsoft Graph client: the users of a tenant, and the users in a group (nested
groups included), page by page.

``GET /v1.0/users`` (``User.Read.All``) and ``GET /v1.0/groups/{id}/transitiveMembers/
microsoft.graph.user`` (``GroupMember.Read.All``) with ``$select`` and ``$top``, following
``@odata.nextLink`` until it is absent. A 429 (or 503/504) is handed to a :class:`Backoff`
with the ``Retry-After`` seconds it names (bounded), which every request waits out before
it goes, then the same page is asked again; other refusals end discovery with what to fix.
A tenant's discovery given :class:`exoimap.tenant.budget.TenantPause` as its backoff shares
it with the tenant's workers, both ways.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import requests

from exoimap.errors import AuthError, ConfigError, InsufficientPermission, NetworkError
from exoimap.secrets import Secret
from exoimap.untrusted import shown

__all__ = ["Backoff", "GraphUser", "LocalBackoff", "group_members", "list_users"]

_RETRIED = frozenset({429, 503, 504})
#: Longest single wait a Retry-After may impose, and how many waits one page may take.
_MAX_WAIT = 300.0
_MAX_WAITS = 10
_SELECT = "id,userPrincipalName,displayName,mail,accountEnabled"


class Backoff(Protocol):
    """Where a throttling answer's wait is recorded, and waited out before each request."""

    def wait(self) -> None: ...

    def pause(self, seconds: float) -> None: ...


class LocalBackoff:
    """A :class:`Backoff` for this process only."""

    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sleep, self._clock = sleep, clock
        self._not_before = 0.0

    def wait(self) -> None:
        left = self._not_before - self._clock()
        if left > 0:
            self._sleep(left)

    def pause(self, seconds: float) -> None:
        self._not_before = max(self._not_before, self._clock() + seconds)


@dataclass(frozen=True, slots=True)
class GraphUser:
    object_id: str
    upn: str
    display_name: str
    mail: str | None
    enabled: bool


def _user(item: dict[str, Any]) -> GraphUser | None:
    oid, upn = item.get("id"), item.get("userPrincipalName")
    if not isinstance(oid, str) or not isinstance(upn, str) or "@" not in upn:
        return None
    mail = item.get("mail")
    return GraphUser(
        object_id=oid,
        upn=upn,
        display_name=str(item.get("displayName") or ""),
        mail=mail if isinstance(mail, str) else None,
        enabled=item.get("accountEnabled") is not False,
    )


def _retry_after(response: requests.Response, waited: int) -> float:
    raw = response.headers.get("Retry-After", "")
    seconds = float(raw) if raw.isdigit() else min(2.0**waited, 60.0)
    return min(max(seconds, 1.0), _MAX_WAIT)


def _refusal(response: requests.Response, listing: _Listing) -> Exception:
    try:
        error = response.json().get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        code, message = "", ""
    said = shown(f"{code}: {message}" if code else f"HTTP {response.status_code}")
    if response.status_code == 401:
        return AuthError(f"Microsoft Graph refused the token ({said})")
    if response.status_code == 403:
        return InsufficientPermission(
            f"Microsoft Graph refused to list {listing.what} ({said})",
            fix=f"Grant the app the {listing.permission} application permission with admin"
            " consent.",
        )
    if response.status_code == 404:
        return ConfigError(f"Microsoft Graph has no {listing.what} ({said})")
    return NetworkError(f"Microsoft Graph answered {response.status_code} ({said})")


@dataclass(frozen=True, slots=True)
class _Listing:
    """What is listed (for errors) and the permission it needs."""

    what: str
    permission: str


def _get(
    session: requests.Session,
    url: str,
    token: Secret[str],
    backoff: Backoff,
    *,
    params: dict[str, str] | None,
    listing: _Listing,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
    for waited in range(_MAX_WAITS + 1):
        backoff.wait()
        try:
            response = session.get(url, headers=headers, params=params, timeout=60)
        except requests.RequestException as exc:
            raise NetworkError(f"cannot reach Microsoft Graph: {type(exc).__name__}") from None
        if response.status_code in _RETRIED and waited < _MAX_WAITS:
            backoff.pause(_retry_after(response, waited))
            continue
        if response.status_code != 200:
            raise _refusal(response, listing)
        body = response.json()
        if not isinstance(body, dict):
            raise NetworkError("Microsoft Graph answered with something other than an object")
        return body
    raise NetworkError("Microsoft Graph kept throttling the listing")  # pragma: no cover


def _same_service(graph_url: str, link: object) -> str:
    """The next page's URL, refused unless it is on the Graph service asked first (the
    token must never be sent anywhere else)."""
    base = graph_url.rstrip("/") + "/"
    if not isinstance(link, str) or not link.startswith(base):
        raise NetworkError(f"Microsoft Graph sent a next page link elsewhere: {shown(str(link))}")
    return link


def _items(
    graph_url: str,
    path: str,
    token: Secret[str],
    listing: _Listing,
    *,
    ca_file: Path | None,
    page_size: int,
    backoff: Backoff | None,
) -> Iterator[dict[str, Any]]:
    """Every item of a listing, following ``@odata.nextLink``."""
    backoff = backoff or LocalBackoff()
    with requests.Session() as session:
        if ca_file is not None:
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
            session.verify = str(ca_file)
        url: str | None = f"{graph_url.rstrip('/')}{path}"
        params: dict[str, str] | None = {"$select": _SELECT, "$top": str(page_size)}
        while url:
            body = _get(session, url, token, backoff, params=params, listing=listing)
            yield from (item for item in body.get("value") or [] if isinstance(item, dict))
            link = body.get("@odata.nextLink")
            url, params = (_same_service(graph_url, link) if link else None), None


def list_users(
    graph_url: str,
    token: Secret[str],
    *,
    ca_file: Path | None = None,
    page_size: int = 999,
    backoff: Backoff | None = None,
) -> Iterator[GraphUser]:
    """Every user of the token's tenant."""
    listing = _Listing("users", "User.Read.All")
    for item in _items(
        graph_url,
        "/v1.0/users",
        token,
        listing,
        ca_file=ca_file,
        page_size=page_size,
        backoff=backoff,
    ):
        user = _user(item)
        if user is not None:
            yield user


def group_members(
    graph_url: str,
    token: Secret[str],
    group_id: str,
    *,
    ca_file: Path | None = None,
    page_size: int = 999,
    backoff: Backoff | None = None,
) -> Iterator[GraphUser]:
    """Every user in the group ``group_id``, directly or through nested groups."""
    path = f"/v1.0/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user"
    listing = _Listing(f"group {shown(group_id)}", "GroupMember.Read.All")
    for item in _items(
        graph_url, path, token, listing, ca_file=ca_file, page_size=page_size, backoff=backoff
    ):
        user = _user(item)
        if user is not None:
            yield user
