"""Prometheus metrics in exoimap's own registry, fed by audit events, served on loopback."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import prometheus_client
import pytest

from exoimap import audit
from exoimap.metrics import METRICS, Metrics, serve_metrics


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


def test_runs_and_throttling_are_counted_from_their_events() -> None:
    metrics = Metrics()
    auditor = audit.Auditor(None)
    auditor.add_listener(metrics.observe_event)
    auditor.emit(audit.ImapThrottled(account="work", host="h", wait_s=2.5))
    auditor.emit(audit.AccountSynced(account="work", copied=4, duration_s=12.0))
    auditor.emit(
        audit.AccountSynced(
            account="work", outcome="failure", error_kind="StoreLocked", duration_s=0.5
        )
    )
    auditor.emit(audit.AccountSynced(account="work", dry_run=True, error_kind="TimeoutError"))
    auditor.emit(
        audit.FolderSynced(
            account="work", folder="INBOX", failed=2, error_kinds=("FetchFailed", "FetchFailed")
        )
    )
    auditor.emit(audit.ArchiveRead(account="work", messages=3))  # counts nothing
    assert value(metrics, "exoimap_throttle_wait_seconds_sum", account="work") == 2.5
    assert value(metrics, "exoimap_sync_duration_seconds_count", account="work") == 2  # not dry
    assert value(metrics, "exoimap_sync_duration_seconds_sum", account="work") == 12.5
    assert value(metrics, "exoimap_errors_total", kind="StoreLocked") == 1
    assert value(metrics, "exoimap_errors_total", kind="TimeoutError") == 1
    assert value(metrics, "exoimap_errors_total", kind="FetchFailed") == 2
    assert value(metrics, "exoimap_errors_total", kind="message") == 2


def test_own_registry_not_the_global_one() -> None:
    Metrics().observe_event(audit.TokenFailed(account="a", flow="device"))
    assert (
        prometheus_client.REGISTRY.get_sample_value("exoimap_errors_total", {"kind": "token"})
        is None
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
    from exoimap.cli.metrics import metrics_endpoint

    with metrics_endpoint(None) as url:
        assert url is None
    assert capsys.readouterr().err == ""
    METRICS.observe_event(audit.AccountSynced(account="a", error_kind="EndpointTest"))
    with metrics_endpoint(0) as url:
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            assert 'exoimap_errors_total{kind="EndpointTest"} 1.0' in response.read().decode()
    assert f"metrics: {url}" in capsys.readouterr().err


def test_prometheus_is_imported_only_when_metrics_are_read() -> None:
    """A one-shot command that records metrics but never exposes them does not import
    prometheus_client; reading them replays every update in order."""
    code = (
        "import sys\n"
        "from exoimap import audit\n"
        "from exoimap.metrics import Metrics\n"
        "m = Metrics()\n"
        "boom = audit.AccountSynced(account='a', outcome='failure', error_kind='boom')\n"
        "m.observe_event(boom); m.observe_event(boom)\n"
        "m.observe_event(audit.ImapThrottled(account='a', host='h', wait_s=2.5))\n"
        "assert 'prometheus_client' not in sys.modules, 'imported too early'\n"
        "text = m.exposition().decode()\n"
        "assert 'prometheus_client' in sys.modules\n"
        "assert 'exoimap_errors_total{kind=\"boom\"} 2.0' in text, text\n"
        "assert 'exoimap_throttle_wait_seconds_count{account=\"a\"} 1.0' in text, text\n"
        "assert 'exoimap_sync_duration_seconds_count{account=\"a\"} 2.0' in text, text\n"
        "m.observe_event(boom)\n"
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
        metrics.observe_event(audit.AccountSynced(account="a", error_kind="x"))
    assert metrics._pending == []  # applied without anyone reading
    assert 'exoimap_errors_total{kind="x"} 5.0' in metrics.exposition().decode()
