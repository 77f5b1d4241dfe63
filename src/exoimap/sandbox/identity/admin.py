"""The admin API: what an Entra and Exchange administrator would do, as Python calls.

Every call is one directory transaction, so it takes effect on a running server at its next
request, whether made in the server's process or from another (``exoimap sandbox ...``).
Names that identify an app accept its client id or its name; users are named by UPN.
Bad input raises :class:`~exoimap.errors.ConfigError` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from exoimap.errors import ConfigError
from exoimap.sandbox.identity.aadsts import CATALOG
from exoimap.sandbox.identity.model import (
    FULL_ACCESS,
    AppCertificate,
    AppRegistration,
    ClientSecret,
    DeviceCode,
    Directory,
    ExchangeServicePrincipal,
    Group,
    InjectedError,
    MailboxPermission,
    Settings,
    Tenant,
    User,
)
from exoimap.sandbox.identity.scopes import normalize_permission
from exoimap.sandbox.identity.store import DirectoryStore
from exoimap.sandbox.state import ensure_private_dir, write_private_bytes

__all__ = ["CertificateFiles", "SandboxAdmin", "generate_password"]

_TWO_YEARS = 2 * 365 * 24 * 3600


def generate_password() -> str:
    """A random password that satisfies Entra's complexity rules."""
    alphabet = string.ascii_letters + string.digits
    return "Sb-" + "".join(secrets.choice(alphabet) for _ in range(16)) + "9!"


def _client_secret_value() -> str:
    # Entra's format: 3 characters, a digit, "Q~", then 34 characters.
    alphabet = string.ascii_letters + string.digits + "_~.-"
    head = "".join(secrets.choice(string.ascii_letters) for _ in range(3))
    return (
        head
        + str(secrets.randbelow(10))
        + "Q~"
        + "".join(secrets.choice(alphabet) for _ in range(34))
    )


@dataclass(frozen=True)
class CertificateFiles:
    """A certificate credential written to disk (the key file is 0600)."""

    certificate_file: Path
    private_key_file: Path
    thumbprint_sha1: str
    thumbprint_sha256: str


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or any(c.isspace() for c in uri) or not (parts.netloc or parts.path):
        raise ConfigError(f"not an absolute URI: {uri!r}", key="redirect_uri")
    if parts.fragment:
        raise ConfigError("a redirect URI cannot have a fragment (#...)", key="redirect_uri")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ConfigError(
            "http is allowed only for localhost, 127.0.0.1 and [::1]; use https",
            key="redirect_uri",
        )


def _check_setting(name: str, value: object) -> None:
    """Refuse a value :class:`Settings` could not hold (or load back from the file)."""
    if name == "refresh_token_max_age" and value is None:
        return
    if name == "clock_offset":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{name} must be a number of seconds", key=name)
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a whole number of seconds >= 1", key=name)


class SandboxAdmin:
    """Administers the directory of one state folder."""

    def __init__(self, store: DirectoryStore) -> None:
        self.store = store

    @property
    def directory(self) -> Directory:
        """The current directory (read-only view)."""
        return self.store.current()

    # --- tenants and users --------------------------------------------------------------------

    def create_tenant(
        self, domain: str, *, display_name: str | None = None, tenant_id: str | None = None
    ) -> Tenant:
        domain = domain.strip().lower()
        if "." not in domain or " " in domain:
            raise ConfigError(f"not a domain name: {domain!r}", key="domain")
        with self.store.transaction() as directory:
            if directory.tenant(domain) is not None:
                raise ConfigError(f"a tenant with the domain {domain} exists", key="domain")
            tenant = Tenant(
                tenant_id=tenant_id or str(uuid.uuid4()),
                domain=domain,
                display_name=display_name or domain.split(".")[0].capitalize(),
            )
            directory.tenants.append(tenant)
        return tenant

    def create_user(
        self,
        upn: str,
        *,
        password: str | None = None,
        display_name: str | None = None,
        mfa_required: bool = False,
    ) -> User:
        upn = upn.strip()
        local, at, domain = upn.partition("@")
        if not local or not at:
            raise ConfigError(f"not a user principal name: {upn!r}", key="upn")
        with self.store.transaction() as directory:
            tenant = directory.tenant(domain)
            if tenant is None:
                raise ConfigError(f"no tenant has the domain {domain!r}", key="upn")
            if directory.find_user(upn) is not None:
                raise ConfigError(f"the user {upn} exists", key="upn")
            user = User(
                oid=str(uuid.uuid4()),
                upn=upn,
                tenant_id=tenant.tenant_id,
                display_name=display_name or local.replace(".", " ").title(),
                password=password or generate_password(),
                mfa_required=mfa_required,
            )
            tenant.users.append(user)
        return user

    def set_password(self, upn: str, password: str) -> None:
        """Change a password; like Entra, this revokes the user's refresh tokens."""
        with self.store.transaction() as directory:
            user = self._user(directory, upn)
            user.password = password
            user.tokens_valid_from = self.store.now()

    def set_user_flags(
        self,
        upn: str,
        *,
        mfa_required: bool | None = None,
        blocked_by_conditional_access: bool | None = None,
    ) -> None:
        with self.store.transaction() as directory:
            user = self._user(directory, upn)
            if mfa_required is not None:
                user.mfa_required = mfa_required
            if blocked_by_conditional_access is not None:
                user.blocked_by_conditional_access = blocked_by_conditional_access

    def revoke_sessions(self, upn: str) -> None:
        """``Revoke-MgUserSignInSession``: refresh tokens and sessions issued before now die."""
        with self.store.transaction() as directory:
            self._user(directory, upn).tokens_valid_from = self.store.now() + 0.001

    # --- apps -------------------------------------------------------------------------------

    def create_app(
        self,
        name: str,
        *,
        public: bool,
        tenant: str | None = None,
        redirect_uris: Iterable[str] = (),
        delegated: Iterable[str] = (),
        application: Iterable[str] = (),
        admin_consent: bool = False,
        client_id: str | None = None,
    ) -> AppRegistration:
        delegated_perms = [str(normalize_permission(p, application=False)) for p in delegated]
        app_perms = [str(normalize_permission(p, application=True)) for p in application]
        with self.store.transaction() as directory:
            home = self._tenant(directory, tenant)
            if directory.find_app(name) is not None:
                raise ConfigError(f"an app named {name!r} exists", key="name")
            app = AppRegistration(
                client_id=client_id or str(uuid.uuid4()),
                name=name,
                tenant_id=home.tenant_id,
                public=public,
                object_id=str(uuid.uuid4()),
                service_principal_id=str(uuid.uuid4()),
                redirect_uris=list(redirect_uris),
                delegated_permissions=delegated_perms,
                application_permissions=app_perms,
                admin_consent=admin_consent,
            )
            home.apps.append(app)
        return app

    def add_client_secret(
        self, app: str, *, lifetime: float = _TWO_YEARS, display_name: str = ""
    ) -> ClientSecret:
        """Add a secret that expires ``lifetime`` seconds from now (negative: already expired)."""
        secret = ClientSecret(
            secret_id=str(uuid.uuid4()),
            value=_client_secret_value(),
            expires_at=self.store.now() + lifetime,
            display_name=display_name,
        )
        with self.store.transaction() as directory:
            registration = self._app(directory, app)
            if registration.public:
                raise ConfigError("a public client cannot have secrets", key="app")
            registration.secrets.append(secret)
        return secret

    def add_certificate(
        self, app: str, folder: Path, *, lifetime: float = _TWO_YEARS
    ) -> CertificateFiles:
        """Create an RSA 2048 certificate, register it on ``app``, write it to ``folder``."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        registration = self._app(self.directory, app)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, registration.name)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(seconds=max(lifetime, 60)))
            .sign(key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        sha1 = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t
        sha256 = certificate.fingerprint(hashes.SHA256()).hex().upper()
        ensure_private_dir(folder)
        cert_file, key_file = folder / f"{sha1[:8]}.pem", folder / f"{sha1[:8]}-key.pem"
        write_private_bytes(cert_file, pem)
        write_private_bytes(
            key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        with self.store.transaction() as directory:
            self._app(directory, app).certificates.append(
                AppCertificate(sha1, sha256, pem.decode(), self.store.now() + lifetime)
            )
        return CertificateFiles(cert_file, key_file, sha1, sha256)

    def grant(
        self,
        app: str,
        *,
        delegated: Iterable[str] = (),
        application: Iterable[str] = (),
        admin_consent: bool | None = None,
    ) -> None:
        """Add API permissions to an app; ``admin_consent`` grants (or withdraws) consent."""
        delegated_perms = [str(normalize_permission(p, application=False)) for p in delegated]
        app_perms = [str(normalize_permission(p, application=True)) for p in application]
        with self.store.transaction() as directory:
            registration = self._app(directory, app)
            for perm in delegated_perms:
                if perm not in registration.delegated_permissions:
                    registration.delegated_permissions.append(perm)
            for perm in app_perms:
                if perm not in registration.application_permissions:
                    registration.application_permissions.append(perm)
            if admin_consent is not None:
                registration.admin_consent = admin_consent

    def define_app_roles(self, app: str, values: Iterable[str]) -> None:
        """Add app roles (by value) to an app registration's manifest."""
        with self.store.transaction() as directory:
            registration = self._app(directory, app)
            for value in values:
                if not value or any(c.isspace() for c in value):
                    raise ConfigError(f"not an app role value: {value!r}", key="role")
                if value not in registration.app_roles:
                    registration.app_roles.append(value)

    def assign_app_role(self, app: str, upn: str, value: str) -> None:
        """Assign a user one of the app's roles (Enterprise applications > Users and
        groups); the user's next ID token for the app carries it in ``roles``."""
        with self.store.transaction() as directory:
            registration = self._app(directory, app)
            if value not in registration.app_roles:
                raise ConfigError(f"the app {registration.name} has no role {value!r}", key="role")
            held = registration.role_assignments.setdefault(self._user(directory, upn).oid, [])
            if value not in held:
                held.append(value)

    def emit_group_claims(self, app: str) -> None:
        """Set the app's ``groupMembershipClaims`` (security groups): its ID tokens then
        carry the ``groups`` claim."""
        with self.store.transaction() as directory:
            self._app(directory, app).group_claims = True

    def add_to_group(self, upn: str, group_id: str) -> None:
        """Make the user a member of the group with object id ``group_id``."""
        with self.store.transaction() as directory:
            held = self._user(directory, upn).groups
            if group_id not in held:
                held.append(group_id)

    def set_redirect_uris(self, app: str, uris: Iterable[str]) -> None:
        with self.store.transaction() as directory:
            self._app(directory, app).redirect_uris = list(uris)

    def add_redirect_uri(self, app: str, uri: str) -> list[str]:
        """Register one more redirect URI on ``app`` (kept once); returns them all.

        As Entra: an absolute URI without a fragment; ``http`` only for a loopback host."""
        _check_redirect_uri(uri)
        with self.store.transaction() as directory:
            registration = self._app(directory, app)
            if uri not in registration.redirect_uris:
                registration.redirect_uris.append(uri)
            return list(registration.redirect_uris)

    # --- Exchange -----------------------------------------------------------------------------

    def register_exchange_principal(
        self, app: str, *, object_id: str | None = None
    ) -> ExchangeServicePrincipal:
        """``New-ServicePrincipal``; ``object_id`` defaults to the enterprise app's object id
        (pass the registration's object id to reproduce Microsoft's "wrong Object ID")."""
        with self.store.transaction() as directory:
            registration = self._app(directory, app)
            tenant = self._tenant(directory, registration.tenant_id)
            tenant.exchange_principals = [
                p for p in tenant.exchange_principals if p.app_id != registration.client_id
            ]
            principal = ExchangeServicePrincipal(
                app_id=registration.client_id,
                object_id=object_id or registration.service_principal_id,
                display_name=registration.name,
            )
            tenant.exchange_principals.append(principal)
        return principal

    def add_mailbox_permission(
        self, mailbox: str, principal: str, rights: Iterable[str] = (FULL_ACCESS,)
    ) -> MailboxPermission:
        """``Add-MailboxPermission``: ``principal`` is an app (client id or name, meaning its
        Exchange service principal), a UPN, or an object id."""
        with self.store.transaction() as directory:
            owner = self._user(directory, mailbox)
            tenant = self._tenant(directory, owner.tenant_id)
            principal_id = self._principal_id(directory, tenant, principal)
            entry = MailboxPermission(owner.upn.lower(), principal_id, sorted(set(rights)))
            tenant.mailbox_permissions = [
                p
                for p in tenant.mailbox_permissions
                if (p.mailbox, p.principal_id) != (entry.mailbox, principal_id)
            ]
            tenant.mailbox_permissions.append(entry)
        return entry

    def remove_mailbox_permission(self, mailbox: str, principal: str) -> None:
        with self.store.transaction() as directory:
            owner = self._user(directory, mailbox)
            tenant = self._tenant(directory, owner.tenant_id)
            principal_id = self._principal_id(directory, tenant, principal)
            tenant.mailbox_permissions = [
                p
                for p in tenant.mailbox_permissions
                if (p.mailbox, p.principal_id) != (owner.upn.lower(), principal_id)
            ]

    # --- groups ---------------------------------------------------------------------------

    def create_group(
        self, display_name: str, members: Iterable[str] = (), *, tenant: str | None = None
    ) -> Group:
        """A group of ``members``: UPNs, or the object ids of groups nested in it."""
        with self.store.transaction() as directory:
            owner = self._tenant(directory, tenant)
            group = Group(str(uuid.uuid4()), display_name)
            group.members = [self._member_id(directory, owner, m) for m in members]
            owner.groups.append(group)
        return group

    def add_group_member(self, group_id: str, member: str) -> None:
        """Add a user (UPN) or a group (object id) to the group ``group_id``."""
        with self.store.transaction() as directory:
            for tenant in directory.tenants:
                group = next((g for g in tenant.groups if g.object_id == group_id), None)
                if group is not None:
                    group.members.append(self._member_id(directory, tenant, member))
                    return
        raise ConfigError(f"no group {group_id!r}", key="group")

    @staticmethod
    def _member_id(directory: Directory, tenant: Tenant, member: str) -> str:
        if any(g.object_id == member for g in tenant.groups):
            return member
        user = directory.find_user(member)
        if user is None or user.tenant_id != tenant.tenant_id:
            raise ConfigError(f"no user or group {member!r} in the tenant", key="member")
        return user.oid

    # --- tests and automation -------------------------------------------------------------

    def fail_next(
        self, code: int, *, upn: str | None = None, app: str | None = None, count: int = 1
    ) -> None:
        """Make the next ``count`` token requests for ``upn`` and/or ``app`` fail with
        AADSTS ``code`` (any code in the catalog, e.g. 50076, 53003, 70043, 7000215)."""
        if code not in CATALOG:
            known = ", ".join(str(c) for c in sorted(CATALOG))
            raise ConfigError(f"unknown AADSTS code {code}; known: {known}", key="code")
        with self.store.transaction() as directory:
            client_id = self._app(directory, app).client_id if app else None
            if upn is not None:
                self._user(directory, upn)
            directory.injected_errors.append(InjectedError(code, upn, client_id, max(1, count)))

    def pending_device_codes(self) -> list[DeviceCode]:
        now = self.store.now()
        return [
            d for d in self.directory.device_codes if d.status == "pending" and d.expires_at > now
        ]

    def approve_device_code(
        self, user_code: str, *, upn: str | None = None, approve: bool = True
    ) -> DeviceCode:
        """What the user does on the device-login page, without a browser: sign in as
        ``upn`` (default: the tenant's first user), consent, and approve (or decline)."""
        wanted = user_code.strip().upper()
        with self.store.transaction() as directory:
            flow = next((d for d in directory.device_codes if d.user_code == wanted), None)
            if flow is None or flow.status != "pending":
                raise ConfigError(f"no pending device code {wanted!r}", key="user_code")
            if flow.expires_at <= self.store.now():
                raise ConfigError(f"the device code {wanted!r} has expired", key="user_code")
            tenant = self._tenant(directory, flow.tenant_id)
            if upn is None:
                if not tenant.users:
                    raise ConfigError("the tenant has no users", key="upn")
                user = tenant.users[0]
            else:
                user = self._user(directory, upn)
            if not approve:
                flow.status = "declined"
                return flow
            flow.status, flow.user_oid, flow.mfa = "approved", user.oid, True
            self._consent_for_flow(directory, tenant, flow, user)
        return flow

    def decline_device_code(self, user_code: str) -> DeviceCode:
        return self.approve_device_code(user_code, approve=False)

    def configure(self, **changes: Any) -> Settings:
        """Change lifetimes and pacing (see :class:`Settings` for the names)."""
        allowed = {f.name for f in fields(Settings)}
        unknown = set(changes) - allowed
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}", key="settings")
        for name, value in changes.items():
            _check_setting(name, value)
        with self.store.transaction() as directory:
            for name, value in changes.items():
                setattr(directory.settings, name, value)
            return directory.settings

    def set_tenant_policy(
        self,
        tenant: str | None = None,
        *,
        sign_in_frequency_seconds: float | None = None,
        user_consent_allowed: bool | None = None,
        clear_sign_in_frequency: bool = False,
    ) -> None:
        with self.store.transaction() as directory:
            home = self._tenant(directory, tenant)
            if sign_in_frequency_seconds is not None or clear_sign_in_frequency:
                home.sign_in_frequency_seconds = sign_in_frequency_seconds
            if user_consent_allowed is not None:
                home.user_consent_allowed = user_consent_allowed

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward (expiry tests without sleeping)."""
        with self.store.transaction() as directory:
            directory.settings.clock_offset += seconds

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _consent_for_flow(
        directory: Directory, tenant: Tenant, flow: DeviceCode, user: User
    ) -> None:
        from exoimap.sandbox.identity.scopes import Permission, parse_scopes

        app = directory.find_app(flow.client_id)
        scope = parse_scopes(flow.scope, tenant=tenant.domain)
        if app is None or scope.resource is None or scope.default:
            return
        if not tenant.user_consent_allowed:
            return
        key = f"{user.oid} {app.client_id}"
        perms = {str(Permission(scope.resource.app_id, n)) for n in scope.permissions}
        tenant.user_consents[key] = sorted(set(tenant.user_consents.get(key, [])) | perms)

    @staticmethod
    def _tenant(directory: Directory, name: str | None) -> Tenant:
        if name is None:
            if not directory.tenants:
                raise ConfigError("the sandbox has no tenant yet", key="tenant")
            return directory.tenants[0]
        tenant = directory.tenant(name)
        if tenant is None:
            raise ConfigError(f"no tenant {name!r}", key="tenant")
        return tenant

    @staticmethod
    def _user(directory: Directory, upn: str) -> User:
        user = directory.find_user(upn)
        if user is None:
            raise ConfigError(f"no user {upn!r}", key="upn")
        return user

    @staticmethod
    def _app(directory: Directory, app: str) -> AppRegistration:
        registration = directory.find_app(app)
        if registration is None:
            raise ConfigError(f"no app {app!r}", key="app")
        return registration

    @staticmethod
    def _principal_id(directory: Directory, tenant: Tenant, principal: str) -> str:
        registration = directory.find_app(principal)
        if registration is not None:
            sp = next(
                (p for p in tenant.exchange_principals if p.app_id == registration.client_id),
                None,
            )
            if sp is None:
                raise ConfigError(
                    f"the app {registration.name!r} has no Exchange service principal; "
                    "register it first (New-ServicePrincipal)",
                    key="principal",
                )
            return sp.object_id
        user = directory.find_user(principal)
        if user is not None:
            return user.oid
        try:
            return str(uuid.UUID(principal))
        except ValueError:
            raise ConfigError(f"no app, user or object id {principal!r}", key="principal") from None
