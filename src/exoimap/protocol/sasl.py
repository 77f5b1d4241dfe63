"""SASL messages for IMAP AUTHENTICATE: XOAUTH2, OAUTHBEARER (RFC 7628) and PLAIN.

Client functions build the raw (not base64) initial response as ``Secret[bytes]``;
:class:`~exoimap.protocol.commands.Authenticate` base64-encodes it on the wire. Server
functions (for the sandbox) decode what a client sent and raise
:class:`~exoimap.errors.RemoteProtocolError` when it is malformed.

XOAUTH2 follows Microsoft's documented encoding exactly:
``user=<address>^Aauth=Bearer <token>^A^A`` (``^A`` is 0x01).
"""

from __future__ import annotations

import json

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol.values import value_class
from exoimap.secrets import Secret

__all__ = [
    "OAUTHBEARER_ERROR_ANSWER",
    "OAuthBearer",
    "Plain",
    "XOAuth2",
    "oauthbearer",
    "oauthbearer_error_challenge",
    "parse_oauthbearer",
    "parse_plain",
    "parse_xoauth2",
    "plain",
    "xoauth2",
]

#: What a client answers to an OAUTHBEARER error challenge (RFC 7628 section 3.2.3).
OAUTHBEARER_ERROR_ANSWER = Secret(b"\x01")


def _check(value: str, what: str, forbidden: str) -> bytes:
    if any(ch in value for ch in forbidden):
        raise LocalProtocolError(f"{what} contains a character SASL cannot carry")
    return value.encode("utf-8")


def xoauth2(user: str, token: Secret[str]) -> Secret[bytes]:
    """``user=<user>\\x01auth=Bearer <token>\\x01\\x01`` (Microsoft's and Google's XOAUTH2)."""
    u = _check(user, "the user name", "\x01")
    t = _check(token.reveal(), "the token", "\x01")
    return Secret(b"user=" + u + b"\x01auth=Bearer " + t + b"\x01\x01")


def _gs2_name(user: str) -> bytes:
    # RFC 5801: "," and "=" in the authzid are escaped as =2C and =3D.
    return _check(user, "the user name", "\x01").replace(b"=", b"=3D").replace(b",", b"=2C")


def oauthbearer(
    user: str, token: Secret[str], *, host: str | None = None, port: int | None = None
) -> Secret[bytes]:
    """RFC 7628: ``n,a=<user>,\\x01host=..\\x01port=..\\x01auth=Bearer <token>\\x01\\x01``."""
    out = b"n,a=" + _gs2_name(user) + b",\x01"
    if host is not None:
        out += b"host=" + _check(host, "the host", "\x01") + b"\x01"
    if port is not None:
        out += b"port=%d\x01" % port
    out += b"auth=Bearer " + _check(token.reveal(), "the token", "\x01") + b"\x01\x01"
    return Secret(out)


def plain(user: str, password: Secret[str], *, authzid: str = "") -> Secret[bytes]:
    """RFC 4616: ``authzid\\0user\\0password``."""
    z = _check(authzid, "the authorization id", "\x00")
    u = _check(user, "the user name", "\x00")
    p = _check(password.reveal(), "the password", "\x00")
    return Secret(z + b"\x00" + u + b"\x00" + p)


def oauthbearer_error_challenge(
    status: str, scope: str | None = None, openid_configuration: str | None = None
) -> bytes:
    """The JSON error a server sends (base64-encoded in ``+``) when a bearer token fails."""
    body: dict[str, str] = {"status": status}
    if scope is not None:
        body["scope"] = scope
    if openid_configuration is not None:
        body["openid-configuration"] = openid_configuration
    return json.dumps(body, separators=(",", ":")).encode()


# --- server side ---------------------------------------------------------------------------


@value_class
class XOAuth2:
    user: str
    token: Secret[str]


@value_class
class OAuthBearer:
    user: str | None
    token: Secret[str]
    host: str | None = None
    port: int | None = None


@value_class
class Plain:
    authzid: str
    user: str
    password: Secret[str]


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{what} is not UTF-8") from exc


def _bearer(kv: dict[str, bytes]) -> Secret[str]:
    auth = kv.get("auth")
    if auth is None or auth[:7].lower() != b"bearer ":
        raise RemoteProtocolError("no 'auth=Bearer <token>' in the SASL message")
    token = auth[7:].strip()
    if not token:
        raise RemoteProtocolError("an empty bearer token")
    return Secret(_text(token, "the token"))


def _pairs(fields: list[bytes]) -> dict[str, bytes]:
    kv: dict[str, bytes] = {}
    for f in fields:
        if not f:
            continue
        key, sep, value = f.partition(b"=")
        if not sep:
            raise RemoteProtocolError("a SASL field without '='")
        kv[_text(key, "a SASL key").lower()] = value
    return kv


def parse_xoauth2(data: bytes) -> XOAuth2:
    if not data.endswith(b"\x01\x01"):
        raise RemoteProtocolError("an XOAUTH2 message must end with two ^A")
    kv = _pairs(data[:-2].split(b"\x01"))
    user = kv.get("user")
    if not user:
        raise RemoteProtocolError("no 'user=' in the XOAUTH2 message")
    return XOAuth2(_text(user, "the user name"), _bearer(kv))


def parse_oauthbearer(data: bytes) -> OAuthBearer:
    header, sep, rest = data.partition(b"\x01")
    if not sep or (not rest.endswith(b"\x01\x01") and rest != b"\x01"):
        raise RemoteProtocolError("a malformed OAUTHBEARER message")
    gs2 = header.split(b",")
    if len(gs2) < 3 or (gs2[0] not in (b"n", b"y") and not gs2[0].startswith(b"p=")):
        raise RemoteProtocolError("a malformed OAUTHBEARER GS2 header")
    user: str | None = None
    if gs2[1].startswith(b"a="):
        user = _text(gs2[1][2:], "the user name").replace("=2C", ",").replace("=3D", "=")
    kv = _pairs(rest[:-2].split(b"\x01"))
    port: int | None = None
    if "port" in kv:
        if not kv["port"].isdigit() or len(kv["port"]) > 5:
            raise RemoteProtocolError("an invalid port in OAUTHBEARER")
        port = int(kv["port"])
    host = _text(kv["host"], "the host") if "host" in kv else None
    return OAuthBearer(user, _bearer(kv), host, port)


def parse_plain(data: bytes) -> Plain:
    fields = data.split(b"\x00")
    if len(fields) != 3 or not fields[1]:
        raise RemoteProtocolError("a malformed PLAIN message")
    return Plain(
        _text(fields[0], "the authorization id"),
        _text(fields[1], "the user name"),
        Secret(_text(fields[2], "the password")),
    )
