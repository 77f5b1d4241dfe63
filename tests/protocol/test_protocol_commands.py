"""Typed command builders: the exact bytes they produce, and the server parser reading them
back (the same command, whole and byte by byte)."""

from __future__ import annotations

import datetime as dt

import pytest

from exoimap.errors import LocalProtocolError, RemoteProtocolError
from exoimap.protocol import (
    Append,
    AppendMessage,
    Authenticate,
    BodySection,
    Capability,
    Close,
    CommandReceived,
    Copy,
    Create,
    Delete,
    Enable,
    Examine,
    Expunge,
    Fetch,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    MultiAppend,
    Namespace,
    Noop,
    QResync,
    Rename,
    Search,
    Select,
    SequenceSet,
    ServerConnection,
    StatusCommand,
    StoreFlags,
    StoreMode,
    Subscribe,
    UidExpunge,
    Unselect,
    Unsubscribe,
    parse_command_line,
    serialize_command,
)
from exoimap.protocol.serialize import WAIT
from exoimap.secrets import Secret

from .protocol_helpers import feed

ALL_UIDS = SequenceSet.all()

CASES = [
    (Capability(), b"CAPABILITY"),
    (Noop(), b"NOOP"),
    (Logout(), b"LOGOUT"),
    (Namespace(), b"NAMESPACE"),
    (Close(), b"CLOSE"),
    (Unselect(), b"UNSELECT"),
    (Expunge(), b"EXPUNGE"),
    (Idle(), b"IDLE"),
    (Login("me@contoso.com", Secret("hunter2!")), b"LOGIN me@contoso.com hunter2!"),
    (Login("a b", Secret("")), b'LOGIN "a b" ""'),
    (Authenticate("xoauth2", Secret(b"abc")), b"AUTHENTICATE XOAUTH2 YWJj"),
    (Authenticate("PLAIN"), b"AUTHENTICATE PLAIN"),
    (Select("INBOX"), b"SELECT INBOX"),
    (Select("Sent Items"), b'SELECT "Sent Items"'),
    (Select("INBOX", condstore=True), b"SELECT INBOX (CONDSTORE)"),
    (
        Examine(
            "INBOX", qresync=QResync(67890007, 20050715194045000, SequenceSet.parse("41,43:211"))
        ),
        b"EXAMINE INBOX (QRESYNC (67890007 20050715194045000 41,43:211))",
    ),
    (
        Select("x", condstore=True, qresync=QResync(1, 2)),
        b"SELECT x (CONDSTORE QRESYNC (1 2))",
    ),
    (
        Fetch(SequenceSet.range(1, 100), ("FLAGS",), uid=True, changed_since=5, vanished=True),
        b"UID FETCH 1:100 (FLAGS) (CHANGEDSINCE 5 VANISHED)",
    ),
    (Examine("Entwürfe"), b"EXAMINE Entw&APw-rfe"),
    (Create("A&B"), b"CREATE A&-B"),
    (Delete("NIL"), b'DELETE "NIL"'),
    (Rename("a", "b/c"), b"RENAME a b/c"),
    (Subscribe("x"), b"SUBSCRIBE x"),
    (Unsubscribe("x"), b"UNSUBSCRIBE x"),
    (List("", "*"), b'LIST "" *'),
    (List("", "Sent %"), b'LIST "" "Sent %"'),
    (Lsub("", "%"), b'LSUB "" %'),
    (
        StatusCommand("Sent Items", ("MESSAGES", "UIDNEXT", "UIDVALIDITY")),
        b'STATUS "Sent Items" (MESSAGES UIDNEXT UIDVALIDITY)',
    ),
    (
        Fetch(SequenceSet.range(5), ("UID", "FLAGS", BodySection(peek=True)), uid=True),
        b"UID FETCH 5:* (UID FLAGS BODY.PEEK[])",
    ),
    (
        Fetch(SequenceSet.of(1, 2, 3, 7), ("FLAGS",), changed_since=12345),
        b"FETCH 1:3,7 (FLAGS) (CHANGEDSINCE 12345)",
    ),
    (
        Fetch(
            SequenceSet.of(9),
            (BodySection("1.2.MIME", binary=True), BodySection(partial=(0, 1024))),
        ),
        b"FETCH 9 (BINARY[1.2.MIME] BODY[]<0.1024>)",
    ),
    (Search(("ALL",), uid=True), b"UID SEARCH ALL"),
    (Search(("UID", "100:*")), b"SEARCH UID 100:*"),
    (
        Search(("HEADER", "Message-ID", "<x@y.z>"), uid=True),
        b"UID SEARCH HEADER Message-ID <x@y.z>",
    ),
    (
        Search(("OR", ("SEEN",), ("SUBJECT", "two words")), charset="UTF-8"),
        b'SEARCH CHARSET UTF-8 OR (SEEN) (SUBJECT "two words")',
    ),
    (Search(("SINCE", "1-Feb-2024", "NOT", "DELETED")), b"SEARCH SINCE 1-Feb-2024 NOT DELETED"),
    (
        StoreFlags(
            SequenceSet.of(4), ("\\Seen", "\\Flagged"), StoreMode.ADD, silent=True, uid=True
        ),
        b"UID STORE 4 +FLAGS.SILENT (\\Seen \\Flagged)",
    ),
    (StoreFlags(SequenceSet.of(4), (), StoreMode.SET), b"STORE 4 FLAGS ()"),
    (
        StoreFlags(SequenceSet.of(4), ("$MDNSent",), StoreMode.REMOVE, unchanged_since=7),
        b"STORE 4 (UNCHANGEDSINCE 7) -FLAGS ($MDNSent)",
    ),
    (Copy(SequenceSet.of(1, 2), "Archive", uid=True), b"UID COPY 1:2 Archive"),
    (Move(SequenceSet.of(31), "Deleted Items", uid=True), b'UID MOVE 31 "Deleted Items"'),
    (Move(SequenceSet.of(31), "x"), b"MOVE 31 x"),
    (UidExpunge(SequenceSet.of(3, 4)), b"UID EXPUNGE 3:4"),
    (Enable(("CONDSTORE", "QRESYNC")), b"ENABLE CONDSTORE QRESYNC"),
    (Id(), b"ID NIL"),
    (
        Id((("name", "exoimap"), ("version", "0.1"), ("os", None))),
        b'ID ("name" "exoimap" "version" "0.1" "os" NIL)',
    ),
]


@pytest.mark.parametrize(("command", "wire"), CASES, ids=lambda x: str(x)[:40])
def test_command_bytes_and_server_parse(command, wire: bytes) -> None:
    data = b"A1 " + wire + b"\r\n"
    assert serialize_command("A1", command) == [data]
    assert parse_command_line(data).command == command
    assert parse_command_line(data).tag == "A1"
    for bytewise in (False, True):
        server = ServerConnection()
        assert feed(server, data, bytewise=bytewise) == [CommandReceived("A1", command)]


def test_literals_in_commands() -> None:
    pieces = serialize_command("A2", Login("user", Secret("pass\r\nword")))
    assert pieces == [b"A2 LOGIN user {10}\r\n", WAIT, b"pass\r\nword\r\n"]
    pieces = serialize_command("A2", Login("user", Secret("pass\r\nword")), literal_plus_max=100)
    assert pieces == [b"A2 LOGIN user {10+}\r\npass\r\nword\r\n"]
    assert parse_command_line(pieces[0]).command == Login("user", Secret("pass\r\nword"))


def test_append_with_flags_and_date() -> None:
    when = dt.datetime(
        2026, 11, 5, 6, 7, 8, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    )
    command = Append("Sent Items", b"Subject: a\r\n\r\nb", ("\\Seen", "$MDNSent"), when)
    pieces = serialize_command("A3", command, literal_plus_max=1 << 30)
    assert pieces == [
        b'A3 APPEND "Sent Items" (\\Seen $MDNSent) "05-Nov-2026 06:07:08 -0530" {15+}\r\n'
        b"Subject: a\r\n\r\nb\r\n"
    ]
    assert parse_command_line(pieces[0]).command == command
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        Append("INBOX", b"x", date=dt.datetime(2026, 1, 1))


def test_multiappend_sends_every_message_in_one_command() -> None:
    """RFC 3502: each message with its own flags and date; non-synchronising literals with
    LITERAL+, else a ``+`` awaited before each message."""
    when = dt.datetime(2026, 11, 5, 6, 7, 8, tzinfo=dt.UTC)
    command = MultiAppend(
        "INBOX",
        (AppendMessage(b"one\r\n", ("\\Seen",), when), AppendMessage(b"two", (), None)),
    )
    pieces = serialize_command("A4", command, literal_plus_max=1 << 30)
    assert pieces == [
        b'A4 APPEND INBOX (\\Seen) "05-Nov-2026 06:07:08 +0000" {5+}\r\none\r\n {3+}\r\ntwo\r\n'
    ]
    pieces = serialize_command("A5", command)
    assert pieces == [
        b'A5 APPEND INBOX (\\Seen) "05-Nov-2026 06:07:08 +0000" {5}\r\n',
        WAIT,
        b"one\r\n {3}\r\n",
        WAIT,
        b"two\r\n",
    ]
    with pytest.raises(LocalProtocolError):
        MultiAppend("INBOX", ())
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        AppendMessage(b"x", (), dt.datetime(2026, 1, 1))


def test_invalid_commands_are_local_errors() -> None:
    bad = [
        Select("a\r\nb"),
        Fetch(SequenceSet.of(1), ("BAD ITEM",)),
        Fetch(SequenceSet.of(1), (BodySection("x]y"),)),
        Fetch(SequenceSet.of(1), (BodySection(partial=(0, 0)),)),
        StoreFlags(SequenceSet.of(1), ("bad flag",)),
        Search(()),
        Enable(()),
        Authenticate("X OAUTH"),
    ]
    for command in bad:
        if isinstance(command, Select):
            # Control characters in a mailbox name travel as modified UTF-7.
            assert serialize_command("A1", command) == [b"A1 SELECT a&AA0ACg-b\r\n"]
            continue
        with pytest.raises(LocalProtocolError):
            serialize_command("A1", command)
    with pytest.raises(LocalProtocolError):
        serialize_command("bad tag", Noop())
    with pytest.raises(LocalProtocolError):
        Fetch(SequenceSet.of(1), ("FLAGS",), uid=True, vanished=True)
    with pytest.raises(LocalProtocolError):
        Append("INBOX")
    with pytest.raises(LocalProtocolError):
        Append("INBOX", b"abc", size=4)
    with pytest.raises(LocalProtocolError):
        SequenceSet(())
    with pytest.raises(LocalProtocolError):
        SequenceSet.of()
    with pytest.raises(LocalProtocolError):
        list(SequenceSet.range(1))


def test_sequence_set_helpers() -> None:
    assert str(SequenceSet.of(5, 1, 2, 3, 9, 10)) == "1:3,5,9:10"
    assert str(SequenceSet.all()) == "1:*"
    assert list(SequenceSet.parse("3:1,7")) == [1, 2, 3, 7]
    assert SequenceSet.parse("*:4") == SequenceSet(((None, 4),))
    for text in ("", "0", "1:0", "a", "1,,2", "4294967296"):
        with pytest.raises(RemoteProtocolError):
            SequenceSet.parse(text)


def test_sequence_set_membership() -> None:
    ranges = SequenceSet.parse("3:1,7,10:*")
    assert [n for n in range(13) if n in ranges] == [1, 2, 3, 7, 10, 11, 12]
    assert 4_000_000_000 in ranges  # '*' is the largest number there is
    assert 5 in SequenceSet.parse("*:4")
    assert 3 not in SequenceSet.parse("*:4")
    assert "7" not in ranges
    assert 7 in SequenceSet.of(7)


def test_credentials_never_show_in_repr() -> None:
    assert "hunter2" not in repr(Login("me", Secret("hunter2")))
    # not a word as the value: every Secret's value is masked in all later log lines
    assert "czNjcjN0" not in repr(Authenticate("PLAIN", Secret(b"s3cr3t")))
    assert "s3cr3t" not in repr(Authenticate("PLAIN", Secret(b"s3cr3t")))
    big = Append("INBOX", b"x" * 100_000)
    assert len(repr(big)) < 200


@pytest.mark.parametrize(
    "line",
    [
        b"A1 FROB",
        b"A1 UID NOOP",
        b"A1 SELECT",
        b"A1 LOGIN onlyuser",
        b"A1 FETCH 1",
        b"A1 FETCH 0 (UID)",
        b"A1 FETCH 1 ()",
        b"A1 FETCH 1 (BODY[]<0.0>)",
        b"A1 SEARCH",
        b"A1 STORE 1 FLAGS",
        b"A1 STORE 1 XFLAGS (\\Seen)",
        b"A1 STATUS INBOX (MESSAGES",
        b"A1 AUTHENTICATE PLAIN !!!",
        b"A1 ENABLE",
        b"A1 NOOP extra",
        b"A1 SELECT INBOX (FROB)",
        b"A1 SELECT INBOX (QRESYNC (0 1))",
        b"A1 FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)",
        b'A1 ID ("a")',
        b"A1 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100,
        b"* NOOP",
        b"",
    ],
)
def test_malformed_commands(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_command_line(line)
