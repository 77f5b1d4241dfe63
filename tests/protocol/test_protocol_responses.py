"""Response parsing, one response kind at a time; every input is fed whole and byte by byte
through a ClientConnection (``both_ways``)."""

from __future__ import annotations

import datetime as dt

import pytest

from exoimap.errors import RemoteProtocolError
from exoimap.protocol import (
    Address,
    AppendUidCode,
    BareResponseCode,
    BodyData,
    BodyPart,
    CapabilityCode,
    CapabilityResponse,
    CopyUidCode,
    Disposition,
    EnabledResponse,
    Envelope,
    ESearchResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    Multipart,
    NamespaceResponse,
    NumberCode,
    OtherCode,
    PermanentFlagsCode,
    RecentResponse,
    SearchResponse,
    SequenceSet,
    SimpleCode,
    Status,
    StatusData,
    StatusResponse,
    UnknownResponse,
    VanishedResponse,
    parse_response_line,
    session_invalidated_reason,
    throttle_backoff,
)
from exoimap.protocol.framing import split_message
from exoimap.protocol.parse_fetch import fast_fetch, fast_fetch_with_body, parse_fetch
from exoimap.protocol.reader import Reader

from .protocol_helpers import both_ways


def one(data: bytes, **kwargs):
    (event,) = both_ways(data + b"\r\n", **kwargs)
    assert event == parse_response_line(data)
    return event


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"* OK [ALERT] Mailbox is almost full", SimpleCode("ALERT")),
        (b"* OK [UIDVALIDITY 14] UIDVALIDITY value", NumberCode("UIDVALIDITY", 14)),
        (b"* OK [UIDNEXT 3687] next", NumberCode("UIDNEXT", 3687)),
        (b"* OK [UNSEEN 1] first unseen", NumberCode("UNSEEN", 1)),
        (b"* OK [HIGHESTMODSEQ 715194045007] Highest", NumberCode("HIGHESTMODSEQ", 715194045007)),
        (b"* OK [read-only] lower case", SimpleCode("READ-ONLY")),
        (b"* OK [CLOSED] Previous mailbox closed.", SimpleCode("CLOSED")),
        (b"* NO [TRYCREATE] no such mailbox", SimpleCode("TRYCREATE")),
        (b"* NO [AUTHENTICATIONFAILED] Invalid credentials", SimpleCode("AUTHENTICATIONFAILED")),
        (
            b"* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] Limited",
            PermanentFlagsCode(("\\Seen", "\\Deleted", "\\*")),
        ),
        (b"* OK [PERMANENTFLAGS ()] none", PermanentFlagsCode(())),
        (b"* OK [CAPABILITY IMAP4rev1 IDLE] ready", CapabilityCode(("IMAP4rev1", "IDLE"))),
        (
            b"* OK [APPENDUID 38505 3955] APPEND completed",
            AppendUidCode(38505, SequenceSet.of(3955)),
        ),
        (
            b"* OK [COPYUID 38505 304,319:320 3956:3958] Done",
            CopyUidCode(
                38505, SequenceSet(((304, 304), (319, 320))), SequenceSet.range(3956, 3958)
            ),
        ),
        (
            b"* NO [BADCHARSET (US-ASCII)] The specified charset is not supported.",
            OtherCode("BADCHARSET", "(US-ASCII)"),
        ),
        (b"* OK [UIDNEXT abc] malformed known code is kept raw", OtherCode("UIDNEXT", "abc")),
        (b"* OK [COPYUID 1 2] too few args", OtherCode("COPYUID", "1 2")),
        (b"* OK [UIDVALIDITY] no number", OtherCode("UIDVALIDITY", None)),
        (b"* OK [X-UNKNOWN-THING] whatever", SimpleCode("X-UNKNOWN-THING")),
    ],
)
def test_response_codes(line: bytes, code) -> None:
    event = one(line)
    assert isinstance(event, StatusResponse)
    assert event.code == code


def test_status_without_text_and_code_only() -> None:
    assert one(b"* OK [READ-WRITE]") == StatusResponse(None, Status.OK, SimpleCode("READ-WRITE"))
    assert one(b"* OK") == StatusResponse(None, Status.OK)
    assert one(b"* NO [") == StatusResponse(None, Status.NO, None, "[")


def test_bare_copyuid_line_of_exchange() -> None:
    assert one(b"[COPYUID 55 31 6]") == BareResponseCode(
        CopyUidCode(55, SequenceSet.of(31), SequenceSet.of(6))
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'* LIST (\\HasNoChildren) "/" Drafts', ListResponse(("\\HasNoChildren",), "/", "Drafts")),
        (b'* LIST () "/" "Sent Items"', ListResponse((), "/", "Sent Items")),
        (b'* LIST () "/" {7}\r\na"b\\c d', ListResponse((), "/", 'a"b\\c d')),
        (b'* LIST () "/" "Entw&APw-rfe"', ListResponse((), "/", "Entwürfe")),
        (b'* LIST () "/" &ZeVnLIqe-', ListResponse((), "/", "日本語")),
        (b'* LIST (\\Noselect) NIL ""', ListResponse(("\\Noselect",), None, "")),
        (b'* LIST () "/" Tab\tName', ListResponse((), "/", "Tab\tName")),
        (b'* LIST () "\\\\" Odd&Name', ListResponse((), "\\", "Odd&Name")),
        (b'* LSUB () "." INBOX.Sub', ListResponse((), ".", "INBOX.Sub", lsub=True)),
        (
            b'* LIST (\\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
            ListResponse(("\\Subscribed",), "/", "Foo"),
        ),
    ],
)
def test_list(line: bytes, expected: ListResponse) -> None:
    assert one(line) == expected


def test_status_data() -> None:
    assert one(b'* STATUS "Sent Items" (MESSAGES 3) ') == StatusData(
        "Sent Items", (("MESSAGES", 3),), trailing_space=True
    )
    status = one(b"* STATUS INBOX (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 14 UNSEEN 0)")
    assert status.get("uidnext") == 44292
    assert status.get("RECENT") is None
    assert not status.trailing_space
    assert one(b"* STATUS {3}\r\na b ()").mailbox == "a b"


def test_numbered_and_flags() -> None:
    assert one(b"* 2198 EXISTS") == ExistsResponse(2198)
    assert one(b"* 0 RECENT") == RecentResponse(0)
    assert one(b"* 44 EXPUNGE") == ExpungeResponse(44)
    assert one(b"* FLAGS (\\Seen \\Answered $MDNSent)") == FlagsResponse(
        ("\\Seen", "\\Answered", "$MDNSent")
    )


def test_search_and_esearch() -> None:
    assert one(b"* SEARCH") == SearchResponse(())
    assert one(b"* SEARCH ") == SearchResponse(())
    assert one(b"* SEARCH 2 84 882") == SearchResponse((2, 84, 882))
    assert one(b"* SEARCH 2 5 (MODSEQ 917162500)") == SearchResponse((2, 5), 917162500)
    assert one(b'* ESEARCH (TAG "A282") MIN 2 COUNT 3') == ESearchResponse("A282", min=2, count=3)
    assert one(b'* ESEARCH (TAG "A5") UID ALL 1:4,7 MAX 7') == ESearchResponse(
        "A5", uid=True, max=7, all=SequenceSet(((1, 4), (7, 7)))
    )
    assert one(b"* ESEARCH UID COUNT 0") == ESearchResponse(uid=True, count=0)
    assert one(b"* ESEARCH UID PARTIAL (1:10 1)").uid


def test_other_untagged() -> None:
    assert one(b"* CAPABILITY IMAP4rev1 IDLE ") == CapabilityResponse(("IMAP4rev1", "IDLE"))
    assert one(b"* ENABLED CONDSTORE QRESYNC") == EnabledResponse(("CONDSTORE", "QRESYNC"))
    assert one(b"* VANISHED (EARLIER) 41,43:116") == VanishedResponse(
        SequenceSet(((41, 41), (43, 116))), earlier=True
    )
    assert one(b"* VANISHED 405") == VanishedResponse(SequenceSet.of(405))
    assert one(b"* ID NIL") == IdResponse(None)
    assert one(b'* ID ("name" "Dovecot" "os" NIL)') == IdResponse(
        (("name", "Dovecot"), ("os", None))
    )
    assert one(b'* NAMESPACE (("" "/")) NIL NIL') == NamespaceResponse((("", "/"),), None, None)
    assert one(
        b'* NAMESPACE (("" "/")("Archive/" "/" "X-EXT" ("a"))) (("~" "/")) (("#shared/" NIL))'
    ) == NamespaceResponse((("", "/"), ("Archive/", "/")), (("~", "/"),), (("#shared/", None),))
    assert one(b"* XSTRANGE 1 2 (3)") == UnknownResponse(b"* XSTRANGE 1 2 (3)")


def test_exchange_helpers() -> None:
    throttled = one(b"* NO Request is throttled. Suggested Backoff Time: 300000 milliseconds")
    assert throttle_backoff(throttled) == 300.0
    assert throttle_backoff(one(b"* NO Suggested Backoff Time: 5 milliseconds")) is None
    assert throttle_backoff(one(b"* NO AUTHENTICATE failed.")) is None
    bye = one(b"* BYE Session invalidated - AccessTokenExpired")
    assert session_invalidated_reason(bye) == "AccessTokenExpired"
    assert session_invalidated_reason(one(b"* BYE Connection is closed. 13")) is None
    assert session_invalidated_reason(one(b"* OK Session invalidated - x")) is None


PACIFIC = dt.timezone(-dt.timedelta(hours=7))


def test_fetch_simple_items() -> None:
    f = one(
        b'* 12 FETCH (UID 4827313 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 4286 MODSEQ (12121231000))"
    )
    assert f == FetchResponse(
        12,
        uid=4827313,
        flags=("\\Seen",),
        internal_date=dt.datetime(1996, 7, 17, 2, 44, 25, tzinfo=PACIFIC),
        rfc822_size=4286,
        modseq=12121231000,
    )
    assert one(b"* 1 FETCH (FLAGS () UID 9)") == FetchResponse(1, uid=9, flags=())
    assert one(b"* 1 FETCH (flags (\\Seen  \\Draft) uid 9)") == FetchResponse(
        1, uid=9, flags=("\\Seen", "\\Draft")
    )
    assert one(b"* 1 FETCH (UID 9 FLAGS (\\Seen) X-GM-MSGID 1278455344230334865)").extra == (
        ("X-GM-MSGID", 1278455344230334865),
    )


def test_fetch_body_sections() -> None:
    f = one(
        b"* 2 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID: <a@b>\r\n\r\n12345"
        b' BODY[1.2]<100> "part" BODY[TEXT] NIL BINARY[1] ~{3}\r\n\x00\x01\x02'
        b" RFC822.HEADER {2}\r\n\r\n)"
    )
    assert f.bodies == (
        BodyData(
            "HEADER.FIELDS (MESSAGE-ID)", None, b"Message-ID: <a@b>\r\n\r\n12345", "BODY", False, 26
        ),
        BodyData("1.2", 100, b"part", "BODY", False, 4),
        BodyData("TEXT", None, None, "BODY", False, None),
        BodyData("1", None, b"\x00\x01\x02", "BINARY", False, 3),
        BodyData("", None, b"\r\n", "RFC822.HEADER", False, 2),
    )
    assert f.body("TEXT").data is None
    assert f.body("nope") is None
    echoed = one(b"* 2 FETCH (UID 3 BODY.PEEK[HEADER] {2}\r\nab)")
    assert echoed.body("HEADER") == BodyData("HEADER", None, b"ab", "BODY", False, 2)


def _general_parse(data: bytes) -> FetchResponse:
    """``data`` (one FETCH, literals inline) through the general item parser only."""
    parts, literals = split_message(data)
    r = Reader(parts, literals)
    r.expect(b"* ")
    seq = r.nz_number()
    r.expect(b" FETCH ")
    return parse_fetch(r, seq)


@pytest.mark.parametrize(
    ("data", "fast"),
    [
        (b"* 12 FETCH (UID 40 FLAGS (\\Seen $Forwarded) MODSEQ (917))", True),
        (b"* 12 FETCH (FLAGS () UID 40 MODSEQ (1))", True),
        (b"* 12 FETCH (UID 40 FLAGS (\\Seen))", True),
        (b"* 12 FETCH (UID 40 MODSEQ (917) FLAGS (\\Seen))", False),
        (
            b'* 3 FETCH (UID 7 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
            b"RFC822.SIZE 5 BODY[] {5}\r\nhello)",
            True,
        ),
        (b"* 3 FETCH (UID 7 BODY[HEADER]<10> {2}\r\nab)", True),
        (b"* 3 FETCH (UID 7 BINARY[] ~{3}\r\n\x00\x01\x02)", True),
        (b"* 3 FETCH (UID 7 BODY[] {5}\r\nhello MODSEQ (4))", False),
        (b"* 3 FETCH (UID 7 BODY[] {5}\r\nhello BODY[TEXT] {1}\r\nx)", False),
    ],
)
def test_fetch_fast_paths_agree_with_the_general_parser(data: bytes, fast: bool) -> None:
    """The flags listing of a CONDSTORE server and a message read whole take the fast
    paths; whatever the path, the response is what the general parser makes of it."""
    parts, literals = split_message(data)
    taken = fast_fetch(parts[0]) if len(parts) == 1 else fast_fetch_with_body(parts, literals)
    assert (taken is not None) == fast
    if taken is not None:
        assert taken == _general_parse(data)
    assert one(data) == _general_parse(data)


def test_fetch_envelope_with_literals_and_nil() -> None:
    f = one(
        b'* 3 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" {8}\r\nHi "you"'
        b' (("Terry Gray" NIL "gray" "cac.washington.edu")) NIL NIL'
        b' ((NIL NIL "imap" "cac.washington.edu")) NIL NIL NIL "<B27397-0100000@cac>"))'
    )
    assert f.envelope == Envelope(
        date=b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        subject=b'Hi "you"',
        from_=(Address(b"Terry Gray", None, b"gray", b"cac.washington.edu"),),
        sender=None,
        reply_to=None,
        to=(Address(None, None, b"imap", b"cac.washington.edu"),),
        message_id=b"<B27397-0100000@cac>",
    )
    assert one(b"* 3 FETCH (ENVELOPE NIL)").envelope == Envelope()
    assert one(b"* 3 FETCH (ENVELOPE (NIL))").envelope == Envelope()


def test_bodystructure_single_and_multipart() -> None:
    f = one(
        b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))'
    )
    assert f.body_structure == BodyPart(
        "TEXT", "PLAIN", (("CHARSET", "US-ASCII"),), None, None, "7BIT", 3028, 92
    )
    f = one(
        b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable"'
        b' 10 1 NIL NIL NIL NIL)("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 2000 NIL'
        b' ("attachment" ("filename" "a.pdf")) NIL NIL) "mixed" ("boundary" "xx") NIL NIL NIL))'
    )
    assert f.body_structure == Multipart(
        parts=(
            BodyPart(
                "TEXT", "PLAIN", (("charset", "utf-8"),), None, None, "quoted-printable", 10, 1
            ),
            BodyPart(
                "APPLICATION",
                "PDF",
                (("name", "a.pdf"),),
                None,
                None,
                "base64",
                2000,
                None,
                disposition=Disposition("attachment", (("filename", "a.pdf"),)),
            ),
        ),
        subtype="MIXED",
        params=(("boundary", "xx"),),
    )


def test_bodystructure_exchange_quirks() -> None:
    # Disposition "inline" instead of ("inline" NIL), and (NIL NIL) parameter pairs.
    f = one(
        b'* 1 FETCH (BODYSTRUCTURE ("image" "png" (NIL NIL "name" "x.png") "<id>" NIL "base64"'
        b' 100 NIL "inline" NIL NIL))'
    )
    part = f.body_structure
    assert part.params == (("name", "x.png"),)
    assert part.disposition == Disposition("inline")
    assert part.id == "<id>"
    # Too short, wrong types: still parses, missing fields are empty.
    assert one(b'* 1 FETCH (BODYSTRUCTURE ("text"))').body_structure.subtype == "PLAIN"
    assert one(b"* 1 FETCH (BODYSTRUCTURE NIL)").body_structure is None
    nested = one(
        b'* 1 FETCH (BODY ("message" "rfc822" NIL NIL NIL "7bit" 500 (NIL "sub" NIL NIL NIL NIL'
        b' NIL NIL NIL NIL) ("text" "plain" NIL NIL NIL "7bit" 20 2) 12))'
    ).body_structure
    assert nested.envelope.subject == b"sub"
    assert nested.body.size == 20
    assert nested.lines == 12


@pytest.mark.parametrize(
    "line",
    [
        b"* 0 EXISTS x",
        b"* 1 BOGUS",
        b"* 0 FETCH (UID 1)",
        b"* 1 FETCH (UID)",
        b"* 1 FETCH (UID 0)",
        b"* 1 FETCH UID 1",
        b"* 1 FETCH (UID 1",
        b"* 1 FETCH (BODY[ NIL)",
        b"* 1 FETCH (FOO[1] NIL)",
        b"* 1 FETCH (ENVELOPE " + b"(" * 200 + b")" * 200 + b")",
        b"A1 PREAUTH hi",
        b"A1 WHAT hi",
        b'* LIST () "/"',
        b"* STATUS INBOX (MESSAGES x)",
        b"* SEARCH 1 0",
        b"* VANISHED 1:x",
        b'* ID ("a")',
        b'* NAMESPACE (("" "/")) NIL',
        b"* ESEARCH ALL 1:x",
        b"* FLAGS (\\Seen",
        b"\x00\xff",
        b"",
        b"* ",
        b"[COPYUID",
    ],
)
def test_malformed_responses_raise_remote_protocol_error(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_response_line(line)
    with pytest.raises(RemoteProtocolError):
        both_ways(line + b"\r\n")
