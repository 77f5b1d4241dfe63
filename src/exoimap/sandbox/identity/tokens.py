"""Token minting and verification: v1.0 access tokens as Exchange Online sees them, v2.0 id
tokens as MSAL expects them, opaque-looking refresh tokens, and the JWKS.

Access tokens carry a header ``nonce`` like Microsoft's first-party resource tokens; the
signature covers the header exactly as sent, so :class:`AccessTokenVerifier` verifies them
with the sandbox's key (a third party checking real EXO tokens could not).

Refresh tokens are self-contained (signed, with the user, app, scope, first sign-in time and
MFA state inside), so they survive a restart of ``sandbox up``; revocation is checked
against the user's ``tokens_valid_from``, as Entra does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from exoimap.errors import AuthError, ConfigError
from exoimap.sandbox.state import ensure_private_dir, write_private_bytes
from exoimap.secrets import Secret

__all__ = [
    "REFRESH_AUDIENCE",
    "AccessTokenClaims",
    "AccessTokenVerifier",
    "InvalidAccessToken",
    "SigningKey",
    "b64url",
    "client_info",
]

REFRESH_AUDIENCE = "urn:exoimap:sandbox:refresh-token"
_RT_PREFIX = "0.A"


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def client_info(oid: str, tenant_id: str) -> str:
    """MSAL's ``client_info``: base64url JSON ``{"uid": oid, "utid": tenant}``."""
    return b64url(json.dumps({"uid": oid, "utid": tenant_id}, separators=(",", ":")).encode())


class InvalidAccessToken(AuthError):
    """An access token failed verification; ``reason`` says why (no token text inside)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the access token is not valid: {reason}")


@dataclass(frozen=True)
class SigningKey:
    """The tenant's RS256 signing key and its self-signed certificate (for ``x5c``)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        """Like Microsoft's: base64url SHA-1 of the certificate (equal to ``x5t``)."""
        return b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1

    @classmethod
    def load_or_create(cls, folder: Path) -> SigningKey:
        """Load ``signing-key.pem``/``signing-cert.pem`` from ``folder`` or create them."""
        ensure_private_dir(folder)
        key_path, cert_path = folder / "signing-key.pem", folder / "signing-cert.pem"
        if key_path.exists() and cert_path.exists():
            try:
                key = serialization.load_pem_private_key(key_path.read_bytes(), None)
                certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"unreadable signing key: {type(exc).__name__}") from None
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ConfigError("the signing key is not an RSA key", path=str(key_path))
            return cls(key, certificate)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.sandbox.exoimap")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        write_private_bytes(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_private_bytes(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        return cls(key, certificate)

    def jwk(self, issuer: str | None = None) -> dict[str, Any]:
        """The public key as a JWKS entry (``kty``, ``use``, ``kid``, ``x5t``, ``n``, ``e``,
        ``x5c`` and, for v2.0 key sets, ``issuer``)."""
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        entry: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
        }
        if issuer:
            entry["issuer"] = issuer
        return entry

    # --- minting ----------------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any], *, header_nonce: bool = False) -> str:
        """Sign ``claims`` with RS256; ``header_nonce`` adds EXO's header ``nonce``."""
        headers: dict[str, Any] = {"typ": "JWT"}
        if header_nonce:  # EXO's header order: typ, nonce, alg, x5t, kid
            headers["nonce"] = b64url(secrets.token_bytes(32))
            headers["x5t"] = self.kid
        headers["kid"] = self.kid
        return jwt.encode(dict(claims), self.private_key, algorithm="RS256", headers=headers)

    def mint_refresh_token(self, payload: Mapping[str, Any]) -> str:
        """An opaque-looking refresh token carrying ``payload`` (signed, not encrypted)."""
        claims = dict(payload, aud=REFRESH_AUDIENCE, jti=str(uuid.uuid4()))
        return _RT_PREFIX + self.sign(claims)

    def read_refresh_token(self, token: str) -> dict[str, Any] | None:
        """The payload of a refresh token we minted, or None if it is not one of ours."""
        if not token.startswith(_RT_PREFIX):
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token[len(_RT_PREFIX) :],
                self.private_key.public_key(),
                algorithms=["RS256"],
                audience=REFRESH_AUDIENCE,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        return claims


@dataclass(frozen=True)
class AccessTokenClaims:
    """What the IMAP half needs from a verified access token."""

    audience: str
    tenant_id: str
    app_id: str
    object_id: str  # the user's oid, or the service principal's object id for app-only
    upn: str | None  # None for app-only tokens
    scopes: frozenset[str]  # ``scp`` split on spaces (delegated)
    roles: frozenset[str]  # ``roles`` (app-only)
    expires_at: float
    app_only: bool
    claims: Mapping[str, Any]


class AccessTokenVerifier:
    """Verifies sandbox access tokens: RS256 signature against the sandbox key, ``exp``
    (against the caller's clock) and, when given, ``aud``.

    Example::

        verifier = AccessTokenVerifier(SigningKey.load_or_create(state_dir / "keys"))
        claims = verifier.verify(token, audiences=EXCHANGE_AUDIENCES)
    """

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def verify(
        self,
        token: str | Secret[str],
        *,
        audiences: Iterable[str] | None = None,
        now: float | None = None,
    ) -> AccessTokenClaims:
        """Return the claims of a valid token; raise :class:`InvalidAccessToken` otherwise."""
        text = token.reveal() if isinstance(token, Secret) else token
        try:
            header = jwt.get_unverified_header(text)
            claims: dict[str, Any] = jwt.decode(
                text,
                self._key.private_key.public_key(),
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise InvalidAccessToken("bad signature or malformed token") from None
        if header.get("kid") != self._key.kid or claims.get("ver") != "1.0":
            raise InvalidAccessToken("not a sandbox access token")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise InvalidAccessToken("no expiry")
        current = dt.datetime.now(dt.UTC).timestamp() if now is None else now
        if exp <= current:
            raise InvalidAccessToken("expired")
        audience = str(claims.get("aud", ""))
        if audiences is not None and audience not in set(audiences):
            raise InvalidAccessToken(f"wrong audience {audience!r}")
        roles = claims.get("roles") or []
        return AccessTokenClaims(
            audience=audience,
            tenant_id=str(claims.get("tid", "")),
            app_id=str(claims.get("appid", "")),
            object_id=str(claims.get("oid", "")),
            upn=claims.get("upn"),
            scopes=frozenset(str(claims.get("scp", "")).split()),
            roles=frozenset(str(r) for r in roles),
            expires_at=float(exp),
            app_only=claims.get("idtyp") == "app",
            claims=claims,
        )


def pairwise_subject(*parts: str) -> str:
    """A stable ``sub`` value per (user, app), like Entra's pairwise subjects."""
    return b64url(hashlib.sha256("|".join(parts).encode()).digest())
