"""App roles: a user's assigned roles appear in the ``roles`` claim of the ID tokens the app
receives (what a web app such as ``exoimap console`` authorises with), and only there."""

from __future__ import annotations

import pytest

from exoimap.errors import ConfigError

from .conftest import World


def test_assigned_app_roles_are_in_the_id_token(world: World) -> None:
    app = world.new_app(redirect_uris=["http://localhost"])
    world.idp.admin.define_app_roles(app.name, ["auditor", "restore_operator"])
    world.idp.admin.assign_app_role(app.name, world.user.upn, "auditor")
    client = world.public(app)
    flow, response = world.browser_sign_in(client, [])
    result = client.acquire_token_by_auth_code_flow(flow, response)
    assert result["id_token_claims"]["roles"] == ["auditor"]

    other, password = world.new_user()
    flow, response = world.browser_sign_in(
        client, [], upn=other.upn, password=password, prompt="login"
    )
    unassigned = client.acquire_token_by_auth_code_flow(flow, response)
    assert "roles" not in unassigned["id_token_claims"]


def test_assigning_an_undefined_role_is_refused(world: World) -> None:
    app = world.new_app()
    with pytest.raises(ConfigError, match="no role 'admin'"):
        world.idp.admin.assign_app_role(app.name, world.user.upn, "admin")
    with pytest.raises(ConfigError, match="not an app role value"):
        world.idp.admin.define_app_roles(app.name, ["two words"])
    assert world.idp.admin.directory.find_app(app.name).role_assignments == {}
