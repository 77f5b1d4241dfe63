"""``exoimap sync --metrics-port``: Prometheus metrics served while the sync runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import isolated_home, signed_in_account

CLI = "import sys; from exoimap.cli import main; sys.exit(main())"


def test_metrics_are_served_while_the_sync_runs(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "fast", {"INBOX": 3})
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as slow_server:
        signed_in_account(sandbox_tenant, "slow", {"INBOX": 4}, exchange=slow_server)
        slow_server.faults.delay = 0.15  # every server write waits: "slow" takes seconds
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLI,
                "sync",
                "fast",
                "slow",
                "--folder",
                "INBOX",
                "--metrics-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert process.stderr is not None
        url: list[str] = []
        found = threading.Event()
        errors: list[str] = []

        def read_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                errors.append(line)
                match = re.match(r"metrics: (http://127\.0\.0\.1:\d+/metrics)", line)
                if match:
                    url.append(match.group(1))
                    found.set()
            found.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            assert found.wait(60), "".join(errors)
            assert url, "".join(errors)
            scraped = ""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with urllib.request.urlopen(url[0], timeout=5) as answer:
                    scraped = answer.read().decode()
                if 'exoimap_messages_synced_total{account="fast"} 3.0' in scraped:
                    break
                time.sleep(0.1)
            still_running = process.poll() is None
            out, _ = process.communicate(timeout=120)
        finally:
            slow_server.faults.clear()
            if process.poll() is None:
                process.kill()
                process.wait()
    assert 'exoimap_messages_synced_total{account="fast"} 3.0' in scraped
    assert still_running, "the metrics must be readable while the sync is still running"
    assert process.returncode == 0, "".join(errors)
    assert "fast: fetched 3 messages" in out
    assert "slow: fetched 4 messages" in out
