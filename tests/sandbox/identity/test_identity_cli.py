"""``exoimap sandbox up`` / ``approve`` / admin commands as real processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msal
import pytest
import requests

from exoimap.cli import main
from exoimap.sandbox.identity import PUBLIC_APP

EXOIMAP = str(Path(sys.executable).parent / "exoimap")
IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "EXOIMAP_HOME": str(tmp_path / "home")}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """Run ``exoimap sandbox ...`` in this process: a process apart from ``up``, like a
    second terminal, without paying the interpreter start-up for every command."""
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path / "home"))

    def call(*args: str) -> Ran:
        capsys.readouterr()
        code = main(["sandbox", *args])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return call


class Up:
    def __init__(self, tmp_path: Path, state: Path) -> None:
        self.process = subprocess.Popen(
            [EXOIMAP, "sandbox", "up", "--state", str(state)],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.banner: list[str] = []
        for line in self.process.stdout:
            self.banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise AssertionError("sandbox up ended early: " + self.process.stderr.read())  # type: ignore[union-attr]

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        out, _err = self.process.communicate(timeout=20)
        return self.process.returncode, out


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[Up, Path]]:
    state = tmp_path / "state"
    server = Up(tmp_path, state)
    yield server, state
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def _client(document: dict[str, object], session: requests.Session) -> msal.ClientApplication:
    apps = document["apps"]
    assert isinstance(apps, list)
    public = next(a for a in apps if a["name"] == PUBLIC_APP)
    return msal.PublicClientApplication(
        public["client_id"],
        authority=str(document["authority"]),
        http_client=session,
        instance_discovery=False,
    )


def test_up_writes_sandbox_json_approve_live_admin_and_ctrl_c(
    up: tuple[Up, Path], tmp_path: Path, run: Callable[..., Ran]
) -> None:
    server, state = up
    path = state / "sandbox.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    document = json.loads(path.read_text())
    assert document["authority"] == f"{document['identity_url']}/{document['tenant_id']}"
    assert document["tenant_domain"] == "contoso.onmicrosoft.com"
    assert {u["upn"] for u in document["users"]} >= {"alice@contoso.onmicrosoft.com"}
    assert all(u["password"] for u in document["users"])
    daemon = next(a for a in document["apps"] if a["type"] == "confidential")
    assert daemon["client_secret"]
    assert Path(daemon["certificate_file"]).exists()
    assert stat.S_IMODE(Path(daemon["private_key_file"]).stat().st_mode) == 0o600
    for secret in [daemon["client_secret"], *(u["password"] for u in document["users"])]:
        assert secret not in "".join(server.banner)

    session = requests.Session()
    session.verify, session.trust_env = document["ca_file"], False
    client = _client(document, session)

    # approve from "another terminal"
    flow = client.initiate_device_flow([IMAP])
    approved = run("approve", flow["user_code"], "--state", str(state))
    assert approved.returncode == 0, approved.stderr
    assert "approved" in approved.stdout
    result = client.acquire_token_by_device_flow(flow)
    assert result["id_token_claims"]["preferred_username"] == "alice@contoso.onmicrosoft.com"

    # an admin change made by another process takes effect on the running server
    added = run("user", "add", "dave@contoso.onmicrosoft.com", "--state", str(state))
    assert added.returncode == 0, added.stderr
    refreshed = json.loads(path.read_text())
    assert "dave@contoso.onmicrosoft.com" in {u["upn"] for u in refreshed["users"]}
    assert refreshed["identity_url"] == document["identity_url"]
    flow = client.initiate_device_flow([IMAP])
    as_dave = run(
        "approve",
        flow["user_code"],
        "--as",
        "dave@contoso.onmicrosoft.com",
        "--state",
        str(state),
    )
    assert as_dave.returncode == 0, as_dave.stderr
    result = client.acquire_token_by_device_flow(flow)
    assert result["id_token_claims"]["preferred_username"] == "dave@contoso.onmicrosoft.com"

    # a wrong code is a clear error, not a traceback
    wrong = run("approve", "NOPENOPE1", "--state", str(state))
    assert wrong.returncode == 2
    assert "no pending device code" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    # fail-next from the CLI reaches the running server; info hides secrets
    failed = run("fail-next", "50076", "--state", str(state))
    assert failed.returncode == 0, failed.stderr
    flow = client.initiate_device_flow([IMAP])
    assert run("approve", flow["user_code"], "--state", str(state)).returncode == 0
    assert client.acquire_token_by_device_flow(flow)["error_codes"] == [50076]
    info = run("info", "--state", str(state))
    assert info.returncode == 0
    assert daemon["client_secret"] not in info.stdout
    assert '"password": "***"' in info.stdout

    rc, out = server.stop()
    assert rc == 0
    assert "stopped" in out
    session.close()

    # a second `up` on the same folder reuses the tenant
    again = Up(tmp_path, state)
    try:
        assert json.loads(path.read_text())["tenant_id"] == document["tenant_id"]
    finally:
        assert again.stop()[0] == 0
