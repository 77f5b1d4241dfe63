"""Both halves of the sandbox tenant in one process: the identity platform (HTTPS) and
Exchange Online IMAP (implicit TLS), on one asyncio loop, sharing one state folder.

``exoimap sandbox up`` calls :func:`serve`; tests use :func:`running_tenant`, which runs
the loop in a background thread and yields a :class:`SandboxTenant`::

    with running_tenant(tmp_path / "state", seed_messages=50) as tenant:
        tenant.authority, tenant.ca_file, tenant.imap_host, tenant.imap_port
        tenant.admin            # the identity admin API (users, apps, grants, clock)
        tenant.exchange         # ExchangeControl: changes "from another client", faults
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from exoimap.errors import AuthError, ConfigError, NetworkError
from exoimap.sandbox.ca import LocalCA
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.exchange.mailboxes import UIDVALIDITY_FILE, Mailboxes
from exoimap.sandbox.exchange.server import ExchangeControl, ExchangeImapServer
from exoimap.sandbox.faults import FAULTS_FILE, read_faults
from exoimap.sandbox.identity import IdentitySandbox, SandboxAdmin
from exoimap.sandbox.seed import SeedOptions, seed_store
from exoimap.sandbox.state import PORTS_JSON, KeptPorts, read_kept_ports, write_kept_ports

log = logging.getLogger("exoimap.sandbox")

#: A port number meaning "the port of the last run on this state folder, else any".
LAST_RUN_PORT = -1

#: Scopes for sandbox IMAP tokens, as for Exchange Online (3.7).
DELEGATED_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
APP_ONLY_SCOPE = "https://outlook.office365.com/.default"

__all__ = [
    "APP_ONLY_SCOPE",
    "DELEGATED_SCOPE",
    "LAST_RUN_PORT",
    "SandboxTenant",
    "TenantOptions",
    "running_tenant",
    "serve",
    "start_halves",
]


@dataclass(frozen=True)
class TenantOptions:
    """How to run the tenant."""

    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    identity_host: str = "127.0.0.1"
    #: 0: any free port; :data:`LAST_RUN_PORT` (also for ``exchange.port``): the port of
    #: the last run on this state folder when one is kept, else any free port.
    identity_port: int = 0
    #: Messages generated into each user's mailbox when it is empty (0: none).
    seed_messages: int = 0
    #: Keep mailboxes in ``<state>/mailboxes`` across restarts.
    persist: bool = False
    #: With ``persist``: also save changed mailboxes this often (seconds), not only at exit.
    autosave_seconds: float = 30.0


@dataclass
class SandboxTenant:
    """A running sandbox tenant (both halves)."""

    state_dir: Path
    identity: IdentitySandbox
    server: ExchangeImapServer
    identity_url: str
    exchange: ExchangeControl

    @property
    def admin(self) -> SandboxAdmin:
        return self.identity.admin

    @property
    def authority(self) -> str:
        return f"{self.identity_url}/{self.tenant_id}"

    @property
    def tenant_id(self) -> str:
        return self.identity.default_tenant().tenant_id

    @property
    def tenant_domain(self) -> str:
        return self.identity.default_tenant().domain

    @property
    def ca_file(self) -> Path:
        return self.identity.ca.cert_file

    @property
    def imap_host(self) -> str:
        return self.server.host

    @property
    def imap_port(self) -> int:
        return self.server.port

    @property
    def smtp_port(self) -> int:
        """SMTP submission (STARTTLS first, then AUTH XOAUTH2), on :attr:`imap_host`."""
        return self.server.smtp.port

    @property
    def users(self) -> list[tuple[str, str]]:
        """(UPN, password) of every user of the default tenant."""
        return [(u.upn, u.password) for u in self.identity.default_tenant().users]

    @property
    def apps(self) -> list[dict[str, Any]]:
        """The apps as published in ``sandbox.json`` (client ids, secrets, certificates)."""
        return list(self.identity.sandbox_json(self.identity_url)["apps"])

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the sandbox CA only."""
        return self.identity.ca.client_ssl_context()

    def http_session(self) -> requests.Session:
        """A ``requests`` session for MSAL's ``http_client`` trusting the sandbox CA
        (``trust_env=False``: ``REQUESTS_CA_BUNDLE`` would override ``verify``)."""
        session = requests.Session()
        session.verify = str(self.ca_file)
        session.trust_env = False
        return session

    def app_token(self, app: str, scope: str = APP_ONLY_SCOPE) -> str:
        """An app-only access token for ``app`` (name or client id) through real MSAL
        (client credentials with a fresh client secret)."""
        import msal

        registration = self.identity.directory.find_app(app)
        if registration is None:
            raise ConfigError(f"no app {app!r} in the sandbox", key="app")
        secret = self.admin.add_client_secret(registration.name, display_name="testing")
        client = msal.ConfidentialClientApplication(
            registration.client_id,
            client_credential=secret.value,
            authority=self.authority,
            http_client=self.http_session(),
            instance_discovery=False,
        )
        result = client.acquire_token_for_client([scope])
        return _token_of(result)

    def user_token(
        self, upn: str, scope: str = DELEGATED_SCOPE, app: str = "exoimap-public"
    ) -> str:
        """A delegated access token for ``upn`` through real MSAL: the device code flow,
        approved as that user through the admin API (no browser). ``scope``: one or more,
        space-separated."""
        import msal

        registration = self.identity.directory.find_app(app)
        if registration is None:
            raise ConfigError(f"no app {app!r} in the sandbox", key="app")
        client = msal.PublicClientApplication(
            registration.client_id,
            authority=self.authority,
            http_client=self.http_session(),
            instance_discovery=False,
        )
        flow = client.initiate_device_flow(scopes=scope.split())
        if "user_code" not in flow:
            raise AuthError(f"the sandbox refused the device code request: {flow.get('error')}")
        self.admin.approve_device_code(flow["user_code"], upn=upn)
        return _token_of(client.acquire_token_by_device_flow(flow))

    @staticmethod
    def xoauth2(user: str, token: str) -> bytes:
        """The XOAUTH2 initial response (raw, not base64) for ``user`` and ``token``."""
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()

    @contextlib.contextmanager
    def extra_server(
        self, settings: ExchangeSettings, *, share_mailboxes: bool = False
    ) -> Iterator[ExchangeControl]:
        """Another IMAP server on the tenant's loop with other settings (timeouts, limits,
        quirks), trusting the same identity half. Its mailboxes are fresh unless
        ``share_mailboxes``."""
        loop = self.server.loop
        if loop is None:
            raise NetworkError("the sandbox tenant is not running")
        mailboxes = self.server.mailboxes if share_mailboxes else Mailboxes(settings)
        server = ExchangeImapServer(
            self.identity,
            settings,
            ssl_context=self.server.ssl_context,
            mailboxes=mailboxes,
            app_requests=self.server.app_requests if share_mailboxes else None,
        )
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        try:
            yield ExchangeControl(server)
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)

    def mailbox_summary(self) -> dict[str, dict[str, int]]:
        """Messages per folder of every mailbox (for ``sandbox.json``)."""

        def collect() -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for box in self.server.mailboxes.all():
                out[box.upn] = {
                    name: len(box.store.record(name).messages) for name in box.store.folder_names()
                }
            return out

        summary: dict[str, dict[str, int]] = self.exchange.run(collect)
        return summary


def _token_of(result: dict[str, Any]) -> str:
    token = result.get("access_token")
    if not isinstance(token, str):
        raise AuthError(f"the sandbox refused the token request: {result.get('error')}")
    return token


def _imap_context(identity: IdentitySandbox, settings: ExchangeSettings) -> ssl.SSLContext:
    cert, key = identity.ca.issue_server_cert(
        identity.state_dir / "tls", "imap", (settings.server_name,)
    )
    return LocalCA.server_ssl_context(cert, key)


def _seed(identity: IdentitySandbox, mailboxes: Mailboxes, count: int) -> None:
    for user in identity.default_tenant().users:
        box = mailboxes.get(user.upn)  # every user has a mailbox, listed in sandbox.json
        if count <= 0:
            continue
        if any(box.store.record(n).messages for n in box.store.folder_names()):
            continue  # persisted mail: keep it
        options = SeedOptions(
            messages=count,
            seed=zlib.crc32(user.upn.lower().encode()),
            owner_name=user.display_name,
            owner_address=user.upn,
        )
        seed_store(box.store, options)
        box.subscribed |= set(box.store.folder_names())


async def start_halves(
    state_dir: Path, options: TenantOptions
) -> tuple[IdentitySandbox, socket.socket, ExchangeImapServer]:
    """Open the state folder, seed, save the mailboxes, and start the IMAP half (the
    identity half is served by the caller with ``identity.serve(sock)``).

    Everything a client may see is on disk when this returns: the seeded mailboxes (with
    ``persist``), the UIDVALIDITY floor and the kept ports, so a crash right after the
    sandbox reports itself ready loses nothing."""
    identity = IdentitySandbox.open(state_dir)
    kept = read_kept_ports(state_dir)
    settings = options.exchange
    if settings.port == LAST_RUN_PORT:
        settings = dataclasses.replace(settings, port=kept.imap)
    folder = state_dir / "mailboxes" if options.persist else None
    mailboxes = Mailboxes(settings, folder, uidvalidity_file=state_dir / UIDVALIDITY_FILE)
    _seed(identity, mailboxes, options.seed_messages)
    mailboxes.save()
    server = ExchangeImapServer(
        identity,
        settings,
        ssl_context=_imap_context(identity, settings),
        mailboxes=mailboxes,
        faults=read_faults(state_dir / FAULTS_FILE),
    )
    from_last_run = options.identity_port == LAST_RUN_PORT
    identity_port = kept.identity if from_last_run else options.identity_port
    with _kept_port_hint(state_dir, identity_port if from_last_run else 0, "--port"):
        sock = identity.bind(options.identity_host, identity_port)
    try:
        from_last_run = options.exchange.port == LAST_RUN_PORT
        with _kept_port_hint(state_dir, settings.port if from_last_run else 0, "--imap-port"):
            await server.start()
    except BaseException:
        sock.close()
        raise
    write_kept_ports(state_dir, KeptPorts(int(sock.getsockname()[1]), server.port))
    return identity, sock, server


@contextlib.contextmanager
def _kept_port_hint(state_dir: Path, kept: int, option: str) -> Iterator[None]:
    """When the port of the last run (``kept``, 0: none) is taken, say how to pick another."""
    try:
        yield
    except NetworkError as exc:
        if not kept:
            raise
        raise NetworkError(
            f"{exc} (the port of the last run, kept in {state_dir / PORTS_JSON}); stop the "
            f"program using port {kept}, or choose another with {option} N (0: any free port)"
        ) from None


def sandbox_json_extra(tenant: SandboxTenant) -> dict[str, Any]:
    """What the IMAP half adds to ``sandbox.json``."""
    return {
        "imap_host": tenant.imap_host,
        "imap_port": tenant.imap_port,
        "imap_server_name": tenant.server.settings.server_name,
        "imap_tls": "implicit",
        "smtp_port": tenant.smtp_port,
        "smtp_tls": "starttls",
        "mailboxes": tenant.mailbox_summary(),
    }


async def _follow_faults(server: ExchangeImapServer, path: Path, interval: float = 0.2) -> None:
    """Apply ``<state>/faults.json`` whenever another process rewrites it."""

    def stamp() -> tuple[int, int] | None:
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns)

    seen = stamp()
    while True:
        await asyncio.sleep(interval)
        now = stamp()
        if now == seen:
            continue
        seen = now
        try:
            server.faults.take(read_faults(path))
        except ConfigError as exc:
            log.warning("IMAP faults not changed: %s", exc)
            continue
        log.info("IMAP faults now: %s", server.faults.describe())


async def _autosave(server: ExchangeImapServer, interval: float) -> None:
    """Save changed mailboxes every ``interval`` seconds (a crash loses at most that)."""
    while True:
        await asyncio.sleep(interval)
        if server.mailboxes.dirty:
            server.mailboxes.save()


async def serve(
    state_dir: Path,
    options: TenantOptions,
    *,
    ready: Callable[[SandboxTenant], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run both halves until ``stop`` is set (or the task is cancelled)."""
    identity, sock, server = await start_halves(state_dir, options)
    url = identity.base_url_for(sock)
    tenant = SandboxTenant(state_dir, identity, server, url, ExchangeControl(server))
    try:
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(identity.serve(sock))
            while not identity.started:
                if serving.done():
                    break
                await asyncio.sleep(0.01)
            identity.write_sandbox_json(url, await asyncio.to_thread(sandbox_json_extra, tenant))
            if ready is not None:
                ready(tenant)
            helpers = [group.create_task(_follow_faults(server, state_dir / FAULTS_FILE))]
            if options.persist and options.autosave_seconds > 0:
                helpers.append(group.create_task(_autosave(server, options.autosave_seconds)))
            if stop is not None:
                await stop.wait()
                identity.stop(force=True)
            await serving
            for helper in helpers:
                helper.cancel()
    finally:
        await server.stop()
        sock.close()


@contextlib.contextmanager
def running_tenant(
    state_dir: Path,
    options: TenantOptions | None = None,
    **changes: Any,
) -> Iterator[SandboxTenant]:
    """Run both halves in a background thread for the ``with`` block.

    ``changes`` are shortcuts for :class:`TenantOptions` fields (``seed_messages=50``)."""
    opts = options or TenantOptions()
    if changes:
        opts = TenantOptions(**{**opts.__dict__, **changes})
    started: list[SandboxTenant] = []
    failure: list[BaseException] = []
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def on_ready(tenant: SandboxTenant) -> None:
        started.append(tenant)
        ready.set()

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
            await serve(state_dir, opts, ready=on_ready, stop=stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the waiting thread
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="exoimap-sandbox-tenant", daemon=True)
    thread.start()
    ready.wait(60)
    if not started:
        thread.join(5)
        raise NetworkError(f"the sandbox tenant did not start: {failure[:1]!r}")
    try:
        yield started[0]
    finally:
        loop, stop = holder["loop"], holder["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
