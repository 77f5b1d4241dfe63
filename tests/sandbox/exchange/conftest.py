"""Fixtures for the Exchange half: one running sandbox tenant per test session (per xdist
worker), tokens from real MSAL, and a raw TLS client for byte-exact assertions."""

from __future__ import annotations

import base64
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exoimap.sandbox.tenant import SandboxTenant

DELEGATED_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
APP_SCOPE = "https://outlook.office365.com/.default"


@pytest.fixture(scope="session")
def tenant(sandbox_tenant: SandboxTenant) -> SandboxTenant:
    """The plugin's session tenant (``exoimap.testing``): these tests exercise it too."""
    return sandbox_tenant


@pytest.fixture(scope="session")
def alice(tenant: SandboxTenant) -> str:
    return tenant.users[0][0]


@pytest.fixture(scope="session")
def bob(tenant: SandboxTenant) -> str:
    return tenant.users[1][0]


def app_token(tenant: SandboxTenant, app: str, scope: str = APP_SCOPE) -> str:
    """Client-credentials token for ``app`` (name), through real MSAL."""
    return tenant.app_token(app, scope)


def user_token(
    tenant: SandboxTenant, upn: str, scope: str = DELEGATED_SCOPE, app: str = "exoimap-public"
) -> str:
    """Delegated token for ``upn`` via MSAL's device code flow, approved by the admin API."""
    return tenant.user_token(upn, scope, app)


def new_daemon(
    tenant: SandboxTenant,
    *,
    permissions: tuple[str, ...] = ("https://outlook.office365.com/IMAP.AccessAsApp",),
    register: bool = True,
    grant: tuple[str, ...] = (),
) -> str:
    """A fresh confidential app; returns its name."""
    name = f"daemon-{uuid.uuid4().hex[:8]}"
    tenant.admin.create_app(name, public=False, application=permissions, admin_consent=True)
    if register:
        tenant.admin.register_exchange_principal(name)
    for mailbox in grant:
        tenant.admin.add_mailbox_permission(mailbox, name)
    return name


def xoauth2(user: str, token: str) -> bytes:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


@dataclass
class Raw:
    """A line-level IMAP client over TLS for byte-exact checks."""

    sock: ssl.SSLSocket
    buffer: bytes = b""

    @classmethod
    def connect(cls, tenant: SandboxTenant, port: int | None = None) -> Raw:
        raw = socket.create_connection((tenant.imap_host, port or tenant.imap_port), timeout=10)
        return cls(tenant.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1"))

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(data + b"\r\n")

    def command(self, tag: str, text: str | bytes) -> list[bytes]:
        """Send ``tag text``; return every line up to and including the tagged one."""
        prefix = tag.encode() + b" "
        self.send(prefix + (text.encode() if isinstance(text, str) else text))
        return self.until(tag)

    def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def closed(self) -> bool:
        """True when the server has closed the connection (after any buffered lines)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(tenant: SandboxTenant) -> Iterator[Raw]:
    client = Raw.connect(tenant)
    yield client
    client.close()


@pytest.fixture(scope="session")
def alice_token(tenant: SandboxTenant, alice: str) -> str:
    return user_token(tenant, alice)


def signed_in(tenant: SandboxTenant, user: str, token: str, port: int | None = None) -> Raw:
    client = Raw.connect(tenant, port)
    client.line()  # greeting
    lines = client.command("a1", b"AUTHENTICATE XOAUTH2 " + xoauth2(user, token))
    assert lines[-1] == b"a1 OK AUTHENTICATE completed.", lines
    return client
