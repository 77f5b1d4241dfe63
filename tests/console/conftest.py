"""A console over real archives, signing in through the sandbox's identity platform.

One world per module: a console app registration with the console's app roles, one user
per role (``none``: a user without any), an exoimap home with three archived mailboxes
(``own``: the ``self`` user's, ``other`` in the tenant's domain, ``outside`` in a domain no
scope covers), each holding the hostile corpus of :mod:`.hostile`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

with warnings.catch_warnings():  # Starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from exoimap import audit
from exoimap.app.operations import backup
from exoimap.config import Paths
from exoimap.console.archives import Mailboxes
from exoimap.console.policy import ROLES
from exoimap.console.sessions import SessionStore
from exoimap.console.settings import ConsoleSettings
from exoimap.console.signin import SignIn
from exoimap.console.trail import Trail
from exoimap.console.web import Console, build_app
from exoimap.sandbox.identity import SignInRobot
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.memory import MemoryStore
from exoimap.store.search import SearchIndex, index_path, update_search

from .hostile import (
    HOSTILE_FOLDER,
    HTML_BODY,
    SCRIPT_FROM,
    SCRIPT_SUBJECT,
    TEXT_BODY,
    mime,
    with_attachment,
)

PUBLIC_URL = "https://testserver"
AUDIT_KEY = Secret(b"C" * 32)
#: Roles a test user can have; "none" is a user with no role at all.
PEOPLE = (*ROLES, "none")


@dataclass
class ConsoleWorld:
    tenant: SandboxTenant
    app_name: str
    settings: ConsoleSettings
    paths: Paths
    audit_dir: Path
    auditor: audit.Auditor
    users: dict[str, tuple[str, str]]  # person -> (upn, password)
    accounts: dict[str, str] = field(default_factory=dict)  # account -> email

    def console(self, paths: Paths | None = None) -> Console:
        settings = self.settings
        sessions = SessionStore(idle=settings.idle_timeout, absolute=settings.absolute_timeout)
        mailboxes = Mailboxes(paths or self.paths)
        trail = Trail(self.auditor)
        return Console(
            settings, mailboxes, sessions, SignIn(settings), trail, audit_dir=self.audit_dir
        )

    def client(self, console: Console | None = None) -> TestClient:
        return TestClient(
            build_app(console or self.console()), base_url=PUBLIC_URL, follow_redirects=False
        )

    def identity_http(self) -> requests.Session:
        return self.tenant.http_session()

    def sign_in(self, client: TestClient, person: str) -> None:
        """Sign ``person`` in through the sandbox's pages (a robot in place of a browser)."""
        self.sign_in_as(client, *self.users[person])

    def sign_in_as(self, client: TestClient, upn: str, password: str) -> None:
        start = client.get("/auth/start")
        assert start.status_code == 303, start.text
        outcome = SignInRobot(self.identity_http()).sign_in(
            start.headers["location"], upn, password
        )
        assert outcome.redirect_uri == self.settings.redirect_uri, outcome
        done = client.post("/auth/callback", data=outcome.params)
        assert done.status_code == 200, done.text

    def records(self, event: str = "console.access") -> list[audit.AuditRecord]:
        self.auditor.flush()
        return [r for r in audit.read_records(self.audit_dir) if r.event == event]


def _archive(paths: Paths, account: str, email: str) -> None:
    """The account's archive of the hostile corpus, indexed for search as ``sync`` does."""
    root, owner = paths.archive_dir(account), email.split("@")[1]
    source = MemoryStore()
    source.create_folder_now(HOSTILE_FOLDER)
    when = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
    source.add_message(
        "INBOX", mime("Quarterly numbers", f"Ann <ann@{owner}>", None, "Hi."), internal_date=when
    )
    source.add_message(
        "INBOX",
        mime(SCRIPT_SUBJECT, SCRIPT_FROM, HTML_BODY, None),
        internal_date=when + dt.timedelta(hours=1),
    )
    source.add_message(
        "INBOX",
        mime("plain", "x@example.com", None, TEXT_BODY),
        internal_date=when + dt.timedelta(hours=2),
    )
    source.add_message(
        "INBOX", with_attachment("with an attachment"), internal_date=when + dt.timedelta(hours=3)
    )
    source.add_message(
        HOSTILE_FOLDER,
        mime("in a hostile folder", "y@example.com", None, "text"),
        internal_date=when,
    )

    async def run() -> None:
        archive = ArchiveStore.open(root, fsync_mode="none")
        try:
            report = await backup(source, archive)
            assert report.ok, report.errors
            index = SearchIndex(index_path(paths))
            await update_search(archive, index, account=account, mailbox=email)
        finally:
            await archive.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def world(
    sandbox_tenant: SandboxTenant, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleWorld]:
    admin = sandbox_tenant.admin
    domain = sandbox_tenant.tenant_domain
    app_name = f"exoimap-console-{uuid.uuid4().hex[:8]}"
    registration = admin.create_app(
        app_name, public=False, redirect_uris=[f"{PUBLIC_URL}/auth/callback"]
    )
    admin.define_app_roles(app_name, ROLES)
    secret = admin.add_client_secret(app_name, display_name="console tests")
    users = {}
    for person in PEOPLE:
        password = f"Pw-{uuid.uuid4().hex}"
        user = admin.create_user(
            f"{person.replace('_', '-')}-{uuid.uuid4().hex[:6]}@{domain}", password=password
        )
        if person != "none":
            admin.assign_app_role(app_name, user.upn, person)
        users[person] = (user.upn, password)
    home = tmp_path_factory.mktemp("console-home")
    paths = Paths(config_dir=home / "config", data_dir=home / "data")
    accounts = {
        "own": users["self"][0],
        "other": f"carol@{domain}",
        "outside": "dan@fabrikam.example",
    }
    paths.config_dir.mkdir(parents=True)
    # accounts of the sandbox tenant that nobody signed in to: a restore fails at sign-in
    server = (
        f'cloud = "custom"\nauthority = "{sandbox_tenant.authority}"\n'
        f'ca_file = "{sandbox_tenant.ca_file}"\nimap_host = "{sandbox_tenant.imap_host}"\n'
        f"imap_port = {sandbox_tenant.imap_port}\n"
    )
    paths.config_file.write_text(
        "".join(
            f'[accounts.{name}]\nemail = "{email}"\n{server}\n' for name, email in accounts.items()
        )
    )
    for name, email in accounts.items():
        _archive(paths, name, email)
    settings = ConsoleSettings(
        authority=sandbox_tenant.authority,
        client_id=registration.client_id,
        public_url=PUBLIC_URL,
        client_secret=Secret(secret.value),
        ca_file=sandbox_tenant.ca_file,
        scopes={"auditor": (f"*@{domain}",), "restore_operator": (f"*@{domain}",)},
    )
    audit_dir = home / "audit"
    log = audit.AuditLog(audit_dir, AUDIT_KEY, run="console-tests", os_user="tester")
    with audit.Auditor(log) as auditor:
        yield ConsoleWorld(
            sandbox_tenant, app_name, settings, paths, audit_dir, auditor, users, accounts
        )


@pytest.fixture(scope="module")
def signed_in(world: ConsoleWorld) -> dict[str, TestClient]:
    """One signed-in client per person, shared by the module's tests (read-only use)."""
    console = world.console()
    clients = {}
    for person in PEOPLE:
        client = world.client(console)
        world.sign_in(client, person)
        clients[person] = client
    return clients
