"""A real browser (Debian's chromium, driven by Playwright) signs in to the console through
the sandbox's identity pages and reads a hostile message: the page shows the message's
script as text, the body renders in its sandboxed frame, nothing runs (no dialog, the title
stays), and no request leaves for a remote host."""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from exoimap.console.archives import Mailboxes
from exoimap.console.server import ConsoleServer
from exoimap.console.sessions import SessionStore
from exoimap.console.signin import SignIn
from exoimap.console.trail import Trail
from exoimap.console.web import Console, build_app
from exoimap.net.listen import listening_socket
from exoimap.store.archive import active_holds

from .conftest import ConsoleWorld
from .hostile import REMOTE

CHROMIUM = "/usr/bin/chromium"
#: Set to a folder to keep screenshots of the main pages (docs/images/console has them).
SCREENSHOTS = os.environ.get("EXOIMAP_CONSOLE_SCREENSHOTS")


def _shot(page: Page, name: str, fallback: Path) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else fallback
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "install Debian's chromium (tools/system-packages)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def console_url(world: ConsoleWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The console served over TLS (a certificate from the sandbox's CA) on a free port."""
    tls = world.tenant.identity.ca.issue(
        ("127.0.0.1",), folder=tmp_path_factory.mktemp("console-tls"), stem="console"
    )
    sock = listening_socket("127.0.0.1", 0)
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    admin_scope = {**world.settings.scopes, "admin": (f"*@{world.tenant.tenant_domain}",)}
    settings = dataclasses.replace(world.settings, public_url=url, scopes=admin_scope)
    world.tenant.admin.add_redirect_uri(world.app_name, settings.redirect_uri)
    sessions = SessionStore(idle=settings.idle_timeout, absolute=settings.absolute_timeout)
    console = Console(
        settings, Mailboxes(world.paths), sessions, SignIn(settings), Trail(world.auditor)
    )
    server = ConsoleServer(build_app(console), sock, cert=tls.cert_file, key=tls.key_file)
    server.start()
    try:
        yield url
    finally:
        server.stop()


def _sign_in(page: Page, url: str, upn: str, password: str) -> None:
    page.goto(url + "/")
    assert urlsplit(page.url).path == "/signin"
    page.click("#signin")
    page.fill("input[name=login]", upn)
    page.fill("input[name=passwd]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_auditor_signs_in_and_reads_a_hostile_message_safely(
    world: ConsoleWorld, browser: Browser, console_url: str, tmp_path: Path
) -> None:
    context = browser.new_context(ignore_https_errors=True)  # the sandbox CA is private
    page = context.new_page()
    page.set_default_timeout(15_000)
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    upn, password = world.users["auditor"]
    _sign_in(page, console_url, upn, password)
    assert page.text_content("#roles") == "auditor"
    _shot(page, "mailboxes", tmp_path)
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["__Host-exoimap-console"]
    assert session["httpOnly"]
    assert session["secure"]
    assert session["sameSite"] == "Strict"

    page.click("a[href='/m/other']")
    _shot(page, "folders", tmp_path)
    page.click("text=INBOX")
    _shot(page, "messages", tmp_path)
    page.click("text=invoice")
    subject = page.text_content("#subject") or ""
    assert subject.startswith("<script>alert('subject')</script> invoice")
    body = page.frame_locator("#body")
    expect(body.locator("p", has_text="Hello from the archive")).to_be_visible()
    expect(body.locator("text=overlay")).to_be_visible()
    _shot(page, "message", tmp_path)

    page.click("#nav-search")
    page.fill("input[name=q]", "invoice has:attachment")
    page.click("form.search button")
    expect(page.locator("#hit-count")).to_contain_text("messages")
    page.fill("input[name=q]", "from:attacker.example")
    page.click("form.search button")
    expect(page.locator("#hit-count")).to_have_text("2 messages, page 1 of 1")  # own, other
    _shot(page, "search", tmp_path)

    assert dialogs == []
    assert page.title() == "exoimap console"
    assert [u for u in requests if REMOTE in u] == []
    assert {urlsplit(u).netloc for u in requests} <= {
        urlsplit(console_url).netloc,
        urlsplit(world.tenant.identity_url).netloc,
    }
    context.close()


def test_mailbox_owner_cannot_reach_another_mailbox_by_url(
    world: ConsoleWorld, browser: Browser, console_url: str
) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    upn, password = world.users["self"]
    _sign_in(page, console_url, upn, password)
    assert page.locator("a[href='/m/own']").count() == 1
    assert page.locator("a[href='/m/other']").count() == 0
    response = page.goto(console_url + "/m/other/message?folder=INBOX&uid=1")
    assert response is not None
    assert response.status == 404
    own = page.goto(console_url + "/m/own/message?folder=INBOX&uid=1")
    assert own is not None
    assert own.status == 200
    context.close()


def test_four_eyes_with_two_officers_in_two_browsers(
    world: ConsoleWorld, browser: Browser, console_url: str, tmp_path: Path
) -> None:
    """One officer places a hold and asks to release it, cannot approve that herself; a
    second officer approves; the first carries it out."""
    admin = world.tenant.admin
    password = f"Pw-{uuid.uuid4().hex}"
    second = admin.create_user(
        f"officer-b-{uuid.uuid4().hex[:6]}@{world.tenant.tenant_domain}", password=password
    )
    admin.assign_app_role(world.app_name, second.upn, "compliance_officer")
    first_context = browser.new_context(ignore_https_errors=True)
    second_context = browser.new_context(ignore_https_errors=True)
    first, other = first_context.new_page(), second_context.new_page()
    for page in (first, other):
        page.set_default_timeout(15_000)
    _sign_in(first, console_url, *world.users["compliance_officer"])
    _sign_in(other, console_url, second.upn, password)

    first.click("#nav-approvals")
    first.fill("#new-hold input[name=account]", "own")
    first.fill("#new-hold input[name=reason]", "litigation hold, case 17")
    first.click("#new-hold button")
    expect(first.locator("#notice")).to_contain_text("placed")
    hold = (first.text_content("#holds tbody td") or "").strip()
    first.select_option("#new-request select[name=kind]", "release_hold")
    first.fill("#new-request input[name=account]", "own")
    first.fill("#new-request input[name=hold]", hold)
    first.fill("#new-request input[name=reason]", "the case is closed")
    first.click("#new-request button")
    expect(first.locator("#notice")).to_contain_text("filed")
    request_id = (first.text_content("#notice") or "").split()[1]
    row = f"#request-{request_id}"
    first.click(f"{row} button.approve")  # her own: refused
    expect(first.locator("main")).to_contain_text("you cannot approve your own request")

    other.goto(console_url + "/approvals")
    expect(other.locator(f"{row} .state")).to_have_text("pending")
    _shot(other, "approvals", tmp_path)
    other.click(f"{row} button.approve")
    expect(other.locator(f"{row} .state")).to_contain_text("approved")
    expect(other.locator(f"{row} button.run")).to_have_count(0)  # not hers to carry out

    first.goto(console_url + "/approvals")
    first.click(f"{row} button.run")
    expect(first.locator("#notice")).to_contain_text(f"hold {hold} on")
    expect(first.locator("#notice")).to_contain_text("released")
    assert active_holds(world.paths.archive_dir("own")) == []
    first_context.close()
    second_context.close()


def test_admin_breaks_the_glass_for_one_mailbox_and_ends_it(
    world: ConsoleWorld, browser: Browser, console_url: str, tmp_path: Path
) -> None:
    """No content without it; a reason, the password again at the identity platform, a
    banner on every page while it lasts, one mailbox only, and ended by a click."""
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    upn, password = world.users["admin"]
    _sign_in(page, console_url, upn, password)
    message = console_url + "/m/other/message?folder=INBOX&uid=1"
    refused = page.goto(message)
    assert refused is not None
    assert refused.status == 404

    page.goto(console_url + "/")
    assert page.locator("a[href='/m/other']").count() == 0
    row = page.locator("#mailboxes tr", has_text=world.accounts["other"])
    row.locator("input[name=reason]").fill("<b>Incident 9</b>: account takeover")
    row.locator("button").click()
    page.wait_for_url(lambda url: "prompt=login" in url)  # the identity platform asks again
    page.fill("input[name=login]", upn)
    page.fill("input[name=passwd]", password)
    page.click("button[type=submit]")
    page.wait_for_url(console_url + "/")

    banner = page.locator("#break-glass")
    expect(banner).to_contain_text(world.accounts["other"])
    expect(banner).to_contain_text("<b>Incident 9</b>: account takeover")  # shown as text
    _shot(page, "break-glass", tmp_path)
    page.click("a[href='/m/other']")
    expect(page.locator("#break-glass")).to_be_visible()
    opened = page.goto(message)
    assert opened is not None
    assert opened.status == 200
    expect(page.locator("#subject")).to_have_text("Quarterly numbers")
    expect(page.locator("#break-glass")).to_be_visible()
    own = page.goto(console_url + "/m/own/message?folder=INBOX&uid=1")
    assert own is not None
    assert own.status == 404  # the other mailboxes stay closed

    page.goto(console_url + "/")
    page.click("#end-break-glass")
    expect(page.locator("#break-glass")).to_have_count(0)
    ended = page.goto(message)
    assert ended is not None
    assert ended.status == 404
    assert dialogs == []
    states = [r.data["state"] for r in world.records("console.break_glass")]
    assert states[-3:] == ["asked", "started", "ended"]
    context.close()
