"""The shape of a user's token response, minted in pieces (access token claims, refresh
token, id token, client info): the claims in the sandbox's fixed order, every piece there."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt

from .conftest import IMAP_SCOPE, World

# a v1.0 user access token's payload, in the order the sandbox writes it
USER_ACCESS_CLAIMS = [
    "aud", "iss", "iat", "nbf", "exp", "acr", "aio", "amr", "app_displayname", "appid",
    "appidacr", "idtyp", "ipaddr", "name", "oid", "rh", "scp", "sid", "sub", "tid",
    "unique_name", "upn", "uti", "ver",
]  # fmt: skip


def _payload(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_user_access_token_claims_in_order(world: World) -> None:
    result = world.device_token(world.public(), [IMAP_SCOPE])
    claims = _payload(result["access_token"])
    assert list(claims) == USER_ACCESS_CLAIMS
    assert claims["exp"] - claims["iat"] == result["expires_in"] == result["ext_expires_in"]
    assert claims["scp"] == "IMAP.AccessAsUser.All"
    assert claims["upn"] == claims["unique_name"] == world.user.upn


def test_the_pieces_of_a_user_token_response(world: World) -> None:
    # MSAL always adds openid, profile and offline_access: refresh and id tokens come along
    result = world.device_token(world.public(), [IMAP_SCOPE])
    assert result["token_type"] == "Bearer"
    assert result["refresh_token"]
    assert result["id_token_claims"]["oid"] == world.user.oid
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info == {"uid": world.user.oid, "utid": world.idp.tenant_id}
