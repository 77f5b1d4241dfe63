"""``exoimap watch``: how soon new mail is archived, and what idle watching costs.

    .venv/bin/python -m bench.watch_latency [--mailboxes 10] [--deliveries 100] [--idle 30]
                                            [--via library|watch|agent]

The sandbox tenant runs in this process; the watch runs in a child process, so its CPU and
memory are its own. ``--via`` says which child:

- ``library`` (default): the library's ``watch_accounts`` alone, XOAUTH2 with sandbox tokens
  handed over (no vault, no MSAL, no CLI): the watch's own cost;
- ``watch``: the command a user runs, ``exoimap watch --all``, in a home whose accounts are
  signed in through the sandbox (device code, real MSAL, a key-file vault, audit on);
- ``agent``: ``exoimap agent serve --watch --all`` in such a home: the watch inside the agent.

Reports:

- latency: a message delivered to a watched INBOX (round robin over the mailboxes) until
  its file is in the archive, one delivery at a time: p50, p95, max (target: p95 < 5 s);
- idle: the child's CPU time over ``--idle`` seconds with every mailbox watched and nothing
  arriving, as a percentage of one core, and its resident memory (targets: < 1 %, < 60 MB);
- ``targets_met``: each target, true or false (the exit code is 1 when one is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.process_cpu import process_cpu_seconds
from exoimap.app.watch import WatchSettings, watch_accounts
from exoimap.config import AccountConfig, Paths
from exoimap.net.account import AccountProvider
from exoimap.secrets import Secret

__all__ = ["watch_bench"]

#: The targets of issue 19: p95 delivery to archive, idle CPU (% of a core), idle RSS.
TARGETS = {"latency_p95_s": 5.0, "idle_cpu_percent": 1.0, "idle_rss_mb": 60.0}


class _StaticProvider:
    """An account provider handing out one sandbox token (valid an hour: enough here)."""

    def __init__(self, host: str, port: int, user: str, token: str) -> None:
        self.imap_host, self.imap_port, self.username = host, port, user
        self.mechanism, self.starttls, self.uses_password = "XOAUTH2", False, False
        self._token = Secret(token)
        self._expires = time.time() + 3000

    def password(self) -> Secret[str]:
        raise NotImplementedError

    async def access_token_async(self, min_validity: float = 300.0) -> Secret[str]:
        return self._token

    def expires_at(self) -> float:
        return self._expires

    def checked_token(self) -> None:
        return None


def _child(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    accounts = [
        AccountConfig(
            name=m["name"],
            email=m["user"],
            imap_host=spec["host"],
            imap_port=spec["port"],
            ca_file=Path(spec["ca_file"]),
            archive=Path(m["archive"]),
        )
        for m in spec["mailboxes"]
    ]
    tokens = {m["name"]: (m["user"], m["token"]) for m in spec["mailboxes"]}

    def provider_for(account: AccountConfig) -> AccountProvider:
        user, token = tokens[account.name]
        return _StaticProvider(spec["host"], spec["port"], user, token)

    settings = WatchSettings(poll_interval=60.0, settle=0.05)
    asyncio.run(watch_accounts(accounts, Paths.from_env(), provider_for, settings))


def _archived(root: Path) -> int:
    return sum(1 for p in (root / "maildir").rglob("*") if p.parent.name == "cur")


def _wait_for(root: Path, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while _archived(root) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{root}: {count} messages not archived in {timeout:g} s")
        time.sleep(0.005)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


#: What runs the watch, by ``--via`` (``library``: this module as the child).
_COMMANDS = {
    "watch": ["watch", "--all", "--poll-interval", "60"],
    "agent": ["agent", "serve", "--idle-timeout", "0", "--watch", "--all", "--poll-interval", "60"],
}


def _signed_in_home(tenant: Any, boxes: list[dict[str, str]], home: Path) -> dict[str, str]:
    """The environment of a home with every mailbox signed in (a key-file vault)."""
    from bench.proxy_latency import sign_in
    from bench.token_print import home_for
    from exoimap.auth.vault import create_key_file

    env = {**os.environ, "EXOIMAP_HOME": str(home), "EXOIMAP_NO_KEYRING": "1"}
    env.pop("EXOIMAP_VAULT_PASSPHRASE", None)
    env.pop("EXOIMAP_VAULT_KEY_FILE", None)
    create_key_file(home / "vault.key")  # where the vault looks for it (EXOIMAP_HOME)
    with home_for(home, env):
        for box in boxes:
            sign_in(tenant, box["user"], box["name"], archive=Path(box["archive"]))
    return env


def watch_bench(
    mailboxes: int = 10, deliveries: int = 100, idle: float = 30.0, via: str = "library"
) -> dict[str, Any]:
    # here, not at the top: the child (the watch being measured) must not load the sandbox
    from exoimap.sandbox.exchange.config import ExchangeSettings
    from exoimap.sandbox.tenant import TenantOptions, running_tenant
    from exoimap.store.conformance import sample_message

    options = TenantOptions(exchange=ExchangeSettings(authenticated_timeout=1800.0))
    with (
        tempfile.TemporaryDirectory(prefix="exoimap-watch-") as tmp,
        running_tenant(Path(tmp) / "state", options) as tenant,
    ):
        tenant.admin.configure(device_code_interval=1)
        boxes = []
        for i in range(mailboxes):
            user = f"w{i}@{tenant.tenant_domain}"
            tenant.admin.create_user(user, password="Sandbox-Pass-1!")
            for n in range(5):
                tenant.exchange.deliver(user, sample_message(n, 2000))
            boxes.append(
                {
                    "name": f"m{i}",
                    "user": user,
                    "token": tenant.user_token(user),
                    "archive": str(Path(tmp) / f"archive-{i}"),
                }
            )
        spec = Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "host": tenant.imap_host,
                    "port": tenant.imap_port,
                    "ca_file": str(tenant.ca_file),
                    "mailboxes": boxes,
                }
            )
        )
        if via == "library":
            command = [sys.executable, "-m", "bench.watch_latency", "--child", str(spec)]
            env = {**os.environ, "EXOIMAP_HOME": str(Path(tmp) / "home")}
        else:
            env = _signed_in_home(tenant, boxes, Path(tmp) / "home")
            command = [sys.executable, "-m", "exoimap", *_COMMANDS[via]]
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            for box in boxes:
                _wait_for(Path(box["archive"]), 5)
            time.sleep(2)  # the first syncs' connections settle into IDLE
            cpu_before, started = process_cpu_seconds(child.pid), time.monotonic()
            time.sleep(idle)
            idle_cpu = (process_cpu_seconds(child.pid) - cpu_before) / (time.monotonic() - started)
            idle_rss = _rss_mb(child.pid)
            latencies = []
            for n in range(deliveries):
                box = boxes[n % mailboxes]
                root = Path(box["archive"])
                have = _archived(root)
                sent = time.monotonic()
                tenant.exchange.deliver(box["user"], sample_message(1000 + n, 3000))
                _wait_for(root, have + 1)
                latencies.append(time.monotonic() - sent)
            peak_rss = _rss_mb(child.pid)
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
    latencies.sort()
    result: dict[str, Any] = {
        "via": via,
        "mailboxes": mailboxes,
        "deliveries": deliveries,
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
        "latency_max_s": round(latencies[-1], 3),
        "idle_seconds": idle,
        "idle_cpu_percent": round(100 * idle_cpu, 2),
        "idle_rss_mb": round(idle_rss, 1),
        "rss_after_deliveries_mb": round(peak_rss, 1),
        "load_1min": os.getloadavg()[0],
    }
    result["targets_met"] = {key: result[key] < limit for key, limit in TARGETS.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mailboxes", type=int, default=10)
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--via", choices=["library", "watch", "agent"], default="library")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    result = watch_bench(args.mailboxes, args.deliveries, args.idle, args.via)
    print(json.dumps(result, indent=1))
    if not all(result["targets_met"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
