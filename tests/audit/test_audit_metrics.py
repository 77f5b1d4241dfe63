"""Prometheus metrics in exoimap's own registry, served on loopback."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import prometheus_client
import pytest

from exoimap import audit
from exoimap.audit.metrics import Metrics, serve_metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_events_feed_the_counters() -> None:
    metrics = Metrics()
    auditor = audit.Auditor(None)
    auditor.add_listener(metrics.observe_event)
    auditor.emit(audit.FolderSynced(account="work", folder="INBOX", copied=7, bytes=7000))
    auditor.emit(audit.FolderSynced(account="work", folder="Sent", copied=3, bytes=300, failed=2))
    auditor.emit(audit.TokenRefreshed(account="work", flow="device"))
    auditor.emit(audit.TokenFailed(account="work", flow="device"))
    auditor.emit(audit.ImapAuthFailed(account="work", host="h", mechanism="XOAUTH2"))
    assert value(metrics, "exoimap_messages_synced_total", account="work") == 10
    assert value(metrics, "exoimap_bytes_synced_total", account="work") == 7300
    assert value(metrics, "exoimap_token_refreshes_total", account="work", flow="device") == 1
    assert value(metrics, "exoimap_errors_total", kind="message") == 2
    assert value(metrics, "exoimap_errors_total", kind="token") == 1
    assert value(metrics, "exoimap_errors_total", kind="imap_auth") == 1


def test_direct_observations() -> None:
    metrics = Metrics()
    metrics.record_error(TimeoutError())
    metrics.record_error("disk")
    metrics.record_throttle_wait(2.5, "work")
    with pytest.raises(RuntimeError), metrics.time_sync("work"):
        raise RuntimeError("a failed run is timed too")
    assert value(metrics, "exoimap_errors_total", kind="TimeoutError") == 1
    assert value(metrics, "exoimap_errors_total", kind="disk") == 1
    assert value(metrics, "exoimap_throttle_wait_seconds_sum", account="work") == 2.5
    assert value(metrics, "exoimap_sync_duration_seconds_count", account="work") == 1


def test_own_registry_not_the_global_one() -> None:
    Metrics().record_error("x")
    assert (
        prometheus_client.REGISTRY.get_sample_value("exoimap_errors_total", {"kind": "x"}) is None
    )


def test_served_on_loopback() -> None:
    metrics = Metrics()
    metrics.observe_event(audit.FolderSynced(account="work", folder="INBOX", copied=4, bytes=10))
    with serve_metrics(0, metrics=metrics) as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as response:
            body = response.read().decode()
    assert 'exoimap_messages_synced_total{account="work"} 4.0' in body
    assert body == metrics.exposition().decode()


def test_metrics_endpoint_for_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from exoimap.audit.metrics import METRICS
    from exoimap.cli.metrics import metrics_endpoint

    with metrics_endpoint(None) as url:
        assert url is None
    assert capsys.readouterr().err == ""
    METRICS.record_error("endpoint-test")
    with metrics_endpoint(0) as url:
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            assert 'exoimap_errors_total{kind="endpoint-test"} 1.0' in response.read().decode()
    assert f"metrics: {url}" in capsys.readouterr().err


def test_prometheus_is_imported_only_when_metrics_are_read() -> None:
    """A one-shot command that records metrics but never exposes them does not import
    prometheus_client; reading them replays every update in order."""
    code = (
        "import sys\n"
        "from exoimap.audit.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.record_error('boom'); m.record_error('boom'); m.record_throttle_wait(2.5, 'a')\n"
        "with m.time_sync('a'):\n"
        "    pass\n"
        "assert 'prometheus_client' not in sys.modules, 'imported too early'\n"
        "text = m.exposition().decode()\n"
        "assert 'prometheus_client' in sys.modules\n"
        "assert 'exoimap_errors_total{kind=\"boom\"} 2.0' in text, text\n"
        "assert 'exoimap_throttle_wait_seconds_count{account=\"a\"} 1.0' in text, text\n"
        "assert 'exoimap_sync_duration_seconds_count{account=\"a\"} 1.0' in text, text\n"
        "m.record_error('boom')\n"
        "assert 'exoimap_errors_total{kind=\"boom\"} 3.0' in m.exposition().decode()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_updates_beyond_the_pending_limit_are_applied() -> None:
    metrics = Metrics()
    metrics.MAX_PENDING = 3
    for _ in range(5):
        metrics.record_error("x")
    assert metrics._pending == []  # applied without anyone reading
    assert 'exoimap_errors_total{kind="x"} 5.0' in metrics.exposition().decode()
