"""Exact texts of the authenticated session: SELECT/EXAMINE, LIST/LSUB/STATUS, ID,
NAMESPACE, LOGOUT, bad commands, and the message commands with imaplib."""

from __future__ import annotations

import imaplib
import re
import uuid
from collections.abc import Iterator

import pytest

from exoimap.sandbox.tenant import SandboxTenant

from .conftest import Raw, signed_in


@pytest.fixture
def session(tenant: SandboxTenant, alice: str, alice_token: str) -> Iterator[Raw]:
    client = signed_in(tenant, alice, alice_token)
    yield client
    client.close()


def test_greeting_is_exact(raw: Raw) -> None:
    greeting = raw.line()
    match = re.fullmatch(
        rb"\* OK The Microsoft Exchange IMAP4 service is ready\. \[([A-Za-z0-9+/=]+)\]", greeting
    )
    assert match is not None
    import base64

    fqdn = base64.b64decode(match.group(1)).decode("utf-16-le")
    assert re.fullmatch(r"[A-Z0-9]{3}PR\d\dCA\d{4}\.[a-z]{3}prd\d\d\.prod\.outlook\.com", fqdn)


def test_select_and_examine_texts(session: Raw, tenant: SandboxTenant, alice: str) -> None:
    tenant.exchange.deliver(alice, b"Subject: unseen\r\n\r\nhello\r\n", folder="Drafts")
    lines = session.command("s1", "SELECT Drafts")
    flags = rb"\Seen \Answered \Flagged \Deleted \Draft $MDNSent"
    assert re.fullmatch(rb"\* \d+ EXISTS", lines[0])
    assert lines[1:4] == [
        b"* 0 RECENT",
        b"* FLAGS (" + flags + b")",
        b"* OK [PERMANENTFLAGS (" + flags + b")] Permanent flags",
    ]
    assert re.fullmatch(rb"\* OK \[UNSEEN \d+\] Is the first unseen message", lines[4])
    assert re.fullmatch(rb"\* OK \[UIDVALIDITY \d{1,4}\] UIDVALIDITY value", lines[5])
    assert re.fullmatch(rb"\* OK \[UIDNEXT \d+\] The next unique identifier value", lines[6])
    assert lines[7] == b"s1 OK [READ-WRITE] SELECT completed."
    lines = session.command("s2", "EXAMINE Drafts")
    assert lines[-1] == b"s2 OK [READ-ONLY] EXAMINE completed."
    assert session.command("s3", "SELECT Nowhere") == [b"s3 NO Nowhere doesn't exist."]


def test_list_marks_folders_with_unseen_mail(
    session: Raw, tenant: SandboxTenant, alice: str
) -> None:
    assert session.command("m1", 'LIST "" Journal')[0] == b'* LIST (\\HasNoChildren) "/" Journal'
    tenant.exchange.deliver(alice, b"Subject: new\r\n\r\nx\r\n", folder="Journal")
    assert session.command("m2", 'LIST "" Journal') == [
        b'* LIST (\\Marked \\HasNoChildren) "/" Journal',
        b"m2 OK LIST completed.",
    ]


def test_list_lsub_status_texts(session: Raw) -> None:
    assert session.command("l0", 'CREATE "Team/Z&APw-rich (alt)"') == [b"l0 OK CREATE completed."]
    lines = session.command("l1", 'LIST "" "*"')
    assert lines[-1] == b"l1 OK LIST completed."
    listed = set(lines[:-1])
    for expected in (
        b'* LIST (\\HasNoChildren) "/" Calendar',
        b'* LIST (\\HasNoChildren) "/" Notes',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk Email"',
        b'* LIST (\\HasNoChildren) "/" Outbox',
        b'* LIST (\\HasChildren) "/" Team',
        b'* LIST (\\HasNoChildren) "/" "Team/Z&APw-rich (alt)"',
    ):
        assert any(
            line.endswith(expected[8:]) and line.startswith(b"* LIST (") for line in listed
        ), expected
    drafts = [line for line in listed if line.endswith(b'"/" Drafts')]
    assert drafts
    assert drafts[0].endswith(b'\\HasNoChildren \\Drafts) "/" Drafts')
    archive = [line for line in listed if line.endswith(b'"/" Archive')]
    assert archive
    assert b"\\Archive" not in archive[0]
    assert session.command("l2", 'LIST "" ""') == [
        b'* LIST (\\Noselect \\HasChildren) "/" ""',
        b"l2 OK LIST completed.",
    ]
    assert session.command("l3", 'LIST "Team/" "%"') == [
        b'* LIST (\\HasNoChildren) "/" "Team/Z&APw-rich (alt)"',
        b"l3 OK LIST completed.",
    ]
    assert session.command("l5", 'LIST "" "*%*%*%*%*%*"') == [b"l5 BAD Command Argument Error. 11"]
    lines = session.command("l6", 'LSUB "" "Sent*"')
    assert lines == [b'* LSUB (\\HasNoChildren \\Sent) "/" "Sent Items"', b"l6 OK LSUB completed."]
    lines = session.command("l7", 'STATUS "Sent Items" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)')
    assert re.fullmatch(
        rb'\* STATUS "Sent Items" \(MESSAGES \d+ UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN \d+\)', lines[0]
    )
    assert lines[1] == b"l7 OK STATUS completed."


def test_id_namespace_logout(session: Raw) -> None:
    assert session.command("i1", 'ID ("name" "test")') == [
        b'* ID ("name" "Microsoft.Exchange.Imap4.Imap4Server" "version" "15.20")',
        b"i1 OK ID completed.",
    ]
    assert session.command("i2", "NAMESPACE") == [
        b'* NAMESPACE (("" "/")) NIL NIL',
        b"i2 OK NAMESPACE completed.",
    ]
    assert session.command("i3", "LOGOUT") == [
        b"* BYE Microsoft Exchange Server IMAP4 server signing off.",
        b"i3 OK LOGOUT completed.",
    ]
    assert session.closed()


def test_bad_commands_and_wrong_state(raw: Raw) -> None:
    raw.line()
    assert raw.command("x1", "SELECT INBOX") == [b"x1 BAD Command received in Invalid state."]
    assert raw.command("x2", "FROBNICATE") == [b"x2 BAD Command Error. 12"]
    assert raw.command("x3", "NOOP") == [b"x3 OK NOOP completed."]  # a good one resets the count
    assert raw.command("x4", "FROBNICATE") == [b"x4 BAD Command Error. 12"]
    assert raw.command("x5", "ENABLE CONDSTORE") == [b"x5 BAD Command received in Invalid state."]
    assert raw.command("x6", "FETCH") == [b"x6 BAD Command Argument Error. 12"]
    assert raw.line() == b"* BYE Connection closed. 14"
    assert raw.closed()


def test_messages_with_imaplib(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    client = imaplib.IMAP4_SSL(
        tenant.imap_host, tenant.imap_port, ssl_context=tenant.ssl_context(), timeout=10
    )
    with client:
        client.authenticate(
            "XOAUTH2", lambda _: f"user={alice}\x01auth=Bearer {alice_token}\x01\x01".encode()
        )
        assert client.create("Scratch/&ANwAbgDv-code")[0] == "OK"
        message = b"From: a@b.example\r\nSubject: test\r\n\r\n8-bit body: \xc3\xa9t\xc3\xa9\r\n"
        status, data = client.append("Scratch/&ANwAbgDv-code", "(\\Flagged)", None, message)
        assert status == "OK"
        assert re.fullmatch(rb"\[APPENDUID \d+ 1\] APPEND completed\.", data[0])
        assert client.select("Scratch/&ANwAbgDv-code") == ("OK", [b"1"])
        _, fetched = client.uid("FETCH", "1", "(FLAGS BODY.PEEK[])")
        assert fetched[0][1] == message
        assert b"\\Flagged" not in fetched[0][0]  # Office 365 drops it from an APPEND
        assert client.uid("STORE", "1", "+FLAGS", "(\\Flagged)")[0] == "OK"
        _, data = client.uid("FETCH", "1", "(BODY[HEADER.FIELDS (SUBJECT)])")
        assert data[0][1] == b"Subject: test\r\n\r\n"
        _, data = client.uid("FETCH", "1", "(FLAGS)")  # the BODY[] fetch above set \Seen
        assert b"\\Seen" in data[0]
        assert client.uid("STORE", "1", "+FLAGS", "(\\Deleted $Custom)")[0] == "OK"
        _, data = client.uid("FETCH", "1", "(FLAGS)")
        assert b"$Custom" not in data[0]  # PERMANENTFLAGS has no \*: keywords are dropped
        assert client.uid("SEARCH", None, "DELETED") == ("OK", [b"1"])
        assert client.uid("COPY", "1", "INBOX")[0] == "OK"
        _, codes = client.response("COPYUID")
        assert codes
        assert re.fullmatch(rb"\d+ 1 \d+", codes[-1])
        assert client.uid("MOVE", "1", "Drafts")[0] == "OK"
        assert client.select("Scratch/&ANwAbgDv-code") == ("OK", [b"0"])
        assert client.uid("COPY", "1:*", "INBOX")[0] == "OK"  # nothing to copy
        client.unselect()
        assert client.rename("Scratch", "Scratch2")[0] == "OK"
        assert client.delete("Scratch2/&ANwAbgDv-code")[0] == "OK"
        assert client.delete("Scratch2")[0] == "OK"
        client.logout()


def test_append_limit_and_trycreate(session: Raw) -> None:
    session.send("p1 APPEND Nowhere {5}")
    assert session.line() == b"p1 NO [TRYCREATE] The requested item could not be found."
    session.send("p2 APPEND INBOX {36700161}")  # 35 MB + 1: the default receive size
    assert session.line() == b"p2 NO Maximum size of appendable message has been exceeded"
    session.send("p3 APPEND INBOX {3000000000}")
    assert session.line() == b"p3 NO Maximum size of appendable message has been exceeded"
    assert session.command("p4", "NOOP") == [b"p4 OK NOOP completed."]


def test_append_before_sign_in_is_in_the_wrong_state(raw: Raw) -> None:
    raw.line()
    raw.send("q1 APPEND INBOX {3}")  # refused at once: the message is never sent
    assert raw.line() == b"q1 BAD Command received in Invalid state."
    # a non-synchronizing literal arrives anyway; the answer follows it
    assert raw.command("q2", "APPEND INBOX {3+}\r\nabc") == [
        b"q2 BAD Command received in Invalid state."
    ]


def test_non_synchronizing_append_is_answered_after_its_message(session: Raw) -> None:
    folder = f"Append{uuid.uuid4().hex[:8]}"
    session.command("s0", f"CREATE {folder}")
    assert session.command("s1", "APPEND Nowhere {5+}\r\nhello") == [
        b"s1 NO [TRYCREATE] The requested item could not be found."
    ]
    stored = session.command("s2", f"APPEND {folder} (\\Seen) {{5+}}\r\nhello")
    assert len(stored) == 1
    assert re.fullmatch(rb"s2 OK \[APPENDUID \d+ 1\] APPEND completed\.", stored[0])
    assert session.command("s3", f"DELETE {folder}") == [b"s3 OK DELETE completed."]


def test_plugin_sandbox_imap_fixture(sandbox_imap: imaplib.IMAP4_SSL) -> None:
    status, data = sandbox_imap.select("INBOX")
    assert status == "OK"
    assert int(data[0]) >= 0
    assert sandbox_imap.noop()[0] == "OK"


def test_expunge_close_and_error_texts(session: Raw, tenant: SandboxTenant, alice: str) -> None:
    session.command("c0", "CREATE Bin")
    uids = [
        tenant.exchange.deliver(alice, b"Subject: x\r\n\r\ny\r\n", folder="Bin") for _ in range(4)
    ]
    session.command("c1", "SELECT Bin")
    assert session.command("c2", "FETCH 9 (FLAGS)") == [
        b"c2 BAD The specified message set is invalid."
    ]
    assert session.command("c3", "SEARCH CHARSET KOI8-R ALL") == [
        b"c3 NO [BADCHARSET (US-ASCII)] The specified charset is not supported."
    ]
    assert session.command("c4", f"UID STORE {uids[0]}:{uids[2]} +FLAGS.SILENT (\\Deleted)") == [
        b"c4 OK STORE completed."
    ]
    assert session.command("c5", f"UID EXPUNGE {uids[1]}") == [
        b"* 2 EXPUNGE",
        b"c5 OK EXPUNGE completed.",
    ]
    assert session.command("c6", "EXPUNGE") == [
        b"* 2 EXPUNGE",
        b"* 1 EXPUNGE",
        b"c6 OK EXPUNGE completed.",
    ]
    assert session.command("c7", f"UID FETCH {uids[3]} (UID FLAGS)") == [
        b"* 1 FETCH (UID %d FLAGS ())" % uids[3],
        b"c7 OK FETCH completed.",
    ]
    assert session.command("c8", "UNSUBSCRIBE Bin") == [b"c8 OK UNSUBSCRIBE completed."]
    assert session.command("c9", 'LSUB "" Bin') == [b"c9 OK LSUB completed."]
    session.command("d0", f"UID STORE {uids[3]} +FLAGS (\\Deleted)")
    assert session.command("d1", "CLOSE") == [b"d1 OK CLOSE completed."]  # expunges silently
    assert session.command("d2", "STATUS Bin (MESSAGES)")[0] == b"* STATUS Bin (MESSAGES 0)"
    assert session.command("d3", "FETCH 1 (FLAGS)") == [
        b"d3 BAD Command received in Invalid state."
    ]
    assert session.command("d4", "DELETE Bin") == [b"d4 OK DELETE completed."]
    assert session.command("d5", b"NOOP \xc3\xa9") == [b"d5 BAD Command Error. 11"]
    # no CONDSTORE / QRESYNC on Exchange (1.3)
    assert session.command("d6", "SELECT INBOX (CONDSTORE)") == [
        b"d6 BAD Command Argument Error. 12"
    ]
    session.command("d7", "SELECT INBOX")  # a good command resets the bad-command count
    assert session.command("d8", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)") == [
        b"d8 BAD Command Argument Error. 12"
    ]


def test_own_rename_and_delete_of_the_selected_folder(session: Raw) -> None:
    session.command("r0", "CREATE Temp")
    session.command("r1", "SELECT Temp")
    assert session.command("r2", "RENAME Temp Temp2") == [b"r2 OK RENAME completed."]
    assert session.command("r3", "NOOP") == [b"r3 OK NOOP completed."]
    assert session.command("r4", "DELETE Temp2") == [b"r4 OK DELETE completed."]
    assert session.command("r5", "NOOP") == [b"r5 OK NOOP completed."]
    assert session.command("r6", "SELECT Temp2") == [b"r6 NO Temp2 doesn't exist."]


def test_folder_management_refusals_and_subscriptions(session: Raw) -> None:
    name = f"Mgmt{uuid.uuid4().hex[:8]}"
    missing = name + "Gone"
    not_found = b"NO The requested item could not be found."
    assert session.command("m0", f"CREATE {name}") == [b"m0 OK CREATE completed."]
    assert session.command("m1", f"CREATE {name}") == [b"m1 NO CREATE failed."]
    assert session.command("m2", f"DELETE {missing}") == [b"m2 " + not_found]
    assert session.command("m3", f"SUBSCRIBE {missing}") == [b"m3 " + not_found]
    assert session.command("m4", f"RENAME {missing} {name}2") == [b"m4 " + not_found]
    assert session.command("m5", f"UNSUBSCRIBE {missing}") == [b"m5 OK UNSUBSCRIBE completed."]
    # a RENAME carries the subscriptions of the folder and of its children along
    session.command("m6", f"CREATE {name}/Child")
    assert session.command("m7", f"RENAME {name} {name}New") == [b"m7 OK RENAME completed."]
    assert session.command("m8", f'LSUB "" {name}*') == [
        b'* LSUB (\\HasChildren) "/" %sNew' % name.encode(),
        b'* LSUB (\\HasNoChildren) "/" %sNew/Child' % name.encode(),
        b"m8 OK LSUB completed.",
    ]
    assert session.command("m9", f"UNSUBSCRIBE {name}New/Child") == [
        b"m9 OK UNSUBSCRIBE completed."
    ]
    assert session.command("n0", f"SUBSCRIBE {name}New/Child") == [b"n0 OK SUBSCRIBE completed."]
    session.command("n1", f"SELECT {name}New")
    assert session.command("n2", "UNSELECT") == [b"n2 OK UNSELECT completed."]
    assert session.command("n3", "FETCH 1 (FLAGS)") == [
        b"n3 BAD Command received in Invalid state."
    ]
