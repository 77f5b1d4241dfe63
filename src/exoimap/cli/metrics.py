"""``--metrics-port``: serve the process's Prometheus metrics while a long command runs.

For long-running commands (``exoimap sync --metrics-port``, later the console)::

    @metrics_port_option
    def sync(..., metrics_port: int | None) -> None:
        with (
            auditing(
                paths,
                config.audit,
                key=audit_key_for(paths),
                listeners=metrics_listeners(metrics_port),
            ),
            metrics_endpoint(metrics_port),
        ): ...

The metrics live in the process and are fed by the audit events (:mod:`exoimap.metrics`):
only when they are served, so ``prometheus_client`` is imported only then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from exoimap.audit import Listener
from exoimap.metrics import METRICS, serve_metrics

__all__ = ["metrics_endpoint", "metrics_listeners", "metrics_port_option"]

metrics_port_option = click.option(
    "--metrics-port",
    type=int,
    help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while running "
    "(0 picks a free port).",
)


@contextlib.contextmanager
def metrics_endpoint(port: int | None) -> Iterator[str | None]:
    """Serve the process's metrics for the block when a port was asked for; yields the URL."""
    if port is None:
        yield None
        return
    with serve_metrics(port) as server:
        click.echo(f"metrics: {server.url}", err=True)
        yield server.url


def metrics_listeners(port: int | None) -> list[Listener]:
    """The audit listeners that feed the metrics: none unless they are served on ``port``
    (nothing else in the process reads them)."""
    if port is None:
        return []
    return [METRICS.observe_event]
