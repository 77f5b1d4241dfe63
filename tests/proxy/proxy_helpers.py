"""A proxy running in a background thread for the tests, against a signed-in sandbox account."""

from __future__ import annotations

import asyncio
import imaplib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.auth.audit_key import audit_key_for
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.proxy.ca import ProxyCA
from exoimap.proxy.gate import Gate
from exoimap.proxy.limiter import FailureLimiter
from exoimap.proxy.meter import ProxyMeter
from exoimap.proxy.passwords import PasswordBook, ScryptCost
from exoimap.proxy.server import ProxyServer
from exoimap.sandbox.tenant import SandboxTenant

FAST_SCRYPT = ScryptCost(n=2**10, r=8, p=1)


class FakeClock:
    """The limiter's clock, moved by the test (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ShiftedClock:
    """Wall time moved ahead by ``shift`` seconds (the proxy's view of token expiry)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@dataclass
class RunningProxy:
    server: ProxyServer
    port: int
    #: IMAP with STARTTLS
    starttls_port: int
    #: SMTP submission: STARTTLS, and implicit TLS
    smtp_port: int
    smtps_port: int
    ca_file: Path
    clock: FakeClock
    upstream_clock: ShiftedClock
    loop: asyncio.AbstractEventLoop

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def connect(self) -> imaplib.IMAP4_SSL:
        return imaplib.IMAP4_SSL(
            "127.0.0.1", self.port, ssl_context=self.client_context(), timeout=30
        )

    def sessions_healed(self) -> int:
        return self.server.heals

    def sessions_renewed(self) -> int:
        return self.server.renewals


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(process: subprocess.Popen[bytes], port: int) -> None:
    """Until ``port`` accepts connections; fails when ``process`` ends first."""
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.1)


EXOIMAP = str(Path(sys.executable).with_name("exoimap"))
CURL = "/usr/bin/curl"


def curl_tls(proxy: RunningProxy, user: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``curl --ssl-reqd`` trusting the proxy's CA, signed in as ``user`` (``name:password``)."""
    command = [CURL, "--silent", "--show-error", "--ssl-reqd", "--cacert", str(proxy.ca_file)]
    return subprocess.run(
        [*command, "--user", user, *args], capture_output=True, timeout=60, check=False
    )


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    #: what it wrote to stderr, once it has ended
    errors: bytes = b""


@contextmanager
def proxy_process(command: list[str], port: int) -> Iterator[ProxyProcess]:
    """``command`` (an ``exoimap proxy`` line) as a process of its own in this test's home,
    from when ``port`` answers; ended with SIGTERM (as systemd and Ctrl-C do) afterwards."""
    process = subprocess.Popen(
        command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    running = ProxyProcess(process)
    try:
        wait_for_port(process, port)
        yield running
    finally:
        process.terminate()
        running.errors = process.communicate(timeout=30)[1]


def cli_password_and_ca(
    label: str, capsys: pytest.CaptureFixture[str]
) -> tuple[str, ssl.SSLContext]:
    """``exoimap proxy password add LABEL --account work`` and ``exoimap proxy ca`` as a user
    runs them: the printed app password, and a client context trusting the printed CA."""
    from exoimap.cli import main

    capsys.readouterr()
    assert main(["proxy", "password", "add", label, "--account", "work"]) == 0
    password = capsys.readouterr().out.strip()
    assert main(["proxy", "ca"]) == 0
    return password, ssl.create_default_context(cadata=capsys.readouterr().out)


def mailbox_folder(tenant: SandboxTenant, upn: str, folder: str) -> list[bytes]:
    """Every message of ``folder`` read straight from the sandbox (not through the proxy)."""
    token = tenant.user_token(upn)
    imap = imaplib.IMAP4_SSL(tenant.imap_host, tenant.imap_port, ssl_context=tenant.ssl_context())
    try:
        imap.authenticate("XOAUTH2", lambda _: tenant.xoauth2(upn, token))
        imap.select(f'"{folder}"', readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        imap.logout()


def book(paths: Paths) -> PasswordBook:
    return PasswordBook(paths.data_dir / "proxy" / "passwords.json", FAST_SCRYPT)


@contextmanager
def running_proxy(
    paths: Paths,
    *,
    max_sessions: int = 16,
    preauth_timeout: float = 60.0,
    meter: ProxyMeter | None = None,
) -> Iterator[RunningProxy]:
    """The proxy on 127.0.0.1 (a free port, implicit TLS with the local CA), audited,
    counting into ``meter`` (by default nothing)."""
    from exoimap.proxy.upstream import Upstreams

    config = load_config(paths)
    vault = Vault.from_paths()

    def provider(account: AccountConfig) -> TokenProvider:
        return TokenProvider(account, vault=vault)

    from exoimap.proxy.smtp_upstream import Relay
    from exoimap.proxy.submission import SubmissionServer

    ca = ProxyCA.load_or_create(paths.data_dir / "proxy" / "ca")
    upstream_clock = ShiftedClock()
    upstreams = Upstreams(
        dict(config.accounts),
        provider,
        max_sessions=max_sessions,
        clock=upstream_clock,
        meter=meter or ProxyMeter(),
    )
    clock = FakeClock()
    gate = Gate(book(paths), upstreams, FailureLimiter(clock=clock))
    server = ProxyServer(
        "127.0.0.1", 0, ca.server_context(), gate, upstreams, preauth_timeout=preauth_timeout
    )
    upgrading = ProxyServer(
        "127.0.0.1", 0, None, gate, upstreams, starttls=ca.server_context(), preauth_timeout=60
    )
    submissions = [
        SubmissionServer("127.0.0.1", 0, ca.server_context(), mode, gate, Relay(upstreams))
        for mode in ("starttls", "implicit")
    ]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        await server.start()
        await upgrading.start()
        for submission in submissions:
            await submission.start()
        started.set()
        try:
            await stop.wait()
        finally:
            await server.close()
            await upgrading.close()
            for submission in submissions:
                await submission.close()

    def run() -> None:
        with audit.auditing(paths, load_config(paths).audit, key=audit_key_for(paths)):
            loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30), "the proxy did not start"
    try:
        yield RunningProxy(
            server,
            server.port,
            upgrading.port,
            submissions[0].port,
            submissions[1].port,
            ca.cert_file,
            clock,
            upstream_clock,
            loop,
        )
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


#: A scraped sample: (name, sorted labels) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class MetricsPage:
    """The proxy's ``/metrics`` endpoint, scraped over HTTP as Prometheus does."""

    url: str

    def scrape(self) -> Samples:
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.url, timeout=30) as page:
            text = page.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.scrape().get((name, tuple(sorted(labels.items()))), 0.0)

    def wait_for(self, name: str, wanted: float, **labels: str) -> None:
        """Until the sample reads ``wanted`` (a closing connection is counted a moment
        after the client saw its end); fails after 30 s."""
        deadline = time.monotonic() + 30
        while (value := self.value(name, **labels)) != wanted:
            assert time.monotonic() < deadline, f"{name}{labels} is {value}, not {wanted}"
            time.sleep(0.05)


def moved(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """How much each labelled sample of ``name`` moved between two scrapes (moved ones only)."""
    changes = {
        labels: value - before.get((sample, labels), 0.0)
        for (sample, labels), value in after.items()
        if sample == name
    }
    return {labels: change for labels, change in changes.items() if change}


@contextmanager
def metered_proxy(paths: Paths) -> Iterator[tuple[RunningProxy, MetricsPage]]:
    """:func:`running_proxy` counting into metrics of its own, served on a free port."""
    from exoimap.metrics import Metrics, serve_metrics
    from exoimap.proxy.meter import PrometheusMeter

    metrics = Metrics()
    meter = PrometheusMeter(metrics.registry)
    with (
        serve_metrics(0, metrics=metrics) as endpoint,
        running_proxy(paths, meter=meter) as proxy,
    ):
        yield proxy, MetricsPage(endpoint.url)
