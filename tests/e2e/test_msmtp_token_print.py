"""Real ``msmtp`` sends through the sandbox's Exchange SMTP submission endpoint with XOAUTH2,
its token coming from ``passwordeval "exoimap token print work"``, as docs/clients.md sets it
up (STARTTLS on the submission port, ``auth xoauth2``). The message arrives in the
recipient's INBOX and in the sender's Sent Items."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, new_mailbox, signed_in_account
from tests.proxy.proxy_helpers import mailbox_folder

pytestmark = pytest.mark.xdist_group("sandbox")

MSMTP = "/usr/bin/msmtp"  # Debian's msmtp (tools/system-packages)

MESSAGE = (
    b"From: the sender\r\nTo: the recipient\r\nSubject: sent by msmtp\r\n"
    b"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\nMessage-ID: <msmtp-1@example.test>\r\n\r\n"
    b"Sent with msmtp and exoimap token print.\r\n"
)


def msmtp_config(tenant: SandboxTenant, upn: str) -> str:
    exoimap = Path(sys.executable).with_name("exoimap")
    return f"""\
account work
host localhost
port {tenant.smtp_port}
tls on
tls_starttls on
tls_trust_file {tenant.ca_file}
auth xoauth2
user {upn}
from {upn}
passwordeval "{exoimap} token print work"

account default : work
"""


def test_msmtp_sends_with_a_token_from_token_print(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {}, smtp=True)
    recipient = new_mailbox(sandbox_tenant, {})
    config = tmp_path / "msmtprc"
    config.write_text(msmtp_config(sandbox_tenant, upn))
    config.chmod(0o600)  # msmtp refuses a configuration others can read
    done = subprocess.run(
        [MSMTP, "-C", str(config), "-a", "work", recipient],
        input=MESSAGE,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert mailbox_folder(sandbox_tenant, recipient, "INBOX") == [MESSAGE]
    assert mailbox_folder(sandbox_tenant, upn, "Sent Items") == [MESSAGE]
