"""The tenant directory: tenants, users, app registrations, Exchange principals, grants.

Plain dataclasses, saved as JSON by :mod:`exoimap.sandbox.identity.store`. The directory
also holds the little runtime state that another process must be able to change while the
server runs: pending device codes (``exoimap sandbox approve``), injected errors, and the
clock offset tests use to make time pass.

Permissions are stored as ``<resource app id>/<name>``, for example
``00000002-0000-0ff1-ce00-000000000000/IMAP.AccessAsUser.All``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from exoimap.errors import ConfigError

__all__ = [
    "AppCertificate",
    "AppRegistration",
    "ClientSecret",
    "DeviceCode",
    "Directory",
    "ExchangeServicePrincipal",
    "Group",
    "InjectedError",
    "MailboxPermission",
    "Settings",
    "Tenant",
    "User",
    "directory_from_json",
    "directory_to_json",
]

FULL_ACCESS = "FullAccess"


@dataclass
class ClientSecret:
    """A client secret of an app registration (the value is kept: this is a sandbox)."""

    secret_id: str
    value: str = field(repr=False)
    expires_at: float
    display_name: str = ""


@dataclass
class AppCertificate:
    """A certificate credential, known by its SHA-1 and SHA-256 thumbprints (hex)."""

    thumbprint_sha1: str
    thumbprint_sha256: str
    certificate_pem: str
    expires_at: float


@dataclass
class AppRegistration:
    """An app registration and its service principal in the home tenant."""

    client_id: str
    name: str
    tenant_id: str
    public: bool
    object_id: str  # the app registration's object id
    service_principal_id: str  # the enterprise application's object id
    redirect_uris: list[str] = field(default_factory=list)
    secrets: list[ClientSecret] = field(default_factory=list)
    certificates: list[AppCertificate] = field(default_factory=list)
    delegated_permissions: list[str] = field(default_factory=list)
    application_permissions: list[str] = field(default_factory=list)
    admin_consent: bool = False
    allow_public_client_flows: bool = True
    # app roles the app defines (their values) and who has them: Entra puts a user's
    # assigned values in the ``roles`` claim of the ID tokens issued to this app
    app_roles: list[str] = field(default_factory=list)
    role_assignments: dict[str, list[str]] = field(default_factory=dict)  # user oid -> values
    # the manifest's groupMembershipClaims: ID tokens carry the user's group object ids
    group_claims: bool = False

    @property
    def type(self) -> str:
        return "public" if self.public else "confidential"


@dataclass
class User:
    """A user: ``password`` is for the sign-in page; the flags drive MFA and CA errors."""

    oid: str
    upn: str
    tenant_id: str
    display_name: str
    password: str = field(repr=False)
    mfa_required: bool = False
    blocked_by_conditional_access: bool = False
    tokens_valid_from: float = 0.0  # "revoke sessions" moves this to now
    groups: list[str] = field(default_factory=list)  # object ids of the groups they are in


@dataclass
class ExchangeServicePrincipal:
    """``New-ServicePrincipal -AppId ... -ObjectId ...`` in Exchange Online."""

    app_id: str
    object_id: str  # must be the enterprise application's object id to work
    display_name: str


@dataclass
class MailboxPermission:
    """``Add-MailboxPermission -Identity <mailbox> -User <principal> -AccessRights ...``."""

    mailbox: str  # the mailbox owner's UPN (lower case)
    principal_id: str  # a service principal's object id or a user's oid
    access_rights: list[str] = field(default_factory=lambda: [FULL_ACCESS])


@dataclass
class Group:
    """A security or Microsoft 365 group: its members are user oids and group ids (nested
    groups count their members as the group's, as Graph's ``transitiveMembers`` does)."""

    object_id: str
    display_name: str
    members: list[str] = field(default_factory=list)


@dataclass
class Tenant:
    """A tenant with its verified domain and everything in it."""

    tenant_id: str
    domain: str
    display_name: str
    users: list[User] = field(default_factory=list)
    apps: list[AppRegistration] = field(default_factory=list)
    exchange_principals: list[ExchangeServicePrincipal] = field(default_factory=list)
    mailbox_permissions: list[MailboxPermission] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    # "<user oid> <client id>" -> delegated permissions the user consented to
    user_consents: dict[str, list[str]] = field(default_factory=dict)
    user_consent_allowed: bool = True
    sign_in_frequency_seconds: float | None = None


@dataclass
class DeviceCode:
    """A device-code flow between ``devicecode`` and redemption."""

    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    tenant_id: str
    scope: str
    created_at: float
    expires_at: float
    status: str = "pending"  # pending, approved, declined, redeemed
    user_oid: str | None = None
    mfa: bool = False


@dataclass
class InjectedError:
    """Make the next ``remaining`` token requests for a user and/or app fail with ``code``."""

    code: int
    upn: str | None = None
    client_id: str | None = None
    remaining: int = 1


@dataclass
class Settings:
    """Lifetimes (seconds) and device-flow pacing; tests make them short."""

    access_token_lifetime: int = 3599
    id_token_lifetime: int = 3600
    auth_code_lifetime: int = 600
    device_code_lifetime: int = 900
    device_code_interval: int = 5
    refresh_token_inactivity: int = 90 * 24 * 3600
    refresh_token_max_age: int | None = None
    clock_offset: float = 0.0
    #: Seconds an idle HTTPS connection stays open (read when the server starts). Longer
    #: than ``device_code_interval``, as a real service's: at uvicorn's default (5 s, the
    #: poll interval) a client's next poll raced the server closing its pooled connection.
    http_keep_alive: int = 120
    #: Microsoft Graph requests one app may make per ``graph_budget_window`` seconds, across
    #: all its connections; past that Graph answers 429 with ``Retry-After``.
    graph_budget: int = 10_000
    graph_budget_window: int = 10


@dataclass
class Directory:
    """The whole sandbox directory."""

    tenants: list[Tenant] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    device_codes: list[DeviceCode] = field(default_factory=list)
    injected_errors: list[InjectedError] = field(default_factory=list)
    version: int = 1

    # --- look-ups (used by the IMAP half too) ---------------------------------------------

    def tenant(self, name: str) -> Tenant | None:
        """A tenant by id or verified domain (case-insensitive)."""
        wanted = name.lower()
        for tenant in self.tenants:
            if wanted in (tenant.tenant_id.lower(), tenant.domain.lower()):
                return tenant
        return None

    def tenant_by_id(self, tenant_id: str) -> Tenant | None:
        return next((t for t in self.tenants if t.tenant_id == tenant_id), None)

    def find_user(self, upn: str) -> User | None:
        """A user by UPN (case-insensitive), in any tenant."""
        wanted = upn.lower()
        for tenant in self.tenants:
            for user in tenant.users:
                if user.upn.lower() == wanted:
                    return user
        return None

    def find_user_by_oid(self, oid: str) -> User | None:
        for tenant in self.tenants:
            for user in tenant.users:
                if user.oid == oid:
                    return user
        return None

    def find_app(self, client_id: str) -> AppRegistration | None:
        """An app registration by client id (or by name), in any tenant."""
        for tenant in self.tenants:
            for app in tenant.apps:
                if client_id in (app.client_id, app.name):
                    return app
        return None

    def exchange_principal(self, app_id: str, tenant_id: str) -> ExchangeServicePrincipal | None:
        """The Exchange service principal registered for ``app_id`` in a tenant."""
        tenant = self.tenant_by_id(tenant_id)
        if tenant is None:
            return None
        return next((p for p in tenant.exchange_principals if p.app_id == app_id), None)

    def has_full_access(self, principal_id: str, mailbox: str, tenant_id: str) -> bool:
        """Whether ``principal_id`` (an SP object id or a user oid) has FullAccess on
        ``mailbox`` (a UPN). A user always has full access to their own mailbox."""
        tenant = self.tenant_by_id(tenant_id)
        if tenant is None:
            return False
        owner = self.find_user(mailbox)
        if owner is not None and owner.oid == principal_id and owner.tenant_id == tenant_id:
            return True
        wanted = mailbox.lower()
        return any(
            p.mailbox == wanted
            and p.principal_id == principal_id
            and FULL_ACCESS in p.access_rights
            for p in tenant.mailbox_permissions
        )


# --- JSON -----------------------------------------------------------------------------------

T = TypeVar("T")


def directory_to_json(directory: Directory) -> dict[str, Any]:
    """The directory as a JSON-ready dict."""
    document = _dump(directory)
    assert isinstance(document, dict)
    return document


def _dump(value: object) -> object:
    # dataclasses.asdict deep-copies every leaf; this walk is several times faster, and the
    # directory is written on every change.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _dump(item) for key, item in vars(value).items()}
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item) for key, item in value.items()}
    return value


def directory_from_json(document: object) -> Directory:
    """Rebuild a directory from :func:`directory_to_json` output; bad data -> ConfigError."""
    try:
        return _load(Directory, document, "directory")
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"the sandbox directory is invalid: {exc}") from None


def _load(cls: type[T], data: object, where: str) -> T:
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected an object")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        if item.name in data:
            values[item.name] = _convert(hints[item.name], data[item.name], f"{where}.{item.name}")
    return cls(**values)


def _convert(hint: Any, value: object, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(options[0], value, where)
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"{where}: expected a list")
        (inner,) = typing.get_args(hint)
        return [_convert(inner, v, f"{where}[]") for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object")
        _key, inner = typing.get_args(hint)
        return {str(k): _convert(inner, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _load(hint, value, where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise TypeError(f"{where}: expected {getattr(hint, '__name__', hint)}")
