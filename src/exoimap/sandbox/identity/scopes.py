"""Scopes and resources: which audience a requested scope gives, and what it grants.

Only two resources exist in the sandbox, as in every real tenant: Office 365 Exchange Online
(app id ``00000002-0000-0ff1-ce00-000000000000``) and Microsoft Graph. A scope names its
resource by URI (``https://outlook.office.com/IMAP.AccessAsUser.All``) or app id; a bare
name (``User.Read``) means Graph, as on the real v2.0 endpoint. The audience of the token is
the resource identifier *as requested* (v1.0 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from exoimap.errors import ConfigError
from exoimap.sandbox.identity.aadsts import AadstsError

__all__ = [
    "EXCHANGE_APP_ID",
    "GRAPH_APP_ID",
    "OIDC_SCOPES",
    "RESOURCES",
    "Permission",
    "Resource",
    "ScopeRequest",
    "normalize_permission",
    "parse_scopes",
]

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


@dataclass(frozen=True)
class Resource:
    """A resource API: its app id, the URIs that name it, and its permissions."""

    app_id: str
    display_name: str
    uris: tuple[str, ...]
    delegated: frozenset[str]
    application: frozenset[str]


RESOURCES: tuple[Resource, ...] = (
    Resource(
        EXCHANGE_APP_ID,
        "Office 365 Exchange Online",
        (
            "https://outlook.office.com",
            "https://outlook.office365.com",
            "https://ps.outlook.com",
            EXCHANGE_APP_ID,
        ),
        frozenset(
            {
                "IMAP.AccessAsUser.All",
                "POP.AccessAsUser.All",
                "SMTP.Send",
                "EWS.AccessAsUser.All",
                "Mail.Read",
                "Mail.ReadWrite",
                "User.Read",
            }
        ),
        frozenset({"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp", "full_access_as_app"}),
    ),
    Resource(
        GRAPH_APP_ID,
        "Microsoft Graph",
        ("https://graph.microsoft.com", GRAPH_APP_ID),
        frozenset(
            {
                "User.Read",
                "IMAP.AccessAsUser.All",
                "POP.AccessAsUser.All",
                "SMTP.Send",
                "Mail.Read",
                "Mail.ReadWrite",
                "GroupMember.Read.All",
                "Directory.Read.All",
            }
        ),
        frozenset(
            {
                "Mail.Read",
                "Mail.ReadWrite",
                "User.Read.All",
                "GroupMember.Read.All",
                "Group.Read.All",
                "Directory.Read.All",
            }
        ),
    ),
)


@dataclass(frozen=True)
class Permission:
    """A permission on a resource, stored as ``<resource app id>/<name>``."""

    resource_app_id: str
    name: str

    def __str__(self) -> str:
        return f"{self.resource_app_id}/{self.name}"


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed ``scope`` parameter: one resource (or none), its permissions, OIDC scopes."""

    resource: Resource | None
    audience: str | None  # the resource identifier as requested
    prefix: str  # how the client wrote the resource ("" for bare Graph names)
    permissions: tuple[str, ...]  # names; empty with .default
    default: bool  # ".default" was requested
    oidc: frozenset[str]

    def require_delegated(self) -> None:
        """AADSTS70011 when a user flow asks for an application-only permission."""
        if self.resource is None:
            return
        for name in self.permissions:
            if name not in self.resource.delegated:
                raise AadstsError(70011, scope=f"{self.prefix}/{name}" if self.prefix else name)

    def echo(self, granted: tuple[str, ...]) -> str:
        """The response's ``scope``: the granted permissions, written as the client wrote them."""
        written = [f"{self.prefix}/{name}" if self.prefix else name for name in granted]
        return " ".join(written) if written else " ".join(sorted(self.oidc))


def _resource_for(prefix: str) -> Resource | None:
    wanted = prefix.rstrip("/").lower()
    for resource in RESOURCES:
        if wanted in (uri.lower() for uri in resource.uris):
            return resource
    return None


def _split(scope: str) -> tuple[str, str]:
    """``https://host/Name`` -> (``https://host``, ``Name``); bare names -> ("", name)."""
    if "://" in scope:
        head, _, name = scope.rpartition("/")
        return head, name
    if "/" in scope:
        head, _, name = scope.partition("/")
        return head, name
    return "", scope


def parse_scopes(raw: str | None, *, tenant: str) -> ScopeRequest:
    """Parse a ``scope`` parameter; raise AADSTS70011 / 500011 as Entra would."""
    items = [s for s in (raw or "").split() if s]
    if not items:
        raise AadstsError(70011, scope="")
    oidc = frozenset(s for s in items if s in OIDC_SCOPES)
    rest = [s for s in items if s not in OIDC_SCOPES]
    if not rest:
        return ScopeRequest(None, None, "", (), False, oidc)
    resource: Resource | None = None
    prefix = ""
    names: list[str] = []
    for scope in rest:
        head, name = _split(scope)
        if head:
            found = _resource_for(head)
            if found is None:
                raise AadstsError(500011, resource=head, tenant=tenant)
        else:
            found = RESOURCES[1]  # bare names are Graph permissions
        if resource is not None and (found is not resource or head != prefix):
            raise AadstsError(70011, scope=scope)  # one resource per request
        resource, prefix = found, head
        if not name:
            raise AadstsError(70011, scope=scope)
        names.append(name)
    assert resource is not None
    default = ".default" in names
    if default and len(names) > 1:
        raise AadstsError(70011, scope=" ".join(rest))
    for name in names:
        if name != ".default" and name not in resource.delegated | resource.application:
            raise AadstsError(70011, scope=f"{prefix}/{name}" if prefix else name)
    audience = prefix if prefix else resource.app_id
    kept = () if default else tuple(dict.fromkeys(names))
    return ScopeRequest(resource, audience, prefix, kept, default, oidc)


def normalize_permission(text: str, *, application: bool) -> Permission:
    """``https://outlook.office.com/IMAP.AccessAsUser.All`` (or the app-id form, or a bare
    Graph name) -> :class:`Permission`; raises ``ValueError`` for an unknown permission."""
    head, name = _split(text.strip())
    resource = _resource_for(head) if head else RESOURCES[1]
    if resource is None:
        raise ConfigError(f"unknown resource {head!r}", key="permission")
    allowed = resource.application if application else resource.delegated
    if name not in allowed:
        kind = "application" if application else "delegated"
        raise ConfigError(
            f"{name!r} is not a {kind} permission of {resource.display_name}", key="permission"
        )
    return Permission(resource.app_id, name)
