"""Hostile mail in the console: subjects, senders, folder names and bodies are shown as
text or sanitised HTML, never as markup of the page, and the body is served apart with a
policy under which nothing runs or loads."""

from __future__ import annotations

import email
import email.policy
import html
import re

import pytest
from markupsafe import escape

from exoimap.console.mail_view import BODY_CSP, read_message, sanitise, web_text

from .conftest import ConsoleWorld, TestClient
from .hostile import (
    ATTACHMENT,
    ATTACHMENT_NAME,
    BIDI,
    HOSTILE_FOLDER,
    HTML_BODY,
    REMOTE,
    SCRIPT_FROM,
    SCRIPT_SUBJECT,
    TEXT_BODY,
    markup_problems,
    mime,
)


@pytest.fixture(scope="module")
def auditor(world: ConsoleWorld) -> TestClient:
    client = world.client()
    world.sign_in(client, "auditor")
    return client


def _inbox_uid(client: TestClient, subject_fragment: str) -> str:
    return _uid_in(client, "other", subject_fragment)


def _uid_in(client: TestClient, account: str, subject_fragment: str) -> str:
    """The UID of the INBOX message whose row (in the message list) has the fragment."""
    page = client.get(f"/m/{account}/folder", params={"name": "INBOX"}).text
    for row in re.findall(r"<tr>.*?</tr>", page, flags=re.S):
        if subject_fragment in row:
            found = re.search(r"uid=(\d+)", row)
            assert found is not None, row
            return found.group(1)
    raise AssertionError(f"no row with {subject_fragment!r}")


def _assert_inert(text: str) -> None:
    assert markup_problems(text) == []
    assert BIDI not in text


def test_hostile_subject_and_sender_are_escaped_in_the_message_list(auditor: TestClient) -> None:
    page = auditor.get("/m/other/folder", params={"name": "INBOX"}).text
    _assert_inert(page)
    assert str(escape(web_text(SCRIPT_SUBJECT))) in page
    assert str(escape(SCRIPT_FROM)) in page


def test_hostile_folder_name_is_escaped_in_links_and_text(auditor: TestClient) -> None:
    folders = auditor.get("/m/other").text
    _assert_inert(folders)
    assert "&#34;&gt;&lt;script&gt;" in folders or "&quot;&gt;&lt;script&gt;" in folders
    inside = auditor.get("/m/other/folder", params={"name": HOSTILE_FOLDER})
    assert inside.status_code == 200
    _assert_inert(inside.text)
    assert "in a hostile folder" in inside.text


def test_hostile_message_page_shows_headers_as_text_and_frames_the_body(
    auditor: TestClient,
) -> None:
    uid = _inbox_uid(auditor, "invoice")
    page = auditor.get("/m/other/message", params={"folder": "INBOX", "uid": uid})
    assert page.status_code == 200
    _assert_inert(page.text)
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt; invoice fdp.exe" in page.text
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame is not None
    assert " sandbox " in frame.group(0)  # the attribute with no allowances
    assert "srcdoc" not in frame.group(0)
    assert f'src="/m/other/body?folder=INBOX&amp;uid={uid}"' in frame.group(0)


def test_hostile_html_body_is_sanitised_and_served_under_a_sandbox_policy(
    auditor: TestClient,
) -> None:
    uid = _inbox_uid(auditor, "invoice")
    body = auditor.get("/m/other/body", params={"folder": "INBOX", "uid": uid})
    assert body.status_code == 200
    assert body.headers["content-security-policy"] == BODY_CSP
    assert body.headers["x-content-type-options"] == "nosniff"
    _assert_inert(body.text)
    assert REMOTE not in body.text.replace(f"https://{REMOTE}/refresh", "")  # no loads left
    assert "Hello from the archive" in body.text
    assert "overlay" in body.text  # the text stays, the overlay style goes


def test_plain_text_body_cannot_close_its_pre(auditor: TestClient) -> None:
    uid = _inbox_uid(auditor, ">plain<")
    body = auditor.get("/m/other/body", params={"folder": "INBOX", "uid": uid}).text
    _assert_inert(body)
    assert html.escape(TEXT_BODY) in body


def test_the_checker_sees_every_trick_of_the_raw_corpus() -> None:
    """The checks above would fail if a page carried the corpus as it came."""
    found = set(markup_problems(HTML_BODY))
    assert {"<script>", "<svg>", "<meta>", "<style>", "<object>", "a form"} <= found
    assert {"an onerror handler", "an onload handler", "a positioned overlay"} <= found
    assert {"a remote image", "an iframe without sandbox", "a javascript: URL"} <= found
    assert "a data:text/h URL" in found
    assert markup_problems(sanitise(HTML_BODY)) == []


def test_the_sanitiser_keeps_harmless_style_and_cid_images_only() -> None:
    cleaned = sanitise(
        '<p style="color: red; position: fixed">x</p><img src="cid:logo"><img src="https://x/y">'
    )
    assert cleaned == '<p style="color:red">x</p><img src="cid:logo"><img>'


def test_read_message_survives_broken_headers_and_charsets() -> None:
    raw = (
        b'Subject: =?x-unknown?q?caf=E9?=\r\nFrom: "unterminated <a@b\r\n'
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9 \x1b[31m\r\n"
    )
    shown = read_message(raw)
    assert "\x1b" not in shown.subject + shown.sender
    assert shown.text_body is not None
    assert "caf" in shown.text_body
    assert read_message(mime(SCRIPT_SUBJECT, SCRIPT_FROM, HTML_BODY, None)).subject.endswith(
        "invoice fdp.exe"
    )


def test_owner_downloads_the_eml_and_a_hostile_attachment_only_as_files(
    world: ConsoleWorld,
) -> None:
    owner = world.client()
    world.sign_in(owner, "self")
    uid = _uid_in(owner, "own", "with an attachment")
    page = owner.get("/m/own/message", params={"folder": "INBOX", "uid": uid}).text
    _assert_inert(page)
    assert str(escape(ATTACHMENT_NAME)) in page  # shown as text
    eml = owner.get("/m/own/eml", params={"folder": "INBOX", "uid": uid})
    assert eml.status_code == 200
    saved = email.message_from_bytes(eml.content, policy=email.policy.default)
    assert saved["Message-ID"] == "<attachment@example.com>"
    assert [p.get_content() for p in saved.iter_attachments()] == [ATTACHMENT.decode()]
    assert eml.headers["content-type"] == "message/rfc822"
    assert eml.headers["content-disposition"].startswith("attachment;")
    part = owner.get("/m/own/attachment", params={"folder": "INBOX", "uid": uid, "part": 1})
    assert part.status_code == 200
    assert part.content == ATTACHMENT
    assert part.headers["content-type"] == "application/octet-stream"
    assert part.headers["x-content-type-options"] == "nosniff"
    assert part.headers["content-security-policy"].startswith("sandbox")
    disposition = part.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="__evil__script_.html"')
    assert (
        owner.get(
            "/m/own/attachment", params={"folder": "INBOX", "uid": uid, "part": 2}
        ).status_code
        == 404
    )
    # an auditor may read the message, not take its files
    auditor = world.client()
    world.sign_in(auditor, "auditor")
    assert (
        "/m/own/attachment?"
        not in auditor.get("/m/own/message", params={"folder": "INBOX", "uid": uid}).text
    )
    assert (
        auditor.get(
            "/m/own/attachment", params={"folder": "INBOX", "uid": uid, "part": 1}
        ).status_code
        == 404
    )
