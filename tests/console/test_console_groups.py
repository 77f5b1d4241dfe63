"""Roles through Entra groups: the settings' ``[groups]`` table maps group object ids from
the ID token's ``groups`` claim to console roles (signing in through the sandbox)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from exoimap.console.archives import Mailboxes
from exoimap.console.sessions import SessionStore
from exoimap.console.settings import load_settings
from exoimap.console.signin import SignIn
from exoimap.console.trail import Trail
from exoimap.console.web import Console
from exoimap.errors import ConfigError
from exoimap.sandbox.identity import SignInRobot

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


def _console(world: ConsoleWorld) -> Console:
    settings = dataclasses.replace(world.settings, groups={AUDITORS: ("auditor",)})
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


def test_too_many_groups_for_the_token_is_a_clear_refusal(world: ConsoleWorld) -> None:
    world.tenant.admin.emit_group_claims(world.app_name)
    console = _console(world)
    upn, password = _member(world, [AUDITORS, *(str(uuid.uuid4()) for _ in range(200))])
    client = world.client(console)
    start = client.get("/auth/start")
    outcome = SignInRobot(world.identity_http()).sign_in(start.headers["location"], upn, password)
    done = client.post("/auth/callback", data=outcome.params)
    assert done.status_code == 400
    assert "too many groups" in done.text
    assert "assigned to you directly" in done.text
    failures = [r for r in world.records() if r.outcome == "failure"]
    assert any("too many groups" in r.data["reason"] for r in failures)
