"""``exoimap tenant add`` and ``discover`` against the sandbox's Microsoft Graph, with the
catalog in a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from exoimap.cli import main
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.tenant.catalog import open_catalog
from tests.cli.sync_helpers import isolated_home
from tests.tenant.helpers import Setup, add_tenant, make_mailboxes, make_tenant_app

pytestmark = pytest.mark.xdist_group("tenant")


def test_discover_pages_through_users_waits_out_429_and_applies_filters(
    sandbox_tenant: SandboxTenant,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    graph_budget,
) -> None:
    isolated_home(tmp_path, monkeypatch)
    app = make_tenant_app(sandbox_tenant, tmp_path)
    upns = make_mailboxes(sandbox_tenant, app, 5, messages=0)
    add_tenant(
        sandbox_tenant, app, database_url, tmp_path / "archives", "--exclude", upns[4].upper()
    )
    graph = sandbox_tenant.identity.graph
    # two requests a second for this app: paging by two through every user of the sandbox
    # tenant needs more, so Graph answers 429 and discovery has to wait
    graph_budget(graph_budget=2, graph_budget_window=1)
    capsys.readouterr()

    assert main(["tenant", "discover", "acme", "--page-size", "2", "--database", database_url]) == 0

    out = capsys.readouterr().out
    assert "4 mailboxes kept (4 new, 0 gone)" in out
    users = len(sandbox_tenant.users)
    pages = -(-users // 2)
    assert graph.served[app.client_id] == pages
    assert graph.throttled[app.client_id] >= 1
    with open_catalog(database_url) as catalog:
        kept = [m.upn for m in catalog.mailboxes("acme")]
    assert kept == [u.lower() for u in upns[:4]]


def test_rediscovery_marks_missing_mailboxes_inactive_and_keeps_their_rows(
    sandbox_tenant: SandboxTenant,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_home(tmp_path, monkeypatch)
    app = make_tenant_app(sandbox_tenant, tmp_path)
    upns = make_mailboxes(sandbox_tenant, app, 3, messages=0)
    add_tenant(sandbox_tenant, app, database_url, tmp_path / "archives")
    assert main(["tenant", "discover", "acme", "--database", database_url]) == 0
    # the tenant's filter now leaves the last mailbox out
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE tenants SET exclude = %s", ([upns[2]],))
    assert main(["tenant", "discover", "acme", "--database", database_url]) == 0
    with open_catalog(database_url) as catalog:
        assert [m.upn for m in catalog.mailboxes("acme")] == [u.lower() for u in upns[:2]]
        every = catalog.mailboxes("acme", active_only=False)
    assert [(m.upn, m.active) for m in every][-1] == (upns[2].lower(), False)


def test_discover_without_user_read_all_says_which_permission_is_missing(
    sandbox_tenant: SandboxTenant,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    app = make_tenant_app(sandbox_tenant, tmp_path)
    with sandbox_tenant.admin.store.transaction() as directory:
        registration = directory.find_app(app.name)
        assert registration is not None
        registration.application_permissions = [
            p for p in registration.application_permissions if not p.endswith("/User.Read.All")
        ]
    add_tenant(sandbox_tenant, app, database_url, tmp_path / "archives")
    capsys.readouterr()
    code = main(["tenant", "discover", "acme", "--database", database_url])
    err = capsys.readouterr().err
    assert code == 3
    assert "Authorization_RequestDenied" in err
    assert "User.Read.All" in err
    assert "Traceback" not in err


def test_tenant_commands_without_a_database_say_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated_home(tmp_path, monkeypatch)
    monkeypatch.delenv("EXOIMAP_DATABASE_URL", raising=False)
    assert main(["tenant", "discover", "acme"]) == 2
    assert "EXOIMAP_DATABASE_URL" in capsys.readouterr().err


def test_unknown_tenant_is_a_one_line_error(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    assert main(["tenant", "discover", "nope", "--database", database_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("exoimap: error: no tenant 'nope' in the catalog")
    assert len(err.splitlines()) == 1


def test_discover_includes_and_excludes_by_group_with_nested_groups(setup: Setup) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 5, messages=0)
    admin = setup.sandbox.admin
    nested = admin.create_group("sales-emea", [upns[1], upns[2]])
    sales = admin.create_group("sales", [upns[0], nested.object_id])
    on_leave = admin.create_group("on-leave", [upns[2], upns[4]])
    setup.add_and_discover(
        "--include", f"group:{sales.object_id}",
        "--include", upns[3],  # a pattern entry beside the group
        "--exclude", f"group:{on_leave.object_id}",
    )  # fmt: skip
    with open_catalog(setup.database) as catalog:
        kept = [m.upn for m in catalog.mailboxes("acme")]
    assert kept == [upns[0].lower(), upns[1].lower(), upns[3].lower()]


def _group_permission(setup: Setup, granted: list[str] | None = None) -> list[str]:
    """Take the app's GroupMember.Read.All away (returned), or give ``granted`` back."""
    with setup.sandbox.admin.store.transaction() as directory:
        registration = directory.find_app(setup.app.name)
        assert registration is not None
        if granted is not None:
            registration.application_permissions += granted
            return granted
        held = registration.application_permissions
        taken = [p for p in held if p.endswith("/GroupMember.Read.All")]
        registration.application_permissions = [p for p in held if p not in taken]
        return taken


def test_a_group_filter_without_group_member_read_all_says_which_permission_is_missing(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    group = setup.sandbox.admin.create_group("everyone")
    taken = _group_permission(setup)
    add_tenant(
        setup.sandbox, setup.app, setup.database, setup.archives,
        "--exclude", f"group:{group.object_id}",
    )  # fmt: skip
    capsys.readouterr()
    discover = ["tenant", "discover", "acme", "--database", setup.database]
    assert main(discover) == 3
    err = capsys.readouterr().err
    assert "GroupMember.Read.All" in err
    assert "Traceback" not in err
    # an unknown group is named, in one line
    with psycopg.connect(setup.database, autocommit=True) as conn:
        conn.execute("UPDATE tenants SET exclude = %s", (["group:no-such-group"],))
    _group_permission(setup, taken)
    assert main(discover) == 2
    err = capsys.readouterr().err.strip()
    assert "no group no-such-group" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("cloud", "graph"),
    [
        ("worldwide", "https://graph.microsoft.com"),
        ("gcc", "https://graph.microsoft.com"),
        ("gcc-high", "https://graph.microsoft.us"),
        ("dod", "https://dod-graph.microsoft.us"),
        ("china", "https://microsoftgraph.chinacloudapi.cn"),
    ],
)
def test_a_tenant_in_a_national_cloud_is_discovered_through_that_clouds_graph(
    cloud: str,
    graph: str,
    sandbox_tenant: SandboxTenant,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated_home(tmp_path, monkeypatch)
    app = make_tenant_app(sandbox_tenant, tmp_path)
    args = [
        "tenant", "add", "gov",
        "--tenant", sandbox_tenant.tenant_id,
        "--client-id", app.client_id,
        "--certificate", str(app.certificate),
        "--cloud", cloud,
        "--database", database_url,
    ]  # fmt: skip
    assert main(args) == 0
    with open_catalog(database_url) as catalog:
        assert catalog.tenant("gov").graph_url == graph
