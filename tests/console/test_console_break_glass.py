"""Break-glass over HTTP, signing in (and in again) through the sandbox's identity pages:
an admin reads no mail, asks for one mailbox with a reason, confirms by a second sign-in
(``prompt=login``), reads that mailbox only while the grant lasts, and can end it; every
step is in the audit log that compliance officers and audit readers see."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from exoimap.console.web import Console
from exoimap.sandbox.identity import SignInRobot

from .conftest import ConsoleWorld, TestClient

MESSAGE = "folder=INBOX&uid=1"
REASON = 'Incident 4711: <script>alert("reason")</script> mailbox seized'


class Clock:
    """The wall clock the console's break-glass expiry reads, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def console(world: ConsoleWorld, clock: Clock) -> Console:
    """The world's console, with an admin scope over the tenant's domain."""
    domain = world.tenant.tenant_domain
    scopes = {**world.settings.scopes, "admin": (f"*@{domain}",)}
    found = world.console()
    found.settings = dataclasses.replace(world.settings, scopes=scopes, break_glass_minutes=30)
    found.wall_clock = clock
    return found


def _csrf(client: TestClient) -> str:
    return re.findall(r'name="csrf_token" value="([^"]+)"', client.get("/").text)[0]


def _ask(world: ConsoleWorld, client: TestClient, account: str, reason: str) -> str:
    """Asks for break-glass on ``account``; the identity platform's URL to sign in again."""
    asked = client.post(
        f"/m/{account}/breakglass", data={"csrf_token": _csrf(client), "reason": reason}
    )
    assert asked.status_code == 303, asked.text
    return asked.headers["location"]


def _sign_in_again(world: ConsoleWorld, client: TestClient, auth_url: str, person: str) -> str:
    outcome = SignInRobot(world.identity_http()).sign_in(auth_url, *world.users[person])
    assert outcome.redirect_uri == world.settings.redirect_uri, outcome
    done = client.post("/auth/callback", data=outcome.params)
    return f"{done.status_code} {done.text}"


def _reach(client: TestClient) -> dict[str, int]:
    paths = (
        f"/m/other/message?{MESSAGE}",
        f"/m/other/body?{MESSAGE}",
        "/m/other/folder?name=INBOX",
        f"/m/other/eml?{MESSAGE}",
        f"/m/own/message?{MESSAGE}",
        f"/m/outside/message?{MESSAGE}",
        "/search?q=quarterly",
    )
    return {path: client.get(path).status_code for path in paths}


NOTHING = {
    f"/m/other/message?{MESSAGE}": 404,
    f"/m/other/body?{MESSAGE}": 404,
    "/m/other/folder?name=INBOX": 404,
    f"/m/other/eml?{MESSAGE}": 404,
    f"/m/own/message?{MESSAGE}": 404,
    f"/m/outside/message?{MESSAGE}": 404,
    "/search?q=quarterly": 403,
}


def test_an_admin_reads_one_mailbox_only_while_break_glass_lasts(
    world: ConsoleWorld, console: Console, clock: Clock
) -> None:
    client = world.client(console)
    world.sign_in(client, "admin")
    assert _reach(client) == NOTHING  # no content, not even by direct URL
    assert 'id="break-glass"' not in client.get("/").text

    auth_url = _ask(world, client, "other", REASON)
    assert parse_qs(urlsplit(auth_url).query)["prompt"] == ["login"]
    assert 'id="break-glass"' not in client.get("/").text  # nothing before the sign-in again
    assert _sign_in_again(world, client, auth_url, "admin").startswith("200")

    page = client.get(f"/m/other/message?{MESSAGE}")
    assert page.status_code == 200
    assert "Quarterly numbers" in page.text
    banner = page.text.split('id="break-glass"')[1].split("</div>")[0]
    assert world.accounts["other"] in banner
    assert "Incident 4711: &lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt;" in banner
    assert "<script>" not in banner
    assert _reach(client) == {
        **NOTHING,
        f"/m/other/message?{MESSAGE}": 200,
        f"/m/other/body?{MESSAGE}": 200,
        "/m/other/folder?name=INBOX": 200,
        "/search?q=quarterly": 200,
    }
    found = client.get("/search", params={"q": "quarterly"}).text
    assert "/m/other/message?" in found
    assert "/m/own/message?" not in found
    assert 'id="break-glass"' in client.get("/dashboard").text  # on every page

    clock.now += 30 * 60 - 1
    assert client.get(f"/m/other/message?{MESSAGE}").status_code == 200
    clock.now += 1
    assert _reach(client) == NOTHING  # expired
    assert 'id="break-glass"' not in client.get("/").text

    states = [
        (r.data["state"], r.data["mailbox"], r.outcome)
        for r in world.records("console.break_glass")
    ]
    other = world.accounts["other"]
    assert states[-3:] == [
        ("asked", other, "success"),
        ("started", other, "success"),
        ("expired", other, "success"),
    ]
    started = world.records("console.break_glass")[-2]
    assert started.data["reason"] == REASON
    assert started.actor["console_user"] == world.users["admin"][0]
    assert started.data["expires"].startswith("2027-01-15T08:30:00")


def test_break_glass_can_be_ended_early(
    world: ConsoleWorld, console: Console, clock: Clock
) -> None:
    client = world.client(console)
    world.sign_in(client, "admin")
    auth_url = _ask(world, client, "own", "user locked out, ticket 12")
    assert _sign_in_again(world, client, auth_url, "admin").startswith("200")
    assert client.get(f"/m/own/message?{MESSAGE}").status_code == 200
    assert client.get(f"/m/other/message?{MESSAGE}").status_code == 404
    ended = client.post("/breakglass/end", data={"csrf_token": _csrf(client)})
    assert ended.status_code == 303
    assert client.get(f"/m/own/message?{MESSAGE}").status_code == 404
    assert world.records("console.break_glass")[-1].data["state"] == "ended"


@pytest.mark.parametrize(
    ("account", "reason", "status"),
    [
        ("other", "", 400),  # a reason is required
        ("other", "   \n\t ", 400),
        ("other", "x" * 501, 400),  # and bounded
        ("outside", "a good reason", 404),  # outside the admin scope: no such mailbox
        ("nonexistent", "a good reason", 404),
    ],
)
def test_break_glass_needs_a_reason_and_a_mailbox_in_scope(
    world: ConsoleWorld, console: Console, account: str, reason: str, status: int
) -> None:
    client = world.client(console)
    world.sign_in(client, "admin")
    asked = client.post(
        f"/m/{account}/breakglass", data={"csrf_token": _csrf(client), "reason": reason}
    )
    assert asked.status_code == status
    assert _reach(client) == NOTHING


def test_only_admins_break_glass_and_only_they_can_confirm_it(
    world: ConsoleWorld, console: Console
) -> None:
    for person in ("auditor", "compliance_officer", "self", "audit_reader"):
        client = world.client(console)
        world.sign_in(client, person)
        refused = client.post(
            "/m/other/breakglass", data={"csrf_token": _csrf(client), "reason": "curious"}
        )
        assert refused.status_code == 404, person
    # the second sign-in by someone else (here: the auditor) confirms nothing
    client = world.client(console)
    world.sign_in(client, "admin")
    auth_url = _ask(world, client, "other", "a colleague's password would do")
    outcome = _sign_in_again(world, client, auth_url, "auditor")
    assert outcome.startswith("403")
    assert "not by the administrator who asked" in outcome
    assert _reach(client) == NOTHING
    last = world.records("console.break_glass")[-1]
    assert (last.data["state"], last.outcome) == ("refused", "denied")


def test_compliance_officers_and_audit_readers_see_break_glass_in_the_audit_view(
    world: ConsoleWorld, console: Console
) -> None:
    client = world.client(console)
    world.sign_in(client, "admin")
    _sign_in_again(world, client, _ask(world, client, "other", REASON), "admin")
    for person in ("compliance_officer", "audit_reader"):
        reader = world.client(console)
        world.sign_in(reader, person)
        page = reader.get("/audit", params={"event": "console.break_glass"}).text
        assert "state=started" in page, person
        assert "reason=Incident 4711: &lt;script&gt;" in page
        assert world.users["admin"][0] in page
    assert world.client(console).get("/audit").status_code == 303  # not signed in
