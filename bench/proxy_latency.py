"""What ``exoimap proxy`` adds to each IMAP command: round trips through the proxy against
the same round trips straight to the server, on loopback.

A sandbox tenant (identity + Exchange IMAP) runs in this process; ``exoimap proxy`` runs as
its own process, as users run it (implicit TLS with its local CA, an account signed in with
the device-code flow, an app password). One TLS client per path sends each command
``--rounds`` times, one at a time, and times each from its first byte written to its
tagged answer read: NOOP, ``UID FETCH 1 (FLAGS)``, ``UID FETCH 1 (BODY.PEEK[])`` (a small
message) and ``STATUS INBOX (MESSAGES)``. The added latency is proxy minus direct, per
percentile.

With ``--metrics`` the proxy also serves its Prometheus metrics (what it costs to count
them is then in the numbers), and its own view is printed too: the p95 of
``exoimap_proxy_added_latency_seconds`` per command (interpolated within its buckets, as
Prometheus' ``histogram_quantile`` does), which leaves out the client's and the server's
scheduling.

Run: ``.venv/bin/python -m bench.proxy_latency [--rounds 500] [--metrics]``
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.token_print import device_login, home_for
from exoimap.auth.vault import create_key_file
from exoimap.cli import main as exoimap
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.identity import PUBLIC_APP
from exoimap.sandbox.tenant import SandboxTenant, TenantOptions, running_tenant

EXOIMAP = str(Path(sys.executable).with_name("exoimap"))
COMMANDS = {
    "NOOP": b"NOOP",
    "UID FETCH (FLAGS)": b"UID FETCH 1 (FLAGS)",
    "UID FETCH (BODY.PEEK[])": b"UID FETCH 1 (BODY.PEEK[])",
    "STATUS": b"STATUS INBOX (MESSAGES)",
}


class Client:
    """A minimal blocking IMAP client: one command at a time, answers read to the tag."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.file.readline()  # greeting

    def run(self, command: bytes) -> float:
        """Send ``command``; seconds until its tagged answer (which must be OK)."""
        self.n += 1
        tag = b"b%d" % self.n
        started = time.perf_counter()
        self.sock.sendall(tag + b" " + command + b"\r\n")
        while True:
            line = self.file.readline()
            if line.endswith(b"}\r\n"):  # a literal follows
                self.file.read(int(line[line.rindex(b"{") + 1 : -3]))
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit(f"{command.decode()} failed: {line!r}")
                return time.perf_counter() - started
            if not line:
                raise SystemExit("the connection closed")


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


def sign_in(
    tenant: SandboxTenant, upn: str, name: str = "work", *, archive: Path | None = None
) -> None:
    """``account add NAME`` + ``login NAME`` in this process, approving the device code."""
    app = next(a for a in tenant.apps if a["name"] == PUBLIC_APP)
    args = [
        "account", "add", name, "--cloud", "custom", "--authority", tenant.authority,
        "--ca-file", str(tenant.ca_file), "--imap-host", tenant.imap_host,
        "--imap-port", str(tenant.imap_port), "--client-id", str(app["client_id"]),
        "--email", upn, "--flow", "device",
    ]  # fmt: skip
    if archive is not None:
        args += ["--archive", str(archive)]
    device_login(tenant.admin, args, name, upn)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def proxy_process(
    env: dict[str, str], port: int, *options: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [EXOIMAP, "proxy", "--listen", f"127.0.0.1:{port}", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                assert process.stderr is not None
                raise SystemExit(f"the proxy did not start: {process.stderr.read().decode()}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(30)


def own_p95(url: str) -> dict[str, float]:
    """The proxy's own p95 added latency (ms) per command, from its histogram."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=30) as page:
        text = page.read().decode()
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "exoimap_proxy_added_latency_seconds_bucket":
                bound = float(sample.labels["le"])
                buckets.setdefault(sample.labels["command"], []).append((bound, sample.value))
    return {command: _quantile(0.95, sorted(rows)) * 1000 for command, rows in buckets.items()}


def _quantile(q: float, rows: list[tuple[float, float]]) -> float:
    """``histogram_quantile``: linear within the bucket the rank falls in."""
    rank = q * rows[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in rows:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def measure(rounds: int, login: Callable[[Client], None], client: Client) -> dict[str, list[float]]:
    login(client)
    client.run(b'EXAMINE "INBOX"')
    for command in COMMANDS.values():  # warm up both paths
        client.run(command)
    return {
        name: [client.run(command) for _ in range(rounds)] for name, command in COMMANDS.items()
    }


@contextlib.contextmanager
def prepared(
    root: Path, options: TenantOptions
) -> Iterator[tuple[SandboxTenant, dict[str, str], str, str, str]]:
    """A running tenant and a home signed in to its first user, with an app password:
    ``(tenant, env, upn, password, CA PEM)``."""
    home = root / "home"
    env = {**os.environ, "EXOIMAP_HOME": str(home), "EXOIMAP_NO_KEYRING": "1"}
    env.pop("EXOIMAP_VAULT_PASSPHRASE", None)
    env.pop("EXOIMAP_VAULT_KEY_FILE", None)
    create_key_file(home / "vault.key")
    with running_tenant(root / "sandbox", options) as tenant:
        upn = tenant.users[0][0]
        with home_for(root, env):
            sign_in(tenant, upn)
            said = io.StringIO()
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(io.StringIO()):
                assert exoimap(["proxy", "password", "add", "bench", "--account", "work"]) == 0
                assert exoimap(["proxy", "ca"]) == 0
            password, ca_pem = said.getvalue().split("\n", 1)
        yield tenant, env, upn, password, ca_pem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--metrics", action="store_true", help="run the proxy with --metrics-port")
    args = parser.parse_args(argv)
    rounds = args.rounds
    metrics_port = free_port() if args.metrics else None
    served = [] if metrics_port is None else ["--metrics-port", str(metrics_port)]
    own: dict[str, float] = {}
    load = os.getloadavg()[0]
    print(f"exoimap proxy: added latency per command, {rounds} rounds, load {load:.1f}")
    options = TenantOptions(exchange=ExchangeSettings.for_tests(), seed_messages=5)
    with (
        tempfile.TemporaryDirectory(prefix="exo-proxy-", dir="/tmp") as tmp,
        prepared(Path(tmp), options) as (tenant, env, upn, password, ca_pem),
    ):
        port = free_port()
        with proxy_process(env, port, *served):
            token = tenant.user_token(upn)

            def direct_login(client: Client) -> None:
                sasl = base64.b64encode(tenant.xoauth2(upn, token))
                client.run(b"AUTHENTICATE XOAUTH2 " + sasl)

            def proxy_login(client: Client) -> None:
                client.run(b'LOGIN "%s" "%s"' % (upn.encode(), password.encode()))

            direct = measure(rounds, direct_login, Client(tenant.imap_port, tenant.ssl_context()))
            via = measure(
                rounds, proxy_login, Client(port, ssl.create_default_context(cadata=ca_pem))
            )
            if metrics_port is not None:
                own = own_p95(f"http://127.0.0.1:{metrics_port}/metrics")
    print(
        f"{'command':26s} {'direct p50/p95 ms':>20s} {'proxy p50/p95 ms':>20s} "
        f"{'added p50/p95 ms':>20s}"
    )
    for name in COMMANDS:
        d50, d95 = percentiles(direct[name])
        p50, p95 = percentiles(via[name])
        print(
            f"{name:26s} {d50:9.2f} / {d95:7.2f}  {p50:9.2f} / {p95:7.2f}  "
            f"{p50 - d50:9.2f} / {p95 - d95:7.2f}"
        )
    if own:
        print("the proxy's own added latency (its histogram, both FETCHes in one), p95 ms:")
        for verb in ("NOOP", "UID FETCH", "STATUS"):
            print(f"  {verb:24s} {own[verb]:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
