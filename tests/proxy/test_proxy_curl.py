"""Real ``curl`` (``imaps://``) through ``exoimap proxy`` against the sandbox's Exchange IMAP:
it trusts the proxy's CA, signs in with an app password and reads a message byte for byte;
with a wrong password it is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.proxy.proxy_helpers import book, running_proxy

pytestmark = pytest.mark.xdist_group("sandbox")

CURL = "/usr/bin/curl"


def curl(url: str, user: str, ca_file: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [CURL, "--silent", "--show-error", "--cacert", str(ca_file), "--user", user, url],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_curl_reads_a_message_through_the_proxy(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
    password = book(Paths.from_env()).add("curl", "work").reveal()
    with running_proxy(Paths.from_env()) as proxy:
        url = f"imaps://127.0.0.1:{proxy.port}/INBOX;UID=2"
        done = curl(url, f"{upn}:{password}", proxy.ca_file)
        assert done.returncode == 0, done.stderr
        assert done.stdout == sample_message(2, 500 + 37 * 2)
        refused = curl(url, f"{upn}:not-the-password", proxy.ca_file)
    assert refused.returncode == 67  # CURLE_LOGIN_DENIED
    assert refused.stdout == b""
