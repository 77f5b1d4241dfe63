"""Prometheus metrics: what sync and sign-in are doing, for a dashboard.

Metrics are fed by the audit trail and nothing else: the code that does the work only emits
audit events, and :meth:`Metrics.observe_event`, attached as an auditor listener
(``audit.auditing(..., listeners=[METRICS.observe_event])``), turns them into counters. So
this module sits above :mod:`exoimap.audit` and beside :mod:`exoimap.app`; nothing below the
commands imports it (an import-linter contract keeps it so).

=======================================  ====================================================
audit event                              counts in
=======================================  ====================================================
``sync.folder``                          ``exoimap_messages_synced``, ``exoimap_bytes_synced``,
                                         ``exoimap_errors{kind="message"}`` (failed) and one
                                         ``exoimap_errors{kind=<error class>}`` per error
``sync.account``                         ``exoimap_sync_duration_seconds`` (not dry runs),
                                         ``exoimap_errors{kind=<error class>}`` when it failed
``imap.throttled``                       ``exoimap_throttle_wait_seconds``
``token.refreshed``                      ``exoimap_token_refreshes``
``token.failed`` / ``imap.auth_failed``  ``exoimap_errors{kind="token"|"imap_auth"}``
``watch.state``                          ``exoimap_watch_state{account,state}`` (1: current)
``access.denied``                        ``exoimap_errors{kind="access_denied"}`` (e.g. a
                                         wrong app password at ``exoimap proxy``)
=======================================  ====================================================

The metrics live in exoimap's own registry (never ``prometheus_client``'s global one, so an
application embedding exoimap keeps its own). One exception to "fed by audit events":
``exoimap proxy`` counts its per-command traffic (:mod:`exoimap.proxy.meter`) straight
into this registry, since an audit record per command would cost more than the command.
``serve_metrics(port)`` exposes ``/metrics`` over HTTP on 127.0.0.1 (port 0: the OS picks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exoimap.audit.events import (
    AccessDenied,
    AccountSynced,
    AuditEvent,
    FolderSynced,
    ImapAuthFailed,
    ImapThrottled,
    TokenFailed,
    TokenRefreshed,
    WatchStateChanged,
)
from exoimap.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["METRICS", "Metrics", "MetricsServer", "serve_metrics"]

_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class _Collectors:
    """The prometheus counters and histograms, once they are needed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

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
        self.watch_state = Gauge(
            "exoimap_watch_state",
            "1 for the state each watched account is in (exoimap watch), 0 for the others.",
            ["account", "state"],
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
        """Count what an audit event says (an auditor listener); other events count nothing."""
        counter = _COUNTERS.get(type(event))
        if counter is not None:
            self._update(counter(event))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


def _folder_synced(event: FolderSynced) -> _Update:
    account, copied, size, failed = event.account or "-", event.copied, event.bytes, event.failed
    kinds = event.error_kinds

    def update(m: _Collectors) -> None:
        m.messages_synced.labels(account).inc(copied)
        m.bytes_synced.labels(account).inc(size)
        if failed:
            m.errors.labels("message").inc(failed)
        for kind in kinds:
            m.errors.labels(kind).inc()

    return update


def _account_synced(event: AccountSynced) -> _Update:
    account, took, kind = event.account or "-", event.duration_s, event.error_kind
    timed = not event.dry_run  # a dry run is not a sync: its duration would skew the histogram

    def update(m: _Collectors) -> None:
        if timed:
            m.sync_duration.labels(account).observe(took)
        if kind:
            m.errors.labels(kind).inc()

    return update


def _throttled(event: ImapThrottled) -> _Update:
    account, wait = event.account or "-", event.wait_s
    return lambda m: m.throttle_wait.labels(account).observe(wait)


def _token_refreshed(event: TokenRefreshed) -> _Update:
    account, flow = event.account or "-", event.flow
    return lambda m: m.token_refreshes.labels(account, flow).inc()


#: The states of ``exoimap watch`` (exoimap.app.watch.MailboxHealth).
WATCH_STATES = ("starting", "syncing", "watching", "reconnecting", "signin_needed")


def _watch_state(event: WatchStateChanged) -> _Update:
    account, state = event.account or "-", event.state

    def update(m: _Collectors) -> None:
        for known in WATCH_STATES:
            m.watch_state.labels(account, known).set(1 if known == state else 0)

    return update


def _error_of_kind(kind: str) -> Callable[[AuditEvent], _Update]:
    return lambda _event: lambda m: m.errors.labels(kind).inc()


# Each event class the metrics count, and how: the event's values are read at once (the
# update may run later, when prometheus_client is first needed).
_COUNTERS: dict[type[AuditEvent], Callable[[Any], _Update]] = {
    FolderSynced: _folder_synced,
    AccountSynced: _account_synced,
    ImapThrottled: _throttled,
    TokenRefreshed: _token_refreshed,
    TokenFailed: _error_of_kind("token"),
    ImapAuthFailed: _error_of_kind("imap_auth"),
    WatchStateChanged: _watch_state,
    AccessDenied: _error_of_kind("access_denied"),  # e.g. a wrong app password at the proxy
}


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
