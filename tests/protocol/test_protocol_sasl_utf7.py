"""SASL messages (Microsoft's documented XOAUTH2 example, RFC 7628 OAUTHBEARER, PLAIN) and
modified UTF-7 mailbox names."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import Authenticate, decode_mailbox, encode_mailbox, serialize_command
from exoimap.protocol.sasl import (
    OAUTHBEARER_ERROR_ANSWER,
    oauthbearer,
    oauthbearer_error_challenge,
    parse_oauthbearer,
    parse_plain,
    parse_xoauth2,
    plain,
    xoauth2,
)
from exoimap.protocol.utf7 import decode_mailbox_lenient
from exoimap.secrets import Secret

MS_USER = "test@contoso.onmicrosoft.com"
MS_TOKEN = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"
MS_B64 = (
    "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUw"
    "YmpMQldaV0NjbFJDM0VvQUEBAQ=="
)


def test_xoauth2_matches_microsofts_documented_example() -> None:
    raw = xoauth2(MS_USER, Secret(MS_TOKEN))
    assert base64.b64encode(raw.reveal()).decode() == MS_B64
    pieces = serialize_command("A01", Authenticate("XOAUTH2", raw))
    assert pieces == [f"A01 AUTHENTICATE XOAUTH2 {MS_B64}\r\n".encode()]
    parsed = parse_xoauth2(base64.b64decode(MS_B64))
    assert parsed.user == MS_USER
    assert parsed.token.reveal() == MS_TOKEN
    assert MS_TOKEN not in repr(parsed)
    assert MS_TOKEN not in repr(raw)


def test_oauthbearer_rfc7628() -> None:
    raw = oauthbearer("user@example.com", Secret("vF9dft4qmT"), host="server.example.com", port=143)
    assert raw.reveal() == (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer vF9dft4qmT\x01\x01"
    )
    parsed = parse_oauthbearer(raw.reveal())
    assert (parsed.user, parsed.host, parsed.port) == (
        "user@example.com",
        "server.example.com",
        143,
    )
    assert parsed.token.reveal() == "vF9dft4qmT"
    odd = oauthbearer("a,b=c", Secret("t"))
    assert odd.reveal() == b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01"
    assert parse_oauthbearer(odd.reveal()).user == "a,b=c"
    # The error challenge and the client's one-byte answer.
    challenge = oauthbearer_error_challenge("invalid_token", "imap", "https://x/.well-known")
    assert json.loads(challenge) == {
        "status": "invalid_token",
        "scope": "imap",
        "openid-configuration": "https://x/.well-known",
    }
    assert OAUTHBEARER_ERROR_ANSWER.reveal() == b"\x01"
    assert base64.b64encode(OAUTHBEARER_ERROR_ANSWER.reveal()) == b"AQ=="


def test_plain() -> None:
    raw = plain("tim", Secret("tanstaaftanstaaf"))
    assert raw.reveal() == b"\x00tim\x00tanstaaftanstaaf"
    assert base64.b64encode(raw.reveal()) == b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
    parsed = parse_plain(raw.reveal())
    assert parsed.user == "tim"
    assert parsed.password.reveal() == "tanstaaftanstaaf"
    assert "tanstaaf" not in repr(parsed)
    assert plain("u", Secret("p"), authzid="admin").reveal() == b"admin\x00u\x00p"


def test_sasl_rejects_bad_local_values() -> None:
    with pytest.raises(LocalProtocolError):
        xoauth2("a\x01b", Secret("t"))
    with pytest.raises(LocalProtocolError):
        plain("a\x00b", Secret("p"))


@pytest.mark.parametrize(
    ("parser", "data"),
    [
        (parse_xoauth2, b"user=a\x01auth=Bearer t\x01"),
        (parse_xoauth2, b"auth=Bearer t\x01\x01"),
        (parse_xoauth2, b"user=a\x01auth=Basic t\x01\x01"),
        (parse_xoauth2, b"user=a\x01auth=Bearer \x01\x01"),
        (parse_xoauth2, b"user=\xff\x01auth=Bearer t\x01\x01"),
        (parse_xoauth2, b"user=a\x01junk\x01\x01"),
        (parse_oauthbearer, b"n,a=x,"),
        (parse_oauthbearer, b"x,a=x,\x01auth=Bearer t\x01\x01"),
        (parse_oauthbearer, b"n,a=x,\x01port=99999999\x01auth=Bearer t\x01\x01"),
        (parse_plain, b"only\x00two"),
        (parse_plain, b"\x00\x00p"),
    ],
)
def test_malformed_sasl_is_a_remote_error(parser, data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parser(data)


@given(st.binary(max_size=80))
def test_sasl_parsers_never_raise_anything_else(data: bytes) -> None:
    for parser in (parse_xoauth2, parse_oauthbearer, parse_plain):
        with contextlib.suppress(RemoteProtocolError):
            parser(data)


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("A&B", b"A&-B"),
        ("Entwürfe", b"Entw&APw-rfe"),
        ("日本語", b"&ZeVnLIqe-"),
        ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("😀", b"&2D3eAA-"),
        ("", b""),
    ],
)
def test_modified_utf7(name: str, wire: bytes) -> None:
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


@pytest.mark.parametrize("wire", [b"&", b"&Jjo", b"&AGE-", b"&!!-", b"caf\xc3\xa9", b"&2D0-"])
def test_invalid_modified_utf7(wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_mailbox(wire)
    assert isinstance(decode_mailbox_lenient(wire), str)


@given(st.text(max_size=30))
def test_modified_utf7_round_trip(name: str) -> None:
    wire = encode_mailbox(name)
    assert all(0x20 <= b <= 0x7E for b in wire)
    assert decode_mailbox(wire) == name
