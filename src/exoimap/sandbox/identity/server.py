"""Running the identity server: :class:`IdentitySandbox` ties a state folder to the ASGI app,
the CA, the signing key and the admin API, and serves it with uvicorn over HTTPS.

Three ways to run it:

* ``exoimap sandbox up`` (the CLI): :meth:`IdentitySandbox.bind`, write ``sandbox.json``,
  then :meth:`IdentitySandbox.serve` under :func:`exoimap.sandbox.state.serving_lock`.
* One event loop with other servers (the IMAP half): bind with :meth:`IdentitySandbox.bind`,
  then ``await sandbox.serve(sock)`` in the same ``asyncio.TaskGroup`` as the IMAP server;
  :meth:`IdentitySandbox.stop` (or SIGINT) ends it.
* Tests: ``with IdentitySandbox.open(tmp_path).running() as running:`` serves on a random
  port in a background thread and yields a :class:`RunningIdentity`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import uvicorn

from exoimap.errors import ConfigError, NetworkError
from exoimap.net.listen import listening_socket
from exoimap.sandbox.ca import LocalCA
from exoimap.sandbox.identity import publish
from exoimap.sandbox.identity.admin import SandboxAdmin
from exoimap.sandbox.identity.core import IdentityCore
from exoimap.sandbox.identity.endpoints import build_app
from exoimap.sandbox.identity.graph import GraphService
from exoimap.sandbox.identity.model import Directory, Tenant
from exoimap.sandbox.identity.store import DirectoryStore
from exoimap.sandbox.identity.tokens import AccessTokenVerifier, SigningKey
from exoimap.sandbox.state import ensure_private_dir

__all__ = ["IdentitySandbox", "RunningIdentity"]


@dataclass(frozen=True)
class RunningIdentity:
    """A serving sandbox: where it is, what to trust, and the admin API."""

    base_url: str  # https://127.0.0.1:PORT
    port: int
    ca_file: Path
    sandbox: IdentitySandbox

    @property
    def admin(self) -> SandboxAdmin:
        return self.sandbox.admin

    @property
    def tenant_id(self) -> str:
        return self.sandbox.default_tenant().tenant_id

    @property
    def tenant_domain(self) -> str:
        return self.sandbox.default_tenant().domain

    @property
    def authority(self) -> str:
        """The full authority URL with the default tenant's id, for MSAL."""
        return f"{self.base_url}/{self.tenant_id}"

    def document(self) -> dict[str, Any]:
        """What ``sandbox.json`` would say now: users with passwords, apps with secrets."""
        return self.sandbox.sandbox_json(self.base_url)

    def requests_session(self) -> requests.Session:
        """A ``requests`` session that trusts the sandbox CA, for MSAL's ``http_client``.

        ``trust_env`` is off because ``REQUESTS_CA_BUNDLE`` would otherwise override
        ``verify`` (and MSAL's own ``verify=``). Close it when done."""
        session = requests.Session()
        session.verify = str(self.ca_file)
        session.trust_env = False
        return session


class IdentitySandbox:
    """The identity half of a sandbox tenant, over one state folder."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        state_dir = Path(state_dir)
        self.state_dir = ensure_private_dir(state_dir)
        self.ca = LocalCA.load_or_create(state_dir / "ca")
        self.signing_key = SigningKey.load_or_create(state_dir / "keys")
        self.store = DirectoryStore(state_dir)
        self.core = IdentityCore(self.store, self.signing_key)
        self.admin = SandboxAdmin(self.store)
        self.graph = GraphService(self.store, self.signing_key)
        self.app = build_app(self.core, self.graph.routes())
        self._server: uvicorn.Server | None = None

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str], *, seed: bool = True) -> IdentitySandbox:
        """Open (creating if needed) a state folder; ``seed`` adds the demo tenant, users and
        apps when the directory is empty (see :mod:`exoimap.sandbox.identity.seed`)."""
        sandbox = cls(state_dir)
        if seed and not sandbox.store.current().tenants:
            from exoimap.sandbox.identity.seed import seed_demo_tenant

            seed_demo_tenant(sandbox.admin, sandbox.state_dir)
        return sandbox

    # --- for the IMAP half ----------------------------------------------------------------------

    @property
    def directory(self) -> Directory:
        """The live directory (reloaded when another process changes it)."""
        return self.store.current()

    @property
    def verifier(self) -> AccessTokenVerifier:
        return AccessTokenVerifier(self.signing_key)

    def now(self) -> float:
        """The sandbox clock (wall time plus the test offset); use it to check ``exp``."""
        return self.store.now()

    def default_tenant(self) -> Tenant:
        tenants = self.store.current().tenants
        if not tenants:
            raise ConfigError("the sandbox has no tenant", path=str(self.state_dir))
        return tenants[0]

    # --- serving ----------------------------------------------------------------------------

    def tls_files(self, extra_names: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """The identity server's certificate and key, issued by the sandbox CA."""
        return self.ca.issue_server_cert(self.state_dir / "tls", "identity", extra_names)

    @staticmethod
    def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
        """A listening socket (port 0: the OS picks a free port)."""
        return listening_socket(host, port)

    def base_url_for(self, sock: socket.socket) -> str:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{port}"

    async def serve(self, sock: socket.socket) -> None:
        """Serve HTTPS on ``sock`` until :meth:`stop` (or SIGINT in the main thread)."""
        cert_file, key_file = self.tls_files()
        self.core.issuer_base = self.base_url_for(sock)
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=self.store.current().settings.http_keep_alive,
            # Idle keep-alive connections are closed at shutdown, but a TLS close waits for
            # the client's answer: bound that wait, however long the keep-alive.
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        await self._server.serve(sockets=[sock])

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    async def wait_started(self, timeout: float = 10.0) -> None:
        """Return once :meth:`serve` accepts connections (uvicorn only exposes a flag)."""
        async with asyncio.timeout(timeout):
            while not self.started:
                await asyncio.sleep(0.005)

    def stop(self, *, force: bool = False) -> None:
        """Ask :meth:`serve` to finish (thread-safe). ``force`` does not wait for idle
        keep-alive connections, whose TLS shutdown would otherwise hold it for seconds."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = force

    @contextlib.contextmanager
    def running(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningIdentity]:
        """Serve in a background thread for the duration of the ``with`` block."""
        sock = self.bind(host, port)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(sock))
            except BaseException as exc:  # reported to the waiting thread
                failure.append(exc)

        thread = threading.Thread(target=run, name="exoimap-sandbox-identity", daemon=True)
        thread.start()
        ready = threading.Event()
        while not ready.wait(0.01):
            if self.started:
                ready.set()
            elif failure or not thread.is_alive():
                sock.close()
                raise NetworkError(f"the identity server did not start: {failure[:1]!r}")
        try:
            url = self.base_url_for(sock)
            yield RunningIdentity(url, int(sock.getsockname()[1]), self.ca.cert_file, self)
        finally:
            self.stop(force=True)
            thread.join(10)
            sock.close()

    # --- sandbox.json ---------------------------------------------------------------------------

    def sandbox_json(self, base_url: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The document ``sandbox up`` writes to ``<state>/sandbox.json``."""
        return publish.sandbox_document(self.store, base_url, extra)

    def write_sandbox_json(self, base_url: str, extra: dict[str, Any] | None = None) -> Path:
        """Write ``<state>/sandbox.json`` (0600) and return its path."""
        return publish.write_sandbox_json(self.store, base_url, extra)

    def refresh_sandbox_json(self) -> Path | None:
        """Rewrite an existing ``sandbox.json`` after an admin change."""
        return publish.refresh_sandbox_json(self.store)
