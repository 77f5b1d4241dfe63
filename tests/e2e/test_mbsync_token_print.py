"""Real ``mbsync`` (isync) signs in to the sandbox's Exchange IMAP with XOAUTH2 through Cyrus
SASL (Debian's ``libsasl2-modules-kdexoauth2``), its password coming from
``PassCmd "exoimap token print work"``, exactly as docs/clients.md tells users to set it up.

The whole mailbox arrives. Then the sandbox expires the access token: its clock jumps past
the token's lifetime, so Exchange refuses it, and once this machine's clock also has the
token within five minutes of its end (what a real expiry looks like from both sides), the
second ``mbsync`` run still signs in, because ``token print`` refreshed first."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.auth.handout import MIN_VALIDITY
from exoimap.auth.vault import Vault
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.cli.token_helpers import digest, imap_accepts

MBSYNC = "/usr/bin/mbsync"  # Debian's isync (tools/system-packages)
#: Access tokens live just over the five minutes ``token print`` wants left.
LIFETIME = int(MIN_VALIDITY) + 5


@pytest.fixture
def short_lived_tokens(sandbox_tenant: SandboxTenant) -> Iterator[None]:
    sandbox_tenant.admin.configure(access_token_lifetime=LIFETIME)
    try:
        yield
    finally:
        sandbox_tenant.admin.configure(access_token_lifetime=3599)  # the tenant is shared


def mbsync_config(tenant: SandboxTenant, upn: str, maildir: Path) -> str:
    exoimap = Path(sys.executable).with_name("exoimap")
    return f"""\
IMAPAccount work
Host localhost
Port {tenant.imap_port}
User {upn}
PassCmd "{exoimap} token print work"
AuthMechs XOAUTH2
SSLType IMAPS
CertificateFile {tenant.ca_file}

IMAPStore work-remote
Account work

MaildirStore work-local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel work
Far :work-remote:
Near :work-local:
Patterns *
Create Near
SyncState *
"""


def run_mbsync(config: Path) -> None:
    done = subprocess.run(
        [MBSYNC, "-c", str(config), "work"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"mbsync failed:\n{done.stdout}\n{done.stderr}"


def maildir_counts(maildir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for new in maildir.rglob("new"):
        folder = new.parent
        name = folder.relative_to(maildir).as_posix()
        counts[name] = sum(1 for _ in new.iterdir()) + sum(1 for _ in (folder / "cur").iterdir())
    return counts


def stored_access_token() -> tuple[str, float]:
    """The access token in the vault now, and its ``exp`` claim."""
    stored = Vault.from_paths().load_token_cache("work")
    assert stored is not None
    (entry,) = json.loads(stored.reveal())["AccessToken"].values()
    token = str(entry["secret"])
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return token, float(claims["exp"])


def test_mbsync_signs_in_through_token_print_before_and_after_the_token_expires(
    sandbox_tenant: SandboxTenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    short_lived_tokens: None,
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 6, "Archive": 3})
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(mbsync_config(sandbox_tenant, upn, maildir))

    run_mbsync(config)
    remote = sandbox_tenant.mailbox_summary()[upn.lower()]
    assert maildir_counts(maildir) == remote  # the whole mailbox, every folder
    assert remote["INBOX"] == 6
    assert remote["Archive"] == 3

    # The sandbox expires the token mbsync signed in with.
    first, expires = stored_access_token()
    moved = LIFETIME + 60.0
    sandbox_tenant.admin.advance_clock(moved)
    try:
        assert not imap_accepts(sandbox_tenant, upn, first)
        # ... and on this machine's clock it is now within five minutes of its end.
        while expires - time.time() >= MIN_VALIDITY:
            time.sleep(0.2)
        sandbox_tenant.exchange.deliver(upn, sample_message(99, 2_000), folder="INBOX")

        run_mbsync(config)
        assert maildir_counts(maildir)["INBOX"] == 7  # signed in again, and synced
        second, _ = stored_access_token()
        assert digest(second) != digest(first)
        assert imap_accepts(sandbox_tenant, upn, second)
    finally:
        sandbox_tenant.admin.advance_clock(-moved)  # other tests share the tenant

    records = list(audit.read_records(Paths.from_env().audit_dir))
    handed = [r for r in records if r.event == "token.handed_out"]
    assert len(handed) >= 2
    assert all(r.outcome == "success" for r in handed)
    # mbsync asked (through the shell it runs PassCmd with), and a refresh came before the last
    assert any("mbsync[" in name for name in handed[-1].data["requested_by"])
    assert records.index(handed[-1]) > max(
        i for i, r in enumerate(records) if r.event == "token.refreshed"
    )
