"""Client credentials with real MSAL: client secret, certificate (both header forms), errors."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exoimap.sandbox.identity import EXCHANGE_APP_ID, AppRegistration, CertificateFiles

from .conftest import APP_ONLY_SCOPE, World, aadsts


class RecordingSession(requests.Session):
    """A real requests session that also keeps the form bodies it posted."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: list[dict[str, str]] = []

    def post(self, url: Any, data: Any = None, **kwargs: Any) -> requests.Response:
        if isinstance(data, dict):
            self.posted.append(
                {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in data.items()}
            )
        elif isinstance(data, str):
            self.posted.append(dict(parse_qsl(data)))
        return super().post(url, data=data, **kwargs)


def _daemon(world: World, **kwargs: Any) -> AppRegistration:
    kwargs.setdefault("application", ["https://outlook.office365.com/IMAP.AccessAsApp"])
    kwargs.setdefault("admin_consent", True)
    return world.new_app(public=False, redirect_uris=[], **kwargs)


def _certificate(world: World, app: AppRegistration, tmp_path: Path) -> CertificateFiles:
    return world.idp.admin.add_certificate(app.client_id, tmp_path / "certs")


def test_client_secret(world: World) -> None:
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name)
    client = world.confidential(app.client_id, secret.value)
    result = client.acquire_token_for_client([APP_ONLY_SCOPE])
    assert "access_token" in result, result
    assert "refresh_token" not in result
    assert "id_token" not in result
    claims = world.idp.sandbox.verifier.verify(result["access_token"])
    assert claims.app_only
    assert claims.audience == "https://outlook.office365.com"
    assert claims.roles == {"IMAP.AccessAsApp"}
    assert claims.object_id == app.service_principal_id
    assert claims.upn is None
    raw = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert raw["appidacr"] == "1"
    assert raw["idtyp"] == "app"
    assert "scp" not in raw


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        ("https://ps.outlook.com/.default", "https://ps.outlook.com"),
        (f"{EXCHANGE_APP_ID}/.default", EXCHANGE_APP_ID),
    ],
)
def test_other_exchange_resource_forms(world: World, scope: str, audience: str) -> None:
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name)
    result = world.confidential(app.client_id, secret.value).acquire_token_for_client([scope])
    assert world.idp.sandbox.verifier.verify(result["access_token"]).audience == audience


def test_without_admin_consent_the_token_has_no_roles(world: World) -> None:
    app = _daemon(world, admin_consent=False)
    secret = world.idp.admin.add_client_secret(app.name)
    result = world.confidential(app.client_id, secret.value).acquire_token_for_client(
        [APP_ONLY_SCOPE]
    )
    assert world.idp.sandbox.verifier.verify(result["access_token"]).roles == frozenset()


def test_bad_secret_is_7000215_with_http_401(world: World) -> None:
    app = _daemon(world)
    world.idp.admin.add_client_secret(app.name)
    result = world.confidential(app.client_id, "wrong-secret").acquire_token_for_client(
        [APP_ONLY_SCOPE]
    )
    assert aadsts(result) == 7000215
    assert result["error"] == "invalid_client"
    raw = world.http.post(
        f"{world.idp.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": "wrong",
            "scope": APP_ONLY_SCOPE,
        },
    )
    assert raw.status_code == 401
    body = raw.json()
    assert set(body) >= {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert raw.headers["cache-control"] == "no-store, no-cache"


def test_expired_secret_is_7000222(world: World) -> None:
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name, lifetime=-60)
    result = world.confidential(app.client_id, secret.value).acquire_token_for_client(
        [APP_ONLY_SCOPE]
    )
    assert aadsts(result) == 7000222


def test_certificate_rs256_x5t(world: World, tmp_path: Path) -> None:
    app = _daemon(world)
    files = _certificate(world, app, tmp_path)
    session = RecordingSession()
    session.verify, session.trust_env = str(world.idp.ca_file), False
    credential = {
        "private_key": files.private_key_file.read_text(),
        "thumbprint": files.thumbprint_sha1,
    }
    client = _with_session(world, app.client_id, credential, session)
    result = client.acquire_token_for_client([APP_ONLY_SCOPE])
    assert "access_token" in result, result
    header = jwt.get_unverified_header(session.posted[-1]["client_assertion"])
    assert header["alg"] == "RS256"
    assert "x5t" in header
    raw = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert raw["appidacr"] == "2"


def test_certificate_ps256_x5t_s256(world: World, tmp_path: Path) -> None:
    app = _daemon(world)
    files = _certificate(world, app, tmp_path)
    session = RecordingSession()
    session.verify, session.trust_env = str(world.idp.ca_file), False
    credential = {
        "private_key": files.private_key_file.read_text(),
        "public_certificate": files.certificate_file.read_text(),
    }
    client = _with_session(world, app.client_id, credential, session)
    result = client.acquire_token_for_client([APP_ONLY_SCOPE])
    assert "access_token" in result, result
    header = jwt.get_unverified_header(session.posted[-1]["client_assertion"])
    assert header["alg"] == "PS256"
    assert "x5t#S256" in header


def test_unregistered_certificate_is_700027(world: World, tmp_path: Path) -> None:
    app = _daemon(world)
    other = _daemon(world)
    files = _certificate(world, other, tmp_path)  # registered on another app
    credential = {
        "private_key": files.private_key_file.read_text(),
        "thumbprint": files.thumbprint_sha1,
    }
    result = world.confidential(app.client_id, credential).acquire_token_for_client(
        [APP_ONLY_SCOPE]
    )
    assert aadsts(result) == 700027
    assert result["error"] == "invalid_client"


def test_assertion_signed_by_the_wrong_key_is_700027(world: World, tmp_path: Path) -> None:
    app = _daemon(world)
    files = _certificate(world, app, tmp_path)
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = wrong_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credential = {"private_key": pem, "thumbprint": files.thumbprint_sha1}
    result = world.confidential(app.client_id, credential).acquire_token_for_client(
        [APP_ONLY_SCOPE]
    )
    assert aadsts(result) == 700027


def test_client_credentials_on_common_is_9001023(world: World) -> None:
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name)
    client = world.confidential(
        app.client_id, secret.value, authority=f"{world.idp.base_url}/common"
    )
    with pytest.warns(DeprecationWarning, match="/common"):  # MSAL warns, Entra refuses
        result = client.acquire_token_for_client([APP_ONLY_SCOPE])
    assert aadsts(result) == 9001023


def test_unknown_app_is_700016(world: World) -> None:
    client = world.confidential("11111111-2222-3333-4444-555555555555", "whatever")
    result = client.acquire_token_for_client([APP_ONLY_SCOPE])
    assert aadsts(result) == 700016
    assert result["error"] == "unauthorized_client"


def test_unknown_tenant_is_90002(world: World) -> None:
    response = world.http.get(
        f"{world.idp.base_url}/nope.example.com/v2.0/.well-known/openid-configuration"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tenant"
    assert response.json()["error_codes"] == [90002]
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        world.confidential("x", "y", authority=f"{world.idp.base_url}/nope.example.com")
    token = world.http.post(
        f"{world.idp.base_url}/nope.example.com/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "x", "scope": APP_ONLY_SCOPE},
    )
    assert token.status_code == 400
    assert token.json()["error_codes"] == [90002]


@pytest.mark.parametrize(
    "scope",
    ["https://outlook.office365.com/IMAP.AccessAsApp", "https://outlook.office365.com/Nope"],
)
def test_invalid_scope_is_70011(world: World, scope: str) -> None:
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name)
    result = world.confidential(app.client_id, secret.value).acquire_token_for_client([scope])
    assert aadsts(result) == 70011
    assert result["error"] == "invalid_scope"


def test_unknown_resource_is_500011(world: World) -> None:
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name)
    result = world.confidential(app.client_id, secret.value).acquire_token_for_client(
        ["https://example.com/.default"]
    )
    assert aadsts(result) == 500011


def test_discovery_and_jwks_verify_a_token(world: World) -> None:
    doc = world.http.get(f"{world.idp.authority}/v2.0/.well-known/openid-configuration").json()
    assert doc["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode")
    assert doc["issuer"] == f"{world.idp.authority}/v2.0"
    common = world.http.get(f"{world.idp.base_url}/common/v2.0/.well-known/openid-configuration")
    assert common.json()["issuer"] == f"{world.idp.base_url}/{{tenantid}}/v2.0"
    assert common.headers["cache-control"] == "max-age=86400, private"
    jwks = world.http.get(doc["jwks_uri"]).json()
    app = _daemon(world)
    secret = world.idp.admin.add_client_secret(app.name)
    token = world.confidential(app.client_id, secret.value).acquire_token_for_client(
        [APP_ONLY_SCOPE]
    )["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [k for k in jwks["keys"] if k["kid"] == kid]
    public = jwt.PyJWK.from_json(json.dumps(key))
    claims = jwt.decode(
        token, public, algorithms=["RS256"], audience="https://outlook.office365.com"
    )
    assert claims["appid"] == app.client_id


def _with_session(world: World, client_id: str, credential: Any, session: requests.Session) -> Any:
    import msal

    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=world.idp.authority,
        http_client=session,
        instance_discovery=False,
    )


def _assertion(files: CertificateFiles, client_id: str, audience: str, **extra: Any) -> str:
    key = serialization.load_pem_private_key(files.private_key_file.read_bytes(), None)
    now = int(time.time())
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4())}
    claims |= {"nbf": now, "iat": now, "exp": now + 600, **extra}
    x5t = base64.urlsafe_b64encode(bytes.fromhex(files.thumbprint_sha1)).decode().rstrip("=")
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})


def test_hand_made_assertions(world: World, tmp_path: Path) -> None:
    app = _daemon(world)
    files = _certificate(world, app, tmp_path)
    endpoint = f"{world.idp.authority}/oauth2/v2.0/token"

    def post(assertion: str) -> requests.Response:
        return world.http.post(
            endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": app.client_id,
                "scope": APP_ONLY_SCOPE,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )

    by_domain = f"{world.idp.base_url}/{world.idp.tenant_domain}/oauth2/v2.0/token"
    assert post(_assertion(files, app.client_id, by_domain)).status_code == 200
    wrong_aud = post(_assertion(files, app.client_id, "https://example.com/token"))
    assert wrong_aud.status_code == 401
    assert wrong_aud.json()["error_codes"] == [700027]
    expired = post(_assertion(files, app.client_id, endpoint, exp=int(time.time()) - 3600))
    assert expired.json()["error_codes"] == [700024]
    other_issuer = post(_assertion(files, app.client_id, endpoint, iss="someone-else"))
    assert other_issuer.json()["error_codes"] == [700027]
