"""Roles through Entra groups: the settings' ``[groups]`` table maps group object ids from
the ID token's ``groups`` claim to console roles (signing in through the sandbox)."""

from __future__ import annotations

import dataclasses
import socket
import uuid
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

with warnings.catch_warnings():  # Starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from exoimap.console.archives import Mailboxes
from exoimap.console.membership import member_groups
from exoimap.console.sessions import SessionStore
from exoimap.console.settings import load_settings
from exoimap.console.signin import SignIn
from exoimap.console.trail import Trail
from exoimap.console.web import Console
from exoimap.errors import AuthError, ConfigError
from exoimap.sandbox.identity import SignInRobot
from exoimap.secrets import Secret

from .conftest import ConsoleWorld

AUDITORS = "0b6a5d3e-1c2f-4e8a-9d7b-2f3e4a5b6c7d"
OTHERS = "9e8d7c6b-5a49-4838-a726-15f4e3d2c1b0"


def test_groups_in_the_settings_file_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "console.toml"
    path.write_text(
        f'authority = "a"\nclient_id = "c"\n[groups]\n"{AUDITORS.upper()}" = ["auditor"]\n'
    )
    settings = load_settings(path, public_url="https://c.example", environ={})
    assert settings.groups == {AUDITORS: ("auditor",)}
    path.write_text(f'authority = "a"\nclient_id = "c"\n[groups]\n"{AUDITORS}" = ["boss"]\n')
    with pytest.raises(ConfigError, match=f"groups.{AUDITORS}: unknown role 'boss'"):
        load_settings(path, public_url="https://c.example", environ={})
    path.write_text('authority = "a"\nclient_id = "c"\ngroups = ["auditor"]\n')
    with pytest.raises(ConfigError, match="groups must be a table"):
        load_settings(path, public_url="https://c.example", environ={})


def test_graph_url_in_the_settings_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "console.toml"
    path.write_text('authority = "a"\nclient_id = "c"\n')
    default = load_settings(path, public_url="https://c.example", environ={})
    assert default.graph_url == "https://graph.microsoft.com"
    path.write_text('authority = "a"\nclient_id = "c"\ngraph_url = "https://graph.microsoft.us/"\n')
    us = load_settings(path, public_url="https://c.example", environ={})
    assert us.graph_url == "https://graph.microsoft.us"
    path.write_text('authority = "a"\nclient_id = "c"\ngraph_url = "http://graph.example"\n')
    with pytest.raises(ConfigError, match="graph_url must be an https:// URL"):
        load_settings(path, public_url="https://c.example", environ={})


def _console(world: ConsoleWorld) -> Console:
    settings = dataclasses.replace(
        world.settings, groups={AUDITORS: ("auditor",)}, graph_url=world.tenant.identity_url
    )
    return Console(
        settings,
        Mailboxes(world.paths),
        SessionStore(idle=600, absolute=600),
        SignIn(settings),
        Trail(world.auditor),
        audit_dir=world.audit_dir,
    )


def _member(world: ConsoleWorld, groups: list[str]) -> tuple[str, str]:
    admin = world.tenant.admin
    password = f"Pw-{uuid.uuid4().hex}"
    user = admin.create_user(
        f"grouped-{uuid.uuid4().hex[:6]}@{world.tenant.tenant_domain}", password=password
    )
    for group in groups:
        admin.add_to_group(user.upn, group)
    return user.upn, password


def test_a_mapped_group_gives_its_roles(world: ConsoleWorld) -> None:
    world.tenant.admin.emit_group_claims(world.app_name)
    console = _console(world)
    auditor, nobody = _member(world, [OTHERS, AUDITORS]), _member(world, [OTHERS])
    client = world.client(console)
    world.sign_in_as(client, *auditor)
    assert 'roles: <span id="roles">auditor</span>' in client.get("/").text
    assert client.get("/m/other/message?folder=INBOX&uid=1").status_code == 200
    assert client.get("/m/outside").status_code == 404  # the role's scope still applies
    assert client.get("/audit").status_code == 403
    other = world.client(console)
    world.sign_in_as(other, *nobody)
    assert other.get("/").status_code == 403  # an unmapped group grants nothing


def _asked_scopes(client: TestClient) -> set[str]:
    start = client.get("/auth/start")
    assert start.status_code == 303, start.text
    return set(parse_qs(urlsplit(start.headers["location"]).query)["scope"][0].split())


def test_the_graph_scope_is_asked_only_when_groups_give_roles(world: ConsoleWorld) -> None:
    without = _asked_scopes(world.client(world.console()))
    assert not any("graph.microsoft.com" in s or "GroupMember" in s for s in without)
    assert "openid" in without
    with_groups = _asked_scopes(world.client(_console(world)))
    assert with_groups == without | {"https://graph.microsoft.com/GroupMember.Read.All"}


def _too_many(world: ConsoleWorld) -> tuple[str, str]:
    """A person in 250 groups, one of them mapped to ``auditor``."""
    return _member(
        world,
        [
            *(str(uuid.uuid4()) for _ in range(125)),
            AUDITORS.upper(),
            *(str(uuid.uuid4()) for _ in range(124)),
        ],
    )


def test_too_many_groups_for_the_token_are_asked_of_graph(world: ConsoleWorld) -> None:
    world.tenant.admin.emit_group_claims(world.app_name)
    console = _console(world)
    client = world.client(console)
    world.sign_in_as(client, *_too_many(world))
    assert 'roles: <span id="roles">auditor</span>' in client.get("/").text
    assert client.get("/m/other/message?folder=INBOX&uid=1").status_code == 200
    assert client.get("/audit").status_code == 403


def test_without_consent_to_the_graph_permission_the_refusal_names_it(
    world: ConsoleWorld,
) -> None:
    world.tenant.admin.emit_group_claims(world.app_name)
    client = world.client(_console(world))
    upn, password = _too_many(world)
    world.tenant.admin.set_tenant_policy(user_consent_allowed=False)
    try:
        start = client.get("/auth/start")
        robot = SignInRobot(world.identity_http())
        outcome = robot.sign_in(start.headers["location"], upn, password)
    finally:
        world.tenant.admin.set_tenant_policy(user_consent_allowed=True)
    done = client.post("/auth/callback", data=outcome.params)
    assert done.status_code == 400
    assert "GroupMember.Read.All" in done.text
    assert "admin consent" in done.text
    failures = [r for r in world.records() if r.outcome == "failure"]
    assert any("GroupMember.Read.All" in r.data["reason"] for r in failures)


def test_a_token_without_the_graph_permission_is_a_clear_refusal(world: ConsoleWorld) -> None:
    upn, _ = _too_many(world)
    token = world.tenant.user_token(upn, scope="https://graph.microsoft.com/User.Read")
    with pytest.raises(AuthError) as refused:
        member_groups(world.tenant.identity_url, Secret(token), ca_file=world.tenant.ca_file)
    message = str(refused.value)
    assert "Authorization_RequestDenied" in message
    assert "GroupMember.Read.All" in message
    assert "\n" not in message
    granted = world.tenant.user_token(upn, scope="https://graph.microsoft.com/GroupMember.Read.All")
    groups = member_groups(world.tenant.identity_url, Secret(granted), ca_file=world.tenant.ca_file)
    assert len(groups) == 250
    assert AUDITORS in groups  # lower case, as the settings keep them


def test_when_graph_cannot_be_asked_direct_app_roles_still_hold(world: ConsoleWorld) -> None:
    world.tenant.admin.emit_group_claims(world.app_name)
    unreachable = dataclasses.replace(
        _console(world).settings, graph_url=f"https://127.0.0.1:{_closed_port()}"
    )
    console = dataclasses.replace(
        _console(world), settings=unreachable, sign_in=SignIn(unreachable)
    )
    with_role = _too_many(world)
    world.tenant.admin.assign_app_role(world.app_name, with_role[0], "audit_reader")
    client = world.client(console)
    world.sign_in_as(client, *with_role)
    # the direct role holds; the group's (auditor) could not be learnt, so it is not given
    assert 'roles: <span id="roles">audit_reader</span>' in client.get("/").text

    without_role = world.client(console)
    start = without_role.get("/auth/start")
    outcome = SignInRobot(world.identity_http()).sign_in(
        start.headers["location"], *_too_many(world)
    )
    refused = without_role.post("/auth/callback", data=outcome.params)
    assert refused.status_code == 400
    assert "Microsoft Graph is not reachable to name your groups" in refused.text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once it is closed
