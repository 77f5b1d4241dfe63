"""Real ``mbsync`` copying a whole mailbox from the sandbox's Exchange IMAP, directly
(XOAUTH2 through Cyrus SASL, the password from ``exoimap token print``, as docs/clients.md
sets it up) and through ``exoimap proxy`` (an app password, AUTH=PLAIN): wall time of each
full initial sync into an empty Maildir, and the ratio (target: at most 1.2x).

The mailbox is the sandbox's generated one (``--messages``, realistic sizes and folders);
the rounds alternate which path goes first. Both copies are checked to hold the same
messages.

Run: ``.venv/bin/python -m bench.proxy_mbsync [--messages 2000] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.proxy_latency import EXOIMAP, free_port, prepared, proxy_process
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.tenant import TenantOptions

MBSYNC = "/usr/bin/mbsync"

_STORES = """
IMAPStore remote
Account work

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel work
Far :remote:
Near :local:
Patterns *
Create Near
SyncState *
"""


def direct_config(host: str, port: int, upn: str, ca_file: Path, maildir: Path) -> str:
    return (
        f"IMAPAccount work\nHost {host}\nPort {port}\nUser {upn}\n"
        f'PassCmd "{EXOIMAP} token print work"\nAuthMechs XOAUTH2\nSSLType IMAPS\n'
        f"CertificateFile {ca_file}\n" + _STORES.format(maildir=maildir)
    )


def proxy_config(port: int, upn: str, password_file: Path, ca_file: Path, maildir: Path) -> str:
    return (
        f"IMAPAccount work\nHost 127.0.0.1\nPort {port}\nUser {upn}\n"
        f'PassCmd "cat {password_file}"\nAuthMechs PLAIN\nSSLType IMAPS\n'
        f"CertificateFile {ca_file}\n" + _STORES.format(maildir=maildir)
    )


def timed_sync(config_text: str, work: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds for one full sync into an empty Maildir, and a digest of what arrived."""
    maildir = work / "Mail"
    shutil.rmtree(maildir, ignore_errors=True)
    maildir.mkdir(parents=True)
    config = work / "mbsyncrc"
    config.write_text(config_text.replace("{maildir}", str(maildir)))
    started = time.perf_counter()
    done = subprocess.run(
        [MBSYNC, "-c", str(config), "work"], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mbsync failed: {done.stderr}")
    digests = sorted(
        hashlib.sha256(_without_tuid(p.read_bytes())).hexdigest()
        for p in maildir.rglob("*")
        if p.is_file() and p.parent.name in ("cur", "new")
    )
    return seconds, hashlib.sha256("".join(digests).encode()).hexdigest()


def _without_tuid(data: bytes) -> bytes:
    head, sep, rest = data.partition(b"X-TUID: ")
    return head + rest.partition(b"\n")[2] if sep else data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"mbsync direct vs through exoimap proxy, {args.messages} messages, load {load:.1f}")
    options = TenantOptions(
        # generous: mbsync signs in through `exoimap token print`, slow on a busy machine
        exchange=ExchangeSettings.for_tests(authenticated_timeout=600.0, preauth_timeout=600.0),
        seed_messages=args.messages,
    )
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    with (
        tempfile.TemporaryDirectory(prefix="exo-proxy-mbsync-", dir="/tmp") as tmp,
        prepared(Path(tmp), options) as (tenant, env, upn, password, ca_pem),
    ):
        root = Path(tmp)
        (root / "proxy-ca.pem").write_text(ca_pem)
        password_file = root / "app-password"
        password_file.write_text(password)
        port = free_port()
        with proxy_process(env, port):
            configs = {
                "direct": direct_config(
                    tenant.imap_host, tenant.imap_port, upn, tenant.ca_file, Path("{maildir}")
                ),
                "proxy": proxy_config(
                    port, upn, password_file, root / "proxy-ca.pem", Path("{maildir}")
                ),
            }
            contents = set()
            for round_ in range(args.rounds):
                order = ("direct", "proxy") if round_ % 2 == 0 else ("proxy", "direct")
                for path in order:
                    seconds, digest = timed_sync(configs[path], root / path, env)
                    times[path].append(seconds)
                    contents.add(digest)
                    print(f"round {round_ + 1} {path:6s} {seconds:7.2f} s", flush=True)
    if len(contents) != 1:
        raise SystemExit("the two paths stored different messages")
    direct, via = min(times["direct"]), min(times["proxy"])
    print(f"best direct {direct:.2f} s, best through the proxy {via:.2f} s: {via / direct:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
