"""The identity server keeps idle HTTPS connections open longer than the device-code poll
interval (a poll must never race the server closing the client's pooled connection), as
configured, and still stops quickly with idle connections open."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from exoimap.sandbox.identity import IdentitySandbox, RunningIdentity, Settings

EXOIMAP = str(Path(sys.executable).parent / "exoimap")


@pytest.fixture
def serving(tmp_path: Path) -> IdentitySandbox:
    return IdentitySandbox.open(str(tmp_path / "state"))  # a str path works too


def _discovery(running: RunningIdentity) -> str:
    return f"/{running.tenant_id}/v2.0/.well-known/openid-configuration"


def _connection(running: RunningIdentity) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(running.ca_file))
    return http.client.HTTPSConnection("127.0.0.1", running.port, context=context, timeout=10)


def _get(connection: http.client.HTTPSConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def test_open_takes_a_str_path(serving: IdentitySandbox, tmp_path: Path) -> None:
    assert serving.state_dir == tmp_path / "state"
    assert (tmp_path / "state" / "directory.json").exists()


def test_default_keep_alive_outlasts_the_device_code_poll_interval() -> None:
    defaults = Settings()
    assert defaults.http_keep_alive >= 4 * defaults.device_code_interval


def test_a_pooled_connection_idle_for_less_than_the_keep_alive_is_still_served(
    serving: IdentitySandbox,
) -> None:
    serving.admin.configure(http_keep_alive=3, device_code_interval=1)
    with serving.running() as running:
        connection = _connection(running)
        assert _get(connection, _discovery(running)) == 200
        first = connection.sock
        time.sleep(1.5)  # longer than the poll interval, shorter than the keep-alive
        assert _get(connection, _discovery(running)) == 200
        assert connection.sock is first  # the same TCP connection: no reconnect
        connection.close()


def test_a_connection_idle_for_longer_than_the_keep_alive_is_closed_by_the_server(
    serving: IdentitySandbox,
) -> None:
    serving.admin.configure(http_keep_alive=1)
    with serving.running() as running:
        connection = _connection(running)
        assert _get(connection, _discovery(running)) == 200
        time.sleep(2.5)
        with pytest.raises((OSError, http.client.HTTPException)):
            _get(connection, _discovery(running))  # the server closed it: the setting holds
        connection.close()


def test_up_stops_quickly_with_idle_keep_alive_connections_open(tmp_path: Path) -> None:
    state = tmp_path / "state"
    process = subprocess.Popen(
        [EXOIMAP, "sandbox", "up", "--state", str(state), "--messages", "0"],
        env={**os.environ, "EXOIMAP_HOME": str(tmp_path / "home")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sessions = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        document = json.loads((state / "sandbox.json").read_text())
        tenant = document["tenant_id"]
        url = f"{document['identity_url']}/{tenant}/v2.0/.well-known/openid-configuration"
        for _ in range(3):  # pooled connections left idle, as MSAL's session leaves them
            session = requests.Session()
            session.verify, session.trust_env = document["ca_file"], False
            assert session.get(url, timeout=10).status_code == 200
            sessions.append(session)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for session in sessions:
            session.close()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert out.rstrip().endswith("exoimap sandbox: stopped")
    assert took < 10, f"stopping took {took:.1f} s with idle connections open"
