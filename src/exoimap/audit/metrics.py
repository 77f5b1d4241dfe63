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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exoimap.audit.events import AuditEvent, FolderSynced, TokenFailed, TokenRefreshed
from exoimap.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["METRICS", "Metrics", "MetricsServer", "serve_metrics"]

_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class _Collectors:
    """The prometheus counters and histograms, once they are needed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Histogram

        r = registry
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


_Update = Callable[[_Collectors], None]


class Metrics:
    """exoimap's counters and histograms, in a registry of their own.

    ``prometheus_client`` is imported only when the metrics are first read (:attr:`registry`,
    :meth:`exposition`, :func:`serve_metrics`): until then updates are kept in order and
    replayed, so a one-shot command that never exposes them does not pay for the import."""

    #: Updates kept before they are applied anyway (a process that never reads its metrics).
    MAX_PENDING = 10_000

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._registry = registry
        self._collectors: _Collectors | None = None
        self._pending: list[_Update] = []
        self._lock = threading.Lock()

    @property
    def registry(self) -> CollectorRegistry:
        return self._build()[0]

    def _build(self) -> tuple[CollectorRegistry, _Collectors]:
        with self._lock:
            if self._collectors is None:
                if self._registry is None:
                    from prometheus_client import CollectorRegistry

                    self._registry = CollectorRegistry()
                self._collectors = _Collectors(self._registry)
                pending, self._pending = self._pending, []
                for update in pending:
                    update(self._collectors)
            assert self._registry is not None  # set above, or given to __init__
            return self._registry, self._collectors

    def _update(self, update: _Update) -> None:
        with self._lock:
            collectors = self._collectors
            if collectors is None:
                self._pending.append(update)
                if len(self._pending) < self.MAX_PENDING:
                    return
        if collectors is None:
            self._build()  # too many kept: apply them (and this one) now
        else:
            update(collectors)

    def observe_event(self, event: AuditEvent) -> None:
        """Count what an audit event says (an auditor listener)."""
        account = event.account or "-"
        if isinstance(event, FolderSynced):
            copied, size, failed = event.copied, event.bytes, event.failed

            def synced(m: _Collectors) -> None:
                m.messages_synced.labels(account).inc(copied)
                m.bytes_synced.labels(account).inc(size)
                if failed:
                    m.errors.labels("message").inc(failed)

            self._update(synced)
        elif isinstance(event, TokenRefreshed):
            flow = event.flow
            self._update(lambda m: m.token_refreshes.labels(account, flow).inc())
        elif isinstance(event, TokenFailed):
            self._update(lambda m: m.errors.labels("token").inc())
        elif event.name == "imap.auth_failed":
            self._update(lambda m: m.errors.labels("imap_auth").inc())

    def record_error(self, kind: str | BaseException) -> None:
        """Count an error; an exception counts under its class name."""
        label = kind if isinstance(kind, str) else type(kind).__name__
        self._update(lambda m: m.errors.labels(label).inc())

    def record_throttle_wait(self, seconds: float, account: str | None = None) -> None:
        self._update(lambda m: m.throttle_wait.labels(account or "-").observe(seconds))

    @contextlib.contextmanager
    def time_sync(self, account: str | None = None) -> Iterator[None]:
        """Time a sync run (recorded even when it fails)."""
        start = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - start
            self._update(lambda m: m.sync_duration.labels(account or "-").observe(took))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        from prometheus_client import generate_latest

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
    from prometheus_client.exposition import start_http_server

    registry = (metrics or METRICS).registry
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    return MetricsServer(host, int(server.server_port), server, thread)
