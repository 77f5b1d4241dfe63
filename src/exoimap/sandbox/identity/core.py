"""What every flow shares: resolving tenants and apps, consent, injected errors, and minting
the token response. Kept free of HTTP so the rules can be read (and tested) in one place.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exoimap.sandbox.identity.aadsts import AadstsError
from exoimap.sandbox.identity.model import AppRegistration, Tenant, User
from exoimap.sandbox.identity.scopes import Permission, ScopeRequest
from exoimap.sandbox.identity.store import DirectoryStore
from exoimap.sandbox.identity.tokens import SigningKey, client_info, pairwise_subject

__all__ = ["MULTI_TENANT_SEGMENTS", "AuthCode", "IdentityCore", "UserGrant"]

MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations", "consumers"})
#: Groups an ID token (a JWT) names at most; with more, Entra points to Graph instead.
GROUPS_IN_TOKEN = 200
GRAPH = "https://graph.microsoft.com"


@dataclass
class AuthCode:
    """An authorization code waiting to be redeemed (kept in memory: it lives minutes)."""

    client_id: str
    tenant_id: str
    user_oid: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None
    expires_at: float
    mfa: bool
    auth_time: float
    redeemed: bool = False


@dataclass(frozen=True)
class UserGrant:
    """Everything needed to mint a user's tokens."""

    tenant: Tenant
    app: AppRegistration
    user: User
    scope: ScopeRequest
    mfa: bool
    auth_time: float
    appidacr: str
    nonce: str | None = None
    want_client_info: bool = True


@dataclass
class _Memory:
    codes: dict[str, AuthCode] = field(default_factory=dict)


class IdentityCore:
    """The identity platform's rules over one :class:`DirectoryStore` and signing key."""

    def __init__(self, store: DirectoryStore, key: SigningKey) -> None:
        self.store = store
        self.key = key
        self._memory = _Memory()
        self._lock = threading.Lock()

    # --- look-ups ---------------------------------------------------------------------------

    def resolve_tenant(self, segment: str) -> Tenant | None:
        """None for ``common``/``organizations``; AADSTS90002 for an unknown tenant."""
        if segment.lower() in MULTI_TENANT_SEGMENTS:
            if segment.lower() == "consumers":
                raise AadstsError(90002, tenant=segment)
            return None
        tenant = self.store.current().tenant(segment)
        if tenant is None:
            raise AadstsError(90002, tenant=segment)
        return tenant

    def resolve_app(self, client_id: str | None, tenant: Tenant | None) -> AppRegistration:
        if not client_id:
            raise AadstsError(900144, param="client_id")
        directory = self.store.current()
        app = next((a for t in directory.tenants for a in t.apps if a.client_id == client_id), None)
        if app is None or (tenant is not None and app.tenant_id != tenant.tenant_id):
            where = tenant.tenant_id if tenant else "common"
            raise AadstsError(700016, client_id=client_id, tenant=where)
        return app

    def tenant_of(self, app: AppRegistration) -> Tenant:
        tenant = self.store.current().tenant_by_id(app.tenant_id)
        assert tenant is not None, "an app always belongs to a tenant"
        return tenant

    # --- consent ----------------------------------------------------------------------------

    @staticmethod
    def consented(tenant: Tenant, app: AppRegistration, user: User) -> set[str]:
        """Delegated permissions (``<resource>/<name>``) the user may use through ``app``."""
        granted = set(tenant.user_consents.get(f"{user.oid} {app.client_id}", []))
        if app.admin_consent:
            granted |= set(app.delegated_permissions)
        return granted

    def missing_consent(
        self, tenant: Tenant, app: AppRegistration, user: User, scope: ScopeRequest
    ) -> list[str]:
        """Requested delegated permissions that nobody consented to yet."""
        if scope.resource is None:
            return []
        have = self.consented(tenant, app, user)
        if scope.default:
            prefix = scope.resource.app_id + "/"
            if any(p.startswith(prefix) for p in have):
                return []
            return [str(Permission(scope.resource.app_id, ".default"))]
        wanted = [str(Permission(scope.resource.app_id, n)) for n in scope.permissions]
        return [p for p in wanted if p not in have]

    def record_consent(
        self, tenant_id: str, client_id: str, user_oid: str, perms: list[str]
    ) -> None:
        """The user clicked Accept: remember their consent for these permissions."""
        perms = [p for p in perms if not p.endswith("/.default")]
        with self.store.transaction() as directory:
            tenant = directory.tenant_by_id(tenant_id)
            if tenant is None:
                return
            key = f"{user_oid} {client_id}"
            tenant.user_consents[key] = sorted(set(tenant.user_consents.get(key, [])) | set(perms))

    # --- injected errors --------------------------------------------------------------------

    def raise_injected(self, app: AppRegistration, user: User | None) -> None:
        """Fail with an injected AADSTS code when one matches this app and user."""
        directory = self.store.current()
        if not directory.injected_errors:
            return
        upn = user.upn.lower() if user else None
        with self.store.transaction() as directory:
            for index, entry in enumerate(directory.injected_errors):
                if entry.client_id not in (None, app.client_id):
                    continue
                if entry.upn is not None and entry.upn.lower() != upn:
                    continue
                entry.remaining -= 1
                if entry.remaining <= 0:
                    del directory.injected_errors[index]
                code = entry.code
                break
            else:
                return
        raise _injected(code, app, user)

    # --- authorization codes ----------------------------------------------------------------

    def new_code(self, code: AuthCode) -> str:
        value = "1.A" + secrets.token_urlsafe(48)
        with self._lock:
            now = self.store.now()
            for stale in [k for k, v in self._memory.codes.items() if v.expires_at < now - 3600]:
                del self._memory.codes[stale]
            self._memory.codes[value] = code
        return value

    def take_code(self, value: str) -> AuthCode | None:
        with self._lock:
            return self._memory.codes.get(value)

    def claim_code(self, code: AuthCode) -> bool:
        """Mark a code redeemed; False if it already was (one redemption, even when racing).
        A failed redemption also uses the code up, so a wrong verifier cannot be retried."""
        with self._lock:
            if code.redeemed:
                return False
            code.redeemed = True
            return True

    # --- minting ----------------------------------------------------------------------------

    def user_token_response(self, grant: UserGrant) -> dict[str, Any]:
        """Check policy (CA, MFA, consent) and mint the tokens for a user flow."""
        self._enforce_user_policy(grant)
        user, app, tenant, scope = grant.user, grant.app, grant.tenant, grant.scope
        granted = self._granted(tenant, app, user, scope)
        settings = self.store.current().settings
        now = int(self.store.now())
        lifetime = settings.access_token_lifetime
        claims = self._user_access_claims(grant, granted, now, lifetime)
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope.echo(granted),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.key.sign(claims, header_nonce=True),
        }
        if "offline_access" in scope.oidc:
            response["refresh_token"] = self._refresh_token(grant, now)
        if "openid" in scope.oidc:
            response["id_token"] = self._id_token(grant, now, settings.id_token_lifetime)
        if grant.want_client_info:
            response["client_info"] = client_info(user.oid, tenant.tenant_id)
        return response

    def _enforce_user_policy(self, grant: UserGrant) -> None:
        """Raise the AADSTS error of the first policy the grant fails: conditional access,
        MFA, a scope no user can be given, consent."""
        user, app, scope = grant.user, grant.app, grant.scope
        if user.blocked_by_conditional_access:
            raise AadstsError(53003)
        if user.mfa_required and not grant.mfa:
            raise AadstsError(50076, resource=scope.resource.app_id if scope.resource else "")
        scope.require_delegated()
        if self.missing_consent(grant.tenant, app, user, scope):
            raise AadstsError(65001, client_id=app.client_id, app_name=app.name)

    def _user_access_claims(
        self, grant: UserGrant, granted: tuple[str, ...], now: int, lifetime: int
    ) -> dict[str, Any]:
        user, app, tenant = grant.user, grant.app, grant.tenant
        return {
            "aud": grant.scope.audience or "00000003-0000-0000-c000-000000000000",
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "acr": "1",
            "aio": secrets.token_urlsafe(24),
            "amr": ["pwd", "mfa"] if grant.mfa else ["pwd"],
            "app_displayname": app.name,
            "appid": app.client_id,
            "appidacr": grant.appidacr,
            "idtyp": "user",
            "ipaddr": "127.0.0.1",
            "name": user.display_name,
            "oid": user.oid,
            "rh": "0.A" + secrets.token_urlsafe(16),
            "scp": " ".join(granted),
            "sid": pairwise_subject("sid", user.oid, str(grant.auth_time)),
            "sub": pairwise_subject(user.oid, app.client_id),
            "tid": tenant.tenant_id,
            "unique_name": user.upn,
            "upn": user.upn,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }

    def _refresh_token(self, grant: UserGrant, now: int) -> str:
        return self.key.mint_refresh_token(
            {
                "oid": grant.user.oid,
                "tid": grant.tenant.tenant_id,
                "cid": grant.app.client_id,
                "scp": " ".join(sorted(grant.scope.oidc)),
                "iat": now,
                "auth_time": int(grant.auth_time),
                "mfa": grant.mfa,
            }
        )

    def app_token_response(
        self, tenant: Tenant, app: AppRegistration, scope: ScopeRequest, appidacr: str
    ) -> dict[str, Any]:
        """Mint an app-only token (client credentials)."""
        if scope.resource is None or not scope.default:
            raise AadstsError(70011, scope=scope.echo(scope.permissions) or "openid")
        prefix = scope.resource.app_id + "/"
        roles = sorted(
            p[len(prefix) :]
            for p in app.application_permissions
            if p.startswith(prefix) and app.admin_consent
        )
        now = int(self.store.now())
        lifetime = self.store.current().settings.access_token_lifetime
        claims: dict[str, Any] = {
            "aud": scope.audience,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": secrets.token_urlsafe(24),
            "app_displayname": app.name,
            "appid": app.client_id,
            "appidacr": appidacr,
            "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
            "idtyp": "app",
            "oid": app.service_principal_id,
            "rh": "0.A" + secrets.token_urlsafe(16),
            "sub": app.service_principal_id,
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if roles:
            claims["roles"] = roles
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.key.sign(claims, header_nonce=True),
        }

    def _granted(
        self, tenant: Tenant, app: AppRegistration, user: User, scope: ScopeRequest
    ) -> tuple[str, ...]:
        if scope.resource is None:
            return ()
        if not scope.default:
            return scope.permissions
        prefix = scope.resource.app_id + "/"
        have = self.consented(tenant, app, user)
        return tuple(sorted(p[len(prefix) :] for p in have if p.startswith(prefix)))

    def _id_token(self, grant: UserGrant, now: int, lifetime: int) -> str:
        user, tenant = grant.user, grant.tenant
        claims: dict[str, Any] = {
            "aud": grant.app.client_id,
            "iss": f"{self.issuer_base}/{tenant.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "name": user.display_name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "rh": "0.A" + secrets.token_urlsafe(16),
            "sid": pairwise_subject("sid", user.oid, str(grant.auth_time)),
            "sub": pairwise_subject(user.oid, grant.app.client_id),
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        roles = grant.app.role_assignments.get(user.oid)
        if roles:
            claims["roles"] = list(roles)
        if grant.app.group_claims and user.groups:
            if len(user.groups) > GROUPS_IN_TOKEN:  # overage: a pointer to Graph instead
                claims["_claim_names"] = {"groups": "src1"}
                claims["_claim_sources"] = {
                    "src1": {"endpoint": f"{GRAPH}/v1.0/users/{user.oid}/getMemberObjects"}
                }
            else:
                claims["groups"] = list(user.groups)
        return self.key.sign(claims)

    #: Where the server is reachable (``https://127.0.0.1:PORT``), set by the server.
    issuer_base: str = "https://login.microsoftonline.com"


def _injected(code: int, app: AppRegistration, user: User | None) -> AadstsError:
    """The error an admin injected, with the placeholders its text needs."""
    fields: Mapping[str, Any] = {
        "client_id": app.client_id,
        "app_name": app.name,
        "tenant": app.tenant_id,
        "upn": user.upn if user else "",
        "resource": "00000002-0000-0ff1-ce00-000000000000",
        "issued": "(sandbox)",
        "valid_from": "(sandbox)",
        "inactive": "90.00:00:00",
        "max_age": "(sandbox policy)",
        "scope": "(sandbox)",
        "detail": "(injected by the sandbox admin)",
    }
    return AadstsError(code, **fields)
