"""Prometheus metrics: what sync and sign-in are doing, for a dashboard.

The metrics live in exoimap's own registry (never ``prometheus_client``'s global one, so
an application embedding exoimap keeps its own). Most of them follow from audit events:
attach :meth:`Metrics.observe_event` to an auditor (``auditor.add_listener(...)``) and every
``sync.folder`` and ``token.*`` event counts. Throttling waits, errors and run durations are
recorded directly by the code that sees them.

``serve_metrics(port)`` exposes ``/metrics`` over HTTP on 127.0.0.1 (port 0: the OS picks).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

from exoimap.audit.events import AuditEvent, FolderSynced, TokenFailed, TokenRefreshed
from exoimap.errors import ConfigError

__all__ = ["METRICS", "Metrics", "MetricsServer", "serve_metrics"]

_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class Metrics:
    """exoimap's counters and histograms, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_synced = Counter(
            "exoimap_messages_synced", "Messages copied by sync.", ["account"], registry=r
        )
        self.bytes_synced = Counter(
            "exoimap_bytes_synced", "Message bytes copied by sync.", ["account"], registry=r
        )
        self.errors = Counter("exoimap_errors", "Errors by kind.", ["kind"], registry=r)
        self.throttle_wait = Histogram(
            "exoimap_throttle_wait_seconds",
            "Time spent waiting because the server throttled us.",
            ["account"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.token_refreshes = Counter(
            "exoimap_token_refreshes",
            "Access tokens renewed with a refresh token.",
            ["account", "flow"],
            registry=r,
        )
        self.sync_duration = Histogram(
            "exoimap_sync_duration_seconds",
            "Duration of a whole sync run.",
            ["account"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )

    def observe_event(self, event: AuditEvent) -> None:
        """Count what an audit event says (an auditor listener)."""
        account = event.account or "-"
        if isinstance(event, FolderSynced):
            self.messages_synced.labels(account).inc(event.copied)
            self.bytes_synced.labels(account).inc(event.bytes)
            if event.failed:
                self.errors.labels("message").inc(event.failed)
        elif isinstance(event, TokenRefreshed):
            self.token_refreshes.labels(account, event.flow).inc()
        elif isinstance(event, TokenFailed):
            self.errors.labels("token").inc()
        elif event.name == "imap.auth_failed":
            self.errors.labels("imap_auth").inc()

    def record_error(self, kind: str | BaseException) -> None:
        """Count an error; an exception counts under its class name."""
        label = kind if isinstance(kind, str) else type(kind).__name__
        self.errors.labels(label).inc()

    def record_throttle_wait(self, seconds: float, account: str | None = None) -> None:
        self.throttle_wait.labels(account or "-").observe(seconds)

    @contextlib.contextmanager
    def time_sync(self, account: str | None = None) -> Iterator[None]:
        """Time a sync run (recorded even when it fails)."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.sync_duration.labels(account or "-").observe(time.monotonic() - start)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return bytes(generate_latest(self.registry))


#: The process's metrics (the sync command and the console expose this one).
METRICS = Metrics()


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` stops it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(
    port: int = 0, *, host: str = "127.0.0.1", metrics: Metrics | None = None
) -> MetricsServer:
    """Serve ``metrics`` (default :data:`METRICS`) on ``host:port`` in a daemon thread."""
    registry = (metrics or METRICS).registry
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    return MetricsServer(host, int(server.server_port), server, thread)
