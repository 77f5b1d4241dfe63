"""Pure parts of the Exchange half, without sockets: texts, settings, greeting blob,
XOAUTH2 parsing, LIST name encoding, MIME sections, FETCH rendering and SEARCH."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest

from exoimap.errors import ConfigError, RemoteProtocolError
from exoimap.protocol.commands import BodySection
from exoimap.protocol.types import SequenceSet
from exoimap.sandbox.exchange import texts
from exoimap.sandbox.exchange.app_requests import AppRequests
from exoimap.sandbox.exchange.auth import parse_xoauth2
from exoimap.sandbox.exchange.config import (
    AuthOutcome,
    CapabilityProfile,
    ExchangeSettings,
    ThrottlePolicy,
    front_end_fqdn,
    greeting_blob,
)
from exoimap.sandbox.exchange.fetch import (
    MessageView,
    estimated_size,
    expand_items,
    render_fetch,
)
from exoimap.sandbox.exchange.handlers import _resolve, list_name
from exoimap.sandbox.exchange.mailboxes import ThrottleWindow
from exoimap.sandbox.exchange.mime import parse_message
from exoimap.sandbox.exchange.search import SearchItem, search

MIXED = (
    b"From: =?UTF-8?B?SsO2cmc=?= <jorg@example.com>\r\n"
    b'To: a@example.com, "B, C" <b@example.com>\r\n'
    b"Subject: Report\r\n"
    b"Date: Tue, 05 Mar 2024 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello \xc3\xa9\r\n"
    b"--XX\r\n"
    b'Content-Type: application/pdf; name="a.pdf"\r\n'
    b'Content-Disposition: attachment; filename="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0=\r\n"
    b"--XX--\r\n"
)


def test_greeting_blob_matches_the_real_one() -> None:
    # spec 1.2: MailKit's fixture decodes to MWHPR21CA0060.namprd21.prod.outlook.com
    assert greeting_blob("MWHPR21CA0060.namprd21.prod.outlook.com") == (
        "TQBXAEgAUABSADIAMQBDAEEAMAAwADYAMAAuAG4AYQBtAHAAcgBkADIAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8A"
        "bwBrAC4AYwBvAG0A"
    )
    for seed in range(20):
        assert re.fullmatch(
            r"[A-Z0-9]{3}PR(\d\d)CA\d{4}\.[a-z]{3}prd\1\.prod\.outlook\.com", front_end_fqdn(seed)
        )
    settings = ExchangeSettings(front_end="SI2PR01CA0042.apcprd01.prod.exchangelabs.com")
    assert settings.greeting() == (
        "The Microsoft Exchange IMAP4 service is ready. "
        "[UwBJADIAUABSADAAMQBDAEEAMAAwADQAMgAuAGEAcABjAHAAcgBkADAAMQAuAHAAcgBvAGQALgBlAHgAYwBoAGEA"
        "bgBnAGUAbABhAGIAcwAuAGMAbwBtAA==]"
    )


def test_capability_profiles() -> None:
    pre, post = CapabilityProfile.PREAUTH_MOVE.lists()
    assert pre.split()[5:8] == ["UIDPLUS", "MOVE", "ID"]
    assert post == texts.CAPABILITY_POSTAUTH
    pre, _ = CapabilityProfile.STANDARD.lists()
    assert "MOVE" not in pre.split()
    for text in (texts.CAPABILITY_PREAUTH, texts.CAPABILITY_POSTAUTH):
        assert not {"CONDSTORE", "QRESYNC", "ENABLE", "SPECIAL-USE"} & set(text.split())


def test_fixed_texts() -> None:
    assert texts.completed("UID FETCH") == "UID FETCH completed."
    assert texts.throttled(300000) == (
        "Request is throttled. Suggested Backoff Time: 300000 milliseconds"
    )
    assert texts.BYE_AFTER_BAD_COMMANDS != texts.BYE_AFTER_AUTH_FAILURES  # "is closed" vs not


def test_settings_validation_and_mapping() -> None:
    with pytest.raises(ConfigError):
        ExchangeSettings(max_connections_per_mailbox=0)
    with pytest.raises(ConfigError):
        ThrottlePolicy(status="MAYBE")
    settings = ExchangeSettings.from_mapping(
        {
            "capability_profile": "basic-auth-disabled",
            "throttle": {"max_messages": 5},
            "failures": {"app_without_mailbox_access": "authenticate-failed"},
            "accepted_audiences": ["https://outlook.office.com"],
        }
    )
    assert settings.capability_profile is CapabilityProfile.BASIC_AUTH_DISABLED
    assert settings.throttle.max_messages == 5
    assert settings.failures.app_without_mailbox_access is AuthOutcome.AUTHENTICATE_FAILED
    with pytest.raises(ConfigError):
        ExchangeSettings.from_mapping({"capability_profile": "nope"})


def test_xoauth2_parsing_with_the_documented_example() -> None:
    # spec 2.1: Microsoft's documented example
    raw = base64.b64decode(
        "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0oz"
        "VmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
    )
    parsed = parse_xoauth2(raw)
    assert parsed is not None
    assert parsed[0] == "test@contoso.onmicrosoft.com"
    assert parsed[1].reveal() == "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"
    assert "EwBAA" not in repr(parsed)
    for bad in (b"user=x\x01auth=Bearer t\x01", b"user=x\x01auth=Basic t\x01\x01", b"\xff\x01\x01"):
        assert parse_xoauth2(bad) is None


def test_list_name_encoding_rules() -> None:
    assert list_name("Drafts") == b"Drafts"
    assert list_name("Sent Items") == b'"Sent Items"'
    assert list_name("a%b") == b'"a%b"'
    assert list_name("a]b") == b'"a]b"'
    assert list_name('say "hi"') == b'{8}\r\nsay "hi"'
    assert list_name("Zürich") == b"Z&APw-rich"


def test_mime_sections_and_bodystructure() -> None:
    root = parse_message(MIXED)
    assert [p.maintype for p in root.children] == ["text", "application"]
    assert root.children[0].body == b"Hello \xc3\xa9"
    view = MessageView(
        7, 3, frozenset({"\\Seen"}), dt.datetime(2024, 3, 5, 10, tzinfo=dt.UTC), MIXED
    )
    items = expand_items(["UID", BodySection("1", peek=True), BodySection("2.MIME", peek=True)])
    out = render_fetch(view, items, uid_first=True, estimate_size=False)
    assert out.startswith(b"* 3 FETCH (UID 7 BODY[1] {8}\r\nHello \xc3\xa9 BODY[2.MIME] {")
    items = expand_items([BodySection("HEADER.FIELDS (SUBJECT DATE)", peek=True), "BODYSTRUCTURE"])
    out = render_fetch(view, items, uid_first=False, estimate_size=False)
    assert b"{58}\r\nSubject: Report\r\nDate: Tue, 05 Mar 2024 10:00:00 +0000\r\n\r\n" in out
    assert b'("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 8 NIL ' in out
    assert b'("attachment" ("FILENAME" "a.pdf"))' in out
    assert b'"MIXED" ("BOUNDARY" "XX")' in out
    out = render_fetch(view, expand_items(["ALL"]), uid_first=False, estimate_size=True)
    assert b'INTERNALDATE "05-Mar-2024 10:00:00 +0000"' in out
    assert b"RFC822.SIZE %d" % estimated_size(len(MIXED)) in out
    assert b'((NIL NIL "a" "example.com")("B, C" NIL "b" "example.com"))' in out
    assert b'"<m1@example.com>"' in out
    partial = render_fetch(
        view, expand_items([BodySection("", peek=True, partial=(0, 4))]), uid_first=False,
        estimate_size=False,
    )  # fmt: skip
    assert partial == b"* 3 FETCH (BODY[]<0> {4}\r\nFrom)\r\n"
    with pytest.raises(RemoteProtocolError):
        expand_items(["X-GM-MSGID"])


def test_search_keys() -> None:
    when = dt.datetime(2024, 3, 5, 10, tzinfo=dt.UTC)
    items = [
        SearchItem(1, 10, frozenset({"\\Seen"}), when, MIXED),
        SearchItem(2, 11, frozenset(), when + dt.timedelta(days=2), b"Subject: other\r\n\r\nx\r\n"),
    ]
    uids = lambda criteria: [i.uid for i in search(items, criteria)]  # noqa: E731
    assert uids(("UNSEEN",)) == [11]
    assert uids(("SUBJECT", "report")) == [10]
    assert uids(("FROM", "Jörg")) == [10]  # RFC 2047 decoded
    assert uids(("OR", "SEEN", "UID", "11")) == [10, 11]
    assert uids(("NOT", ("UID", "10:*"))) == []
    assert uids(("SINCE", "6-Mar-2024")) == [11]
    assert uids(("SENTBEFORE", "6-Mar-2024")) == [10]
    assert uids(("BODY", "Hello")) == [10]
    assert uids(("LARGER", "100")) == [10]
    assert uids(("2",)) == [11]
    with pytest.raises(RemoteProtocolError):
        search(items, ("BOGUS",))


def test_sequence_resolution_and_dates() -> None:
    assert _resolve([3, 5, 9], SequenceSet.parse("4:*")) == [5, 9]
    assert _resolve([3, 5, 9], SequenceSet.parse("20:*")) == [9]  # n:* past the end: last (1.8)
    assert _resolve([3, 5, 9], SequenceSet.parse("20")) == []


def test_throttle_window_slides() -> None:
    window = ThrottleWindow(ThrottlePolicy(window_seconds=10, max_bytes=100))
    window.charge(0.0, 1, 60)
    assert not window.over_limit(1.0)
    window.charge(2.0, 1, 60)
    assert window.over_limit(3.0)
    assert not window.over_limit(10.5)  # the first charge left the window


def test_commands_before_the_sign_in_count_when_they_came() -> None:
    """A CAPABILITY sent before the app signed in counts for the app at its arrival, not
    at the sign-in: counted late, it would crowd a later window than the one it was in."""
    log = AppRequests()
    assert log.admit("app", None, 10.0)
    signed_in = log.times("app")[0]
    log.record("app", [signed_in - 9.5, signed_in - 9.0])
    assert log.times("app") == [signed_in - 9.5, signed_in - 9.0, signed_in]
    assert log.count("app") == 3
    assert log.busiest("app", 1.0) == 2  # the two early ones, not three at the sign-in
