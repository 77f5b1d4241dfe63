"""The demo tenant a fresh sandbox starts with.

* tenant ``contoso.onmicrosoft.com``
* users ``alice@`` and ``bob@`` with random passwords (published in ``sandbox.json``)
* ``exoimap-public``: a public client (device code, browser with loopback redirect) with the
  delegated IMAP, POP and SMTP permissions on Exchange Online, admin-consented
* ``exoimap-daemon``: a confidential client with a client secret and a certificate, the
  ``IMAP.AccessAsApp`` application permission (admin-consented), registered in Exchange
  (``New-ServicePrincipal``) with FullAccess on alice's mailbox
"""

from __future__ import annotations

from pathlib import Path

from exoimap.sandbox.identity.admin import SandboxAdmin

__all__ = ["DEMO_DOMAIN", "app_cert_folder", "seed_demo_tenant"]

DEMO_DOMAIN = "contoso.onmicrosoft.com"
PUBLIC_APP = "exoimap-public"
DAEMON_APP = "exoimap-daemon"


def app_cert_folder(state_dir: Path, app_name: str) -> Path:
    """Where an app's certificate and key files live in a state folder."""
    return state_dir / "apps" / app_name


def seed_demo_tenant(admin: SandboxAdmin, state_dir: Path) -> None:
    """Create the demo tenant, users and apps (call on an empty directory)."""
    admin.create_tenant(DEMO_DOMAIN, display_name="Contoso")
    alice = admin.create_user(f"alice@{DEMO_DOMAIN}", display_name="Alice Smith")
    admin.create_user(f"bob@{DEMO_DOMAIN}", display_name="Bob Jones")
    admin.create_app(
        PUBLIC_APP,
        public=True,
        redirect_uris=["http://localhost"],
        delegated=[
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/POP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
        ],
        admin_consent=True,
    )
    admin.create_app(
        DAEMON_APP,
        public=False,
        application=["https://outlook.office365.com/IMAP.AccessAsApp"],
        admin_consent=True,
    )
    admin.add_client_secret(DAEMON_APP, display_name="demo")
    admin.add_certificate(DAEMON_APP, app_cert_folder(state_dir, DAEMON_APP))
    admin.register_exchange_principal(DAEMON_APP)
    admin.add_mailbox_permission(alice.upn, DAEMON_APP)
