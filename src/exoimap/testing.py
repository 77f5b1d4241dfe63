"""pytest plugin (entry point ``exoimap``): an offline Microsoft 365 tenant for your tests.

Installing exoimap registers this plugin, so any project's tests can use these fixtures
without configuration. Nothing starts unless a test asks for a fixture.

``sandbox_tenant`` (session scope)
    A running sandbox tenant, both halves, in a background thread: the Microsoft identity
    platform emulator (HTTPS, real MSAL works against it) and the Exchange Online IMAP
    emulator (implicit TLS), sharing a temporary state folder. It yields a
    :class:`exoimap.sandbox.tenant.SandboxTenant`:

    * ``authority``, ``ca_file``, ``tenant_id``, ``tenant_domain`` for MSAL (pass
      ``http_client=tenant.http_session()``: it trusts the sandbox CA and ignores
      ``REQUESTS_CA_BUNDLE``), ``ssl_context()`` for IMAP clients;
    * ``imap_host`` / ``imap_port``;
    * ``users`` (UPN, password) and ``apps`` (client ids, secrets, certificate files) of the
      demo tenant: ``alice@`` and ``bob@contoso.onmicrosoft.com``, the public client
      ``exoimap-public`` and the confidential ``exoimap-daemon`` (IMAP.AccessAsApp with
      FullAccess on alice's mailbox);
    * ``user_token(upn)`` and ``app_token(app)``: access tokens through real MSAL;
    * ``admin``: the identity admin API (users, apps, grants, mailbox permissions, error
      injection, the sandbox clock);
    * ``exchange``: changes "from another client" (``deliver``, ``set_flags``,
      ``delete``, ``move``), ``reset_uidvalidity``, ``replace_content`` (other bytes
      under the same UID), ``restart``, and transport ``faults``;
    * ``extra_server(settings)``: another IMAP server with other behaviour switches.

    Each user's mailbox starts with the Exchange folder set and generated mail
    (``--exoimap-seed-messages``, default 20). Idle timeouts are 30 s.

``sandbox_imap`` (function scope)
    A connected, signed-in ``imaplib.IMAP4_SSL`` for the first demo user (XOAUTH2 with a
    delegated token); logged out after the test.

Example::

    def test_inbox_has_mail(sandbox_imap):
        status, data = sandbox_imap.select("INBOX")
        assert status == "OK"

The heavy imports happen inside the fixtures, so the plugin costs nothing at start-up.
"""

from __future__ import annotations

import imaplib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from exoimap.sandbox.tenant import SandboxTenant

__all__ = ["pytest_addoption", "sandbox_imap", "sandbox_tenant"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exoimap", "exoimap sandbox tenant")
    group.addoption(
        "--exoimap-seed-messages",
        type=int,
        default=20,
        help="Messages generated into each sandbox mailbox (default 20).",
    )


@pytest.fixture(scope="session")
def sandbox_tenant(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[SandboxTenant]:
    """A running offline tenant (identity + Exchange IMAP); see the module docstring."""
    from exoimap.sandbox.exchange.config import ExchangeSettings
    from exoimap.sandbox.tenant import TenantOptions, running_tenant

    options = TenantOptions(
        exchange=ExchangeSettings.for_tests(authenticated_timeout=30.0, preauth_timeout=30.0),
        seed_messages=int(pytestconfig.getoption("--exoimap-seed-messages")),
    )
    with running_tenant(tmp_path_factory.mktemp("exoimap-sandbox") / "state", options) as tenant:
        tenant.admin.configure(device_code_interval=1)
        yield tenant


@pytest.fixture
def sandbox_imap(sandbox_tenant: SandboxTenant) -> Iterator[imaplib.IMAP4_SSL]:
    """``imaplib`` signed in to the first demo user's mailbox over TLS."""
    upn = sandbox_tenant.users[0][0]
    token = sandbox_tenant.user_token(upn)
    client = imaplib.IMAP4_SSL(
        sandbox_tenant.imap_host,
        sandbox_tenant.imap_port,
        ssl_context=sandbox_tenant.ssl_context(),
        timeout=30,
    )
    client.authenticate("XOAUTH2", lambda _: sandbox_tenant.xoauth2(upn, token))
    try:
        yield client
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            client.shutdown()
