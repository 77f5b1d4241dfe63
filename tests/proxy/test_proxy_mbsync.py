"""Real ``mbsync`` (isync) through ``exoimap proxy`` against the sandbox's Exchange IMAP: it
signs in with an app password (AUTH=PLAIN), trusts the proxy's exported CA, and the whole
mailbox arrives byte for byte (but for the line ends and the ``X-TUID`` header that mbsync
itself changes and adds); a message added later arrives on the next run."""

from __future__ import annotations

import imaplib
import re
import subprocess
from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.proxy.proxy_helpers import book, running_proxy

pytestmark = pytest.mark.xdist_group("sandbox")

MBSYNC = "/usr/bin/mbsync"  # Debian's isync (tools/system-packages)


def mbsync_config(port: int, upn: str, password_file: Path, ca_file: Path, maildir: Path) -> str:
    return f"""\
IMAPAccount work
Host 127.0.0.1
Port {port}
User {upn}
PassCmd "cat {password_file}"
AuthMechs PLAIN
SSLType IMAPS
CertificateFile {ca_file}

IMAPStore work-remote
Account work

MaildirStore work-local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel work
Far :work-remote:
Near :work-local:
Patterns INBOX Archive
Create Near
SyncState *
"""


def run_mbsync(config: Path) -> None:
    done = subprocess.run(
        [MBSYNC, "-c", str(config), "work"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"mbsync failed:\n{done.stdout}\n{done.stderr}"


def maildir_messages(folder: Path) -> list[bytes]:
    """The messages as mbsync stored them, without the ``X-TUID`` header it adds while
    copying (its own bookkeeping)."""
    files = [*(folder / "new").iterdir(), *(folder / "cur").iterdir()]
    return sorted(re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", p.read_bytes(), count=1) for p in files)


def server_messages(tenant: SandboxTenant, upn: str, folder: str) -> list[bytes]:
    client = imaplib.IMAP4_SSL(
        tenant.imap_host, tenant.imap_port, ssl_context=tenant.ssl_context(), timeout=30
    )
    try:
        token = tenant.user_token(upn)
        client.authenticate("XOAUTH2", lambda _: tenant.xoauth2(upn, token))
        client.select(folder, readonly=True)
        _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        # mbsync stores Maildir files with LF line ends (its default)
        return sorted(item[1].replace(b"\r\n", b"\n") for item in data if isinstance(item, tuple))
    finally:
        client.logout()


def test_mbsync_through_the_proxy_is_byte_exact(
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 6, "Archive": 3})
    password_file = tmp_path / "app-password"
    password_file.write_text(book(Paths.from_env()).add("mbsync", "work").reveal())
    capsys.readouterr()
    assert main(["proxy", "ca"]) == 0
    ca_file = tmp_path / "proxy-ca.pem"
    ca_file.write_text(capsys.readouterr().out)
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    with running_proxy(Paths.from_env()) as proxy:
        config.write_text(mbsync_config(proxy.port, upn, password_file, ca_file, maildir))
        run_mbsync(config)
        for folder in ("INBOX", "Archive"):
            assert maildir_messages(maildir / folder) == server_messages(
                sandbox_tenant, upn, folder
            )
        sandbox_tenant.exchange.deliver(upn, sample_message(500, 80_000), folder="INBOX")
        run_mbsync(config)
    inbox = maildir_messages(maildir / "INBOX")
    assert len(inbox) == 7
    assert inbox == server_messages(sandbox_tenant, upn, "INBOX")
