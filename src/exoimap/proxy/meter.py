"""What the proxy counts for Prometheus: connections, commands, bytes, sign-in failures.

The proxy's hot path (every command, every chunk) is counted here directly, not through
audit events (which are written to disk, one per event): :class:`ProxyMeter` counts
nothing, :class:`PrometheusMeter` counts into a ``prometheus_client`` registry (the
process's :data:`exoimap.metrics.METRICS` registry under ``exoimap proxy --metrics-port``,
so one endpoint serves both). Every label takes values from a fixed set: command names
are the IMAP verbs the protocol core knows (anything else is ``other``), never text a
client chose, and no source address is ever a label.

The meter travels with :class:`~exoimap.proxy.upstream.Upstreams`, which every part of the
proxy holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from exoimap.protocol import commands as c

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["COMMAND_NAMES", "Direction", "PrometheusMeter", "ProxyMeter", "command_name"]

Direction = Literal["to_upstream", "to_client"]
Protocol = Literal["imap", "smtp"]
Listener = Literal["imap", "imaps", "starttls", "smtp"]

_VERBS: dict[type, str] = {
    c.Capability: "CAPABILITY",
    c.Noop: "NOOP",
    c.Logout: "LOGOUT",
    c.StartTls: "STARTTLS",
    c.Namespace: "NAMESPACE",
    c.Close: "CLOSE",
    c.Unselect: "UNSELECT",
    c.Expunge: "EXPUNGE",
    c.Idle: "IDLE",
    c.Login: "LOGIN",
    c.Authenticate: "AUTHENTICATE",
    c.Select: "SELECT",
    c.Examine: "EXAMINE",
    c.Create: "CREATE",
    c.Delete: "DELETE",
    c.Rename: "RENAME",
    c.Subscribe: "SUBSCRIBE",
    c.Unsubscribe: "UNSUBSCRIBE",
    c.List: "LIST",
    c.Lsub: "LSUB",
    c.StatusCommand: "STATUS",
    c.Fetch: "FETCH",
    c.Search: "SEARCH",
    c.StoreFlags: "STORE",
    c.Copy: "COPY",
    c.Move: "MOVE",
    c.UidExpunge: "UID EXPUNGE",
    c.Append: "APPEND",
    c.MultiAppend: "APPEND",
    c.Enable: "ENABLE",
    c.Id: "ID",
}
_UID_FORMS = (c.Fetch, c.Search, c.StoreFlags, c.Copy, c.Move)
OTHER = "other"

#: Every value the ``command`` label can take.
COMMAND_NAMES: frozenset[str] = frozenset(
    {*_VERBS.values(), *(f"UID {_VERBS[kind]}" for kind in _UID_FORMS), OTHER}
)

#: Added latency is a proxy's own time: sub-millisecond when all is well.
_LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)


def command_name(command: object) -> str:
    """The ``command`` label of a parsed command (``UID FETCH``, ``SELECT``, ``other``)."""
    verb = _VERBS.get(type(command))
    if verb is None:
        return OTHER
    if isinstance(command, _UID_FORMS) and command.uid:
        return f"UID {verb}"
    return verb


class ProxyMeter:
    """Counts nothing: the proxy when no metrics are served (and the base of the real one)."""

    def client_opened(self, listener: Listener) -> None:
        """A client connected to ``listener``."""

    def client_closed(self, listener: Listener) -> None:
        """A client connection of ``listener`` ended."""

    def upstream_opened(self, protocol: Protocol) -> None:
        """A connection to Exchange opened."""

    def upstream_closed(self, protocol: Protocol) -> None:
        """A connection to Exchange closed."""

    def command(self, name: str) -> None:
        """A client sent the command ``name`` (from :func:`command_name`)."""

    def added_latency(self, name: str, seconds: float) -> None:
        """The proxy's own time on one relayed command (its transit both ways)."""

    def relayed(self, protocol: Protocol, direction: Direction, size: int) -> None:
        """``size`` bytes passed through in ``direction``."""

    def auth_failed(self) -> None:
        """A wrong app password or unknown user."""

    def rate_limited(self) -> None:
        """A sign-in refused unchecked: its source made too many wrong guesses."""

    def session_healed(self, reason: Literal["token_expired", "throttled", "renewed"]) -> None:
        """An upstream session replaced under a client: after Exchange ended it (its token
        expired, or it was throttled) or before its token expired (``renewed``)."""

    def throttle_retry(self) -> None:
        """A throttled command held and sent again after Exchange's backoff."""

    def message_submitted(self, outcome: Literal["success", "failure"]) -> None:
        """A message submitted over SMTP, and whether Exchange took it."""


class PrometheusMeter(ProxyMeter):
    """Counts into ``registry`` (the metric names: docs/proxy.md, "Metrics")."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        r = registry
        self._clients_open = Gauge(
            "exoimap_proxy_client_connections_open",
            "Client connections open, by listener.",
            ["listener"],
            registry=r,
        )
        self._clients = Counter(
            "exoimap_proxy_client_connections",
            "Client connections accepted, by listener.",
            ["listener"],
            registry=r,
        )
        self._upstreams_open = Gauge(
            "exoimap_proxy_upstream_connections_open",
            "Connections to Exchange open, by protocol.",
            ["protocol"],
            registry=r,
        )
        self._commands = Counter(
            "exoimap_proxy_commands",
            "IMAP commands clients sent, by command (other: any the proxy does not know).",
            ["command"],
            registry=r,
        )
        self._latency = Histogram(
            "exoimap_proxy_added_latency_seconds",
            "The proxy's own time on a relayed IMAP command: client to Exchange, and its "
            "answer back (Exchange's time not included).",
            ["command"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._bytes = Counter(
            "exoimap_proxy_bytes",
            "Bytes relayed, by protocol and direction.",
            ["protocol", "direction"],
            registry=r,
        )
        self._auth_failures = Counter(
            "exoimap_proxy_auth_failures",
            "Sign-ins refused for a wrong app password or an unknown user.",
            registry=r,
        )
        self._rate_limited = Counter(
            "exoimap_proxy_rate_limited",
            "Sign-ins refused unchecked because their source guessed wrong too often.",
            registry=r,
        )
        self._healed = Counter(
            "exoimap_proxy_sessions_healed",
            "Upstream sessions replaced under a client, by reason.",
            ["reason"],
            registry=r,
        )
        self._throttle_retries = Counter(
            "exoimap_proxy_throttle_retries",
            "Throttled commands held and sent again after Exchange's backoff.",
            registry=r,
        )
        self._submitted = Counter(
            "exoimap_proxy_messages_submitted",
            "Messages submitted over SMTP, by outcome.",
            ["outcome"],
            registry=r,
        )

    def client_opened(self, listener: Listener) -> None:
        self._clients.labels(listener).inc()
        self._clients_open.labels(listener).inc()

    def client_closed(self, listener: Listener) -> None:
        self._clients_open.labels(listener).dec()

    def upstream_opened(self, protocol: Protocol) -> None:
        self._upstreams_open.labels(protocol).inc()

    def upstream_closed(self, protocol: Protocol) -> None:
        self._upstreams_open.labels(protocol).dec()

    def command(self, name: str) -> None:
        self._commands.labels(name).inc()

    def added_latency(self, name: str, seconds: float) -> None:
        self._latency.labels(name).observe(seconds)

    def relayed(self, protocol: Protocol, direction: Direction, size: int) -> None:
        self._bytes.labels(protocol, direction).inc(size)

    def auth_failed(self) -> None:
        self._auth_failures.inc()

    def rate_limited(self) -> None:
        self._rate_limited.inc()

    def session_healed(self, reason: Literal["token_expired", "throttled", "renewed"]) -> None:
        self._healed.labels(reason).inc()

    def throttle_retry(self) -> None:
        self._throttle_retries.inc()

    def message_submitted(self, outcome: Literal["success", "failure"]) -> None:
        self._submitted.labels(outcome).inc()
