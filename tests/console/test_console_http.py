"""The console over HTTP: each role x route as the policy says (default deny), sessions,
sign-out, CSRF, and the audit trail of every request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.config import Paths
from exoimap.console.web import PAGE_CSP, PUBLIC_PATHS, build_app
from exoimap.sandbox.identity import SignInRobot

from .conftest import PEOPLE, PUBLIC_URL, ConsoleWorld, TestClient

INBOX_MESSAGE = "folder=INBOX&uid=1"
#: path -> the people who may open it (everyone else gets 403 on "/", 404 on a mailbox).
ALLOWED: dict[str, set[str]] = {
    "/": {"self", "restore_operator", "auditor", "compliance_officer", "admin"},
    "/m/own": {"self", "restore_operator", "auditor"},
    "/m/own/folder?name=INBOX": {"self", "restore_operator", "auditor"},
    f"/m/own/message?{INBOX_MESSAGE}": {"self", "auditor"},
    f"/m/own/body?{INBOX_MESSAGE}": {"self", "auditor"},
    "/m/other": {"restore_operator", "auditor"},
    "/m/other/folder?name=INBOX": {"restore_operator", "auditor"},
    f"/m/other/message?{INBOX_MESSAGE}": {"auditor"},
    f"/m/other/body?{INBOX_MESSAGE}": {"auditor"},
    "/m/outside": set(),
    "/m/outside/folder?name=INBOX": set(),
    f"/m/outside/message?{INBOX_MESSAGE}": set(),
    f"/m/outside/body?{INBOX_MESSAGE}": set(),
    f"/m/own/eml?{INBOX_MESSAGE}": {"self"},
    f"/m/own/attachment?{INBOX_MESSAGE}&part=1": set(),  # message 1 has none: 404 for all
    f"/m/other/eml?{INBOX_MESSAGE}": set(),
    "/m/nonexistent": set(),
    "/audit": {"audit_reader", "compliance_officer"},
    "/dashboard": {"admin"},
    "/search?q=quarterly": {"self", "restore_operator", "auditor"},
    "/audit?event=console.*&outcome=denied": {"audit_reader", "compliance_officer"},
}


@pytest.mark.parametrize("person", PEOPLE)
def test_each_role_reaches_exactly_what_the_policy_allows(
    signed_in: dict[str, TestClient], person: str
) -> None:
    client = signed_in[person]
    for path, allowed in ALLOWED.items():
        response = client.get(path)
        refused = 404 if path.startswith("/m/") else 403
        expected = 200 if person in allowed else refused
        assert response.status_code == expected, (person, path, response.text[:300])


def _csrf_token(client: TestClient) -> str:
    return client.get("/").text.split('name="csrf_token" value="')[1].split('"')[0]


@pytest.mark.parametrize("person", PEOPLE)
def test_each_role_may_ask_for_a_restore_exactly_where_the_policy_allows(
    signed_in: dict[str, TestClient], person: str
) -> None:
    """These archives have no signed-in account behind them: a restore the policy lets
    through fails at sign-in (502); one it refuses never starts (404)."""
    client = signed_in[person]
    token = _csrf_token(client)
    allowed = {"own": {"self", "restore_operator"}, "other": {"restore_operator"}, "outside": set()}
    for account, people in allowed.items():
        form = {"csrf_token": token, "folder": "INBOX", "uid": "1"}
        response = client.post(f"/m/{account}/restore", data=form)
        if person in people:
            assert response.status_code == 502, (person, account, response.text[:300])
            assert "Restore failed" in response.text
        else:
            assert response.status_code == 404, (person, account)
        without_token = client.post(f"/m/{account}/restore", data=dict(form, csrf_token="x"))
        assert without_token.status_code == 403


def test_the_mailbox_list_shows_each_role_its_own_mailboxes(
    signed_in: dict[str, TestClient],
) -> None:
    def listed(person: str) -> dict[str, bool]:
        page = signed_in[person].get("/").text
        return {
            name: f'href="/m/{name}"' in page
            for name in ("own", "other", "outside")
            if f">{name}<" in page or f'href="/m/{name}"' in page
        }

    assert listed("self") == {"own": True}
    assert listed("auditor") == {"own": True, "other": True}
    assert listed("restore_operator") == {"own": True, "other": True}
    # administrators see every account, and no way into any of them
    assert listed("admin") == {"own": False, "other": False, "outside": False}
    assert listed("compliance_officer") == {"own": False, "other": False, "outside": False}


def test_restore_operator_sees_headers_but_no_links_to_content(
    signed_in: dict[str, TestClient],
) -> None:
    operator = signed_in["restore_operator"].get("/m/other/folder?name=INBOX").text
    auditor = signed_in["auditor"].get("/m/other/folder?name=INBOX").text
    assert "Quarterly numbers" in operator
    assert "Quarterly numbers" in auditor
    assert "/m/other/message?" not in operator
    assert "/m/other/message?" in auditor


def test_every_route_but_the_sign_in_pages_is_guarded(world: ConsoleWorld) -> None:
    """Default deny: without a session every other route sends to the sign-in page."""
    app = build_app(world.console())
    client = TestClient(app, base_url=PUBLIC_URL, follow_redirects=False)
    starlette = app.app  # type: ignore[attr-defined]
    paths = [route.path for route in starlette.routes]
    guarded = [p for p in paths if not p.startswith(PUBLIC_PATHS)]
    assert len(guarded) == 19
    for path in guarded:
        concrete = path.replace("{account}", "own")
        posts = (
            "/signout",
            "/m/{account}/restore",
            "/approvals/new",
            "/approvals/decide",
            "/approvals/run",
            "/holds",
            "/m/{account}/breakglass",
            "/breakglass/end",
        )
        response = client.post(concrete) if path in posts else client.get(concrete)
        assert response.status_code in (303, 403), path
        if response.status_code == 303:
            assert response.headers["location"] == "/signin"


def test_audit_reader_sees_the_console_records_and_nothing_else(
    world: ConsoleWorld, signed_in: dict[str, TestClient]
) -> None:
    signed_in["admin"].get("/m/own/message?folder=INBOX&uid=1")  # refused, audited
    reader = signed_in["audit_reader"]
    assert 'id="nav-audit"' in reader.get("/audit").text
    assert 'id="nav-audit"' not in signed_in["auditor"].get("/").text
    page = reader.get("/audit", params={"event": "console.*", "outcome": "denied"}).text
    assert world.users["admin"][0] in page
    assert "resource=/m/own/message?folder=INBOX&amp;uid=1" in page
    outcomes = re.findall(r"<td>(success|failure|denied)</td>", page)
    assert set(outcomes) == {"denied"}
    bad = reader.get("/audit", params={"outcome": "maybe"})
    assert bad.status_code == 400


def test_admin_dashboard_shows_accounts_syncs_and_failures_without_mail(
    world: ConsoleWorld, signed_in: dict[str, TestClient]
) -> None:
    world.auditor.emit(audit.AccountSynced(account="own", copied=7, folders=2))
    world.auditor.emit(
        audit.AccountSynced(account="other", outcome="failure", error="<b>locked</b>")
    )
    admin = signed_in["admin"]
    assert 'id="nav-dashboard"' in admin.get("/").text
    page = admin.get("/dashboard").text
    rows = {
        cells[0]: cells
        for cells in (
            re.findall(r"<td[^>]*>(.*?)</td>", row)
            for row in re.findall(r"<tr>.*?</tr>", page, flags=re.S)
        )
        if cells
    }
    assert rows["own"][2] == "5"  # INBOX 4 + the hostile folder's 1
    assert rows["own"][3].endswith("Z")
    assert rows["own"][4] == "7"
    assert rows["other"][5].endswith("Z")
    assert rows["other"][6] == "&lt;b&gt;locked&lt;/b&gt;"
    assert "Quarterly numbers" not in page
    # today's bar of the sync-history chart: inline SVG, nothing loaded from elsewhere
    bars = re.findall(
        r'<g class="day" data-day="[-0-9]+" data-runs="(\d+)" data-failures="(\d+)" '
        r'data-copied="(\d+)">',
        page,
    )
    assert len(bars) == 14
    runs, failures, copied = (int(n) for n in bars[-1])  # today
    assert runs >= 2
    assert failures >= 1
    assert copied >= 7
    assert "http" not in page.split('<svg id="history"')[1].replace(
        "http://www.w3.org/2000/svg", ""
    )


def test_pages_carry_the_security_headers(signed_in: dict[str, TestClient]) -> None:
    response = signed_in["auditor"].get("/")
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "max-age" in response.headers["strict-transport-security"]


def test_session_cookie_is_host_only_secure_httponly_strict(world: ConsoleWorld) -> None:
    client = world.client()
    start = client.get("/auth/start")
    flow_cookie = start.headers["set-cookie"]
    assert "__Secure-exoimap-signin=" in flow_cookie
    assert "HttpOnly" in flow_cookie
    assert "Secure" in flow_cookie
    assert "SameSite=none" in flow_cookie
    upn, password = world.users["auditor"]
    outcome = SignInRobot(world.identity_http()).sign_in(start.headers["location"], upn, password)
    done = client.post("/auth/callback", data=outcome.params)
    cookies = done.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("__Host-exoimap-console="))
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute in session, session
    assert "Domain" not in session


def test_a_session_id_given_before_sign_in_is_never_used(world: ConsoleWorld) -> None:
    """Session fixation: a cookie planted before sign-in is replaced, not adopted."""
    client = world.client()
    client.cookies.set("__Host-exoimap-console", "planted-by-attacker", domain="testserver")
    world.sign_in(client, "auditor")
    values = {c.value for c in client.cookies.jar if c.name == "__Host-exoimap-console"}
    assert len(values - {"planted-by-attacker"}) == 1  # the server issued its own id
    attacker = world.client()
    attacker.cookies.set("__Host-exoimap-console", "planted-by-attacker", domain="testserver")
    assert attacker.get("/").status_code == 303


def test_a_replayed_or_forged_callback_signs_nobody_in(world: ConsoleWorld) -> None:
    client = world.client()
    assert client.post("/auth/callback", data={"code": "x", "state": "y"}).status_code == 400
    start = client.get("/auth/start")
    upn, password = world.users["auditor"]
    outcome = SignInRobot(world.identity_http()).sign_in(start.headers["location"], upn, password)
    forged = dict(outcome.params, state="another-state")
    assert client.post("/auth/callback", data=forged).status_code == 400
    assert client.get("/").status_code == 303  # still signed out


def test_idle_and_absolute_timeouts_end_the_session(world: ConsoleWorld) -> None:
    clock = [1000.0]
    console = world.console()
    console.sessions = type(console.sessions)(idle=60, absolute=300, clock=lambda: clock[0])
    client = world.client(console)
    world.sign_in(client, "auditor")
    assert client.get("/").status_code == 200
    clock[0] += 59
    assert client.get("/").status_code == 200  # activity keeps it alive
    clock[0] += 61
    assert client.get("/").status_code == 303  # idle too long
    world.sign_in(client, "auditor")
    for _ in range(6):
        clock[0] += 55
        client.get("/")
    assert client.get("/").status_code == 303  # past the absolute limit despite activity


def test_sign_out_needs_the_csrf_token_and_ends_the_session(world: ConsoleWorld) -> None:
    client = world.client()
    world.sign_in(client, "auditor")
    page = client.get("/").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/signout", data={}).status_code == 403
    assert client.post("/signout", data={"csrf_token": "wrong"}).status_code == 403
    cross_site = client.post(
        "/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert client.get("/").status_code == 200  # none of those signed out
    out = client.post("/signout", data={"csrf_token": token}, headers={"Origin": PUBLIC_URL})
    assert out.status_code == 303
    assert client.get("/").status_code == 303
    denied = [
        r for r in world.records() if r.outcome == "denied" and r.data["action"] == "signed_in"
    ]
    assert any(r.data["reason"] == "the CSRF token is missing or wrong" for r in denied)
    assert any(r.data["reason"] == "the request came from another site" for r in denied)


def test_every_request_is_audited_with_the_person_and_decision(
    world: ConsoleWorld, signed_in: dict[str, TestClient]
) -> None:
    before = len(world.records())
    signed_in["self"].get("/m/own/message?folder=INBOX&uid=1")
    signed_in["self"].get("/m/other/message?folder=INBOX&uid=1")
    signed_in["admin"].get("/m/own/body?folder=INBOX&uid=1")
    new = world.records()[before:]
    assert [(r.actor["console_user"], r.outcome, r.data["action"]) for r in new] == [
        (world.users["self"][0], "success", "message.read"),
        (world.users["self"][0], "denied", "message.read"),
        (world.users["admin"][0], "denied", "message.read"),
    ]
    assert new[0].account == "own"
    assert new[1].data["resource"] == "/m/other/message?folder=INBOX&uid=1"
    assert new[2].data["roles"] == ["admin"]
    signs = world.records()
    assert any(r.data["action"] == "sign_in" and r.outcome == "success" for r in signs)


def test_a_broken_config_is_a_page_not_a_traceback(world: ConsoleWorld, tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    paths.config_dir.mkdir()
    paths.config_file.write_text("[accounts.x]\nemail = 3\n")
    client = world.client(world.console(paths))
    world.sign_in(client, "auditor")
    for path in ("/", "/m/x"):
        response = client.get(path)
        assert response.status_code == 500
        assert "accounts.x" in response.text
        assert "Traceback" not in response.text
