"""The comparison's server side: a cached seeded mailbox and a throw-away Dovecot over it.

Not a benchmark on its own (``python -m bench`` skips modules named ``bench_*``).

The seeded mailbox is generated once per (message count, seed) with
:func:`exoimap.sandbox.seed.write_maildir` and kept under ``bench/work/``; re-runs reuse it.
The seed writes Maildir++ (``.Sub.Folder``) while the Dovecot harness uses ``LAYOUT=fs``
(``Sub/Folder``), so the tree is converted once after writing.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bench_check import Target
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.sandbox.seed import SeedOptions, write_maildir

__all__ = [
    "BENCH_PASSWORD",
    "BENCH_USER",
    "WORK",
    "SeededServer",
    "ensure_tools",
    "give_to_mail_user",
    "seeded_root",
]

WORK = Path(__file__).parent / "work"
BENCH_USER = "alice@lab.test"
BENCH_PASSWORD = "alice-pass"

_APT = ["dovecot-imapd", "isync", "offlineimap3", "time", "libsasl2-modules"]
_BINARIES = {"dovecot": "dovecot-imapd", "mbsync": "isync", "offlineimap": "offlineimap3"}


def ensure_tools() -> None:
    """Install Dovecot, isync, offlineimap3 and GNU time from Debian when missing (root)."""
    missing = [b for b in _BINARIES if shutil.which(b) is None]
    if not Path("/usr/bin/time").exists():
        missing.append("time")
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {', '.join(missing)}: apt-get install -y {' '.join(_APT)}")
    print(f"installing {' '.join(_APT)} (missing: {', '.join(missing)})", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *_APT]
    if subprocess.run(cmd, env=env, check=False).returncode:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(cmd, env=env, check=True)


def _to_fs_layout(maildir: Path) -> None:
    """Turn Maildir++ folders (``.A.B``) into LAYOUT=fs folders (``A/B``)."""
    dotted = sorted((p for p in maildir.iterdir() if p.name.startswith(".")), key=lambda p: p.name)
    for path in dotted:
        if not path.is_dir():
            continue
        target = maildir.joinpath(*path.name[1:].split("."))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a parent folder created by an earlier child: merge into it
            for sub in ("cur", "new", "tmp"):
                if (path / sub).exists():
                    shutil.rmtree(target / sub, ignore_errors=True)
                    (path / sub).rename(target / sub)
            shutil.rmtree(path)
        else:
            path.rename(target)
        (target / "maildirfolder").unlink(missing_ok=True)
    sub = maildir / "subscriptions"
    if sub.exists():
        sub.unlink()


def give_to_mail_user(root: Path) -> None:
    """As root: hand ``root/mail`` to the user Dovecot reads mail as (nobody) and let it
    walk down to ``root``. The ids are looked up once: a million files are chowned."""
    if os.geteuid() != 0:
        return
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    for top, _dirs, files in os.walk(root / "mail"):
        os.chown(top, uid, gid)
        for name in files:
            os.chown(os.path.join(top, name), uid, gid)
    for path in (root, *root.parents):
        if path == WORK.parent:
            break
        path.chmod(path.stat().st_mode | 0o755)


def seeded_root(messages: int, seed: int) -> tuple[Path, dict[str, object]]:
    """A Dovecot root under ``bench/work`` whose user holds the seeded mailbox (cached)."""
    root = WORK / f"dovecot-{messages}-{seed}"
    marker = root / "seeded.json"
    if marker.exists():
        return root, json.loads(marker.read_text())
    shutil.rmtree(root, ignore_errors=True)
    maildir = root / "mail" / BENCH_USER / "Maildir"
    maildir.mkdir(parents=True)
    print(f"seeding {messages} messages (seed {seed}) into {maildir} ...", flush=True)
    started = time.monotonic()
    report = write_maildir(maildir, SeedOptions(messages=messages, seed=seed))
    _to_fs_layout(maildir)
    give_to_mail_user(root)
    info: dict[str, object] = {
        "messages": report.messages,
        "bytes": report.bytes,
        "folders": dict(report.folders),
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
    }
    marker.write_text(json.dumps(info, indent=1))
    print(f"seeded {report.messages} messages, {report.bytes / 1e6:.0f} MB", flush=True)
    return root, info


@dataclass
class SeededServer:
    """A running Dovecot over a cached seeded mailbox."""

    server: DovecotServer
    info: dict[str, object]

    @classmethod
    def start(
        cls, messages: int, seed: int, extra_users: dict[str, str] | None = None
    ) -> SeededServer:
        root, info = seeded_root(messages, seed)
        users = {BENCH_USER: BENCH_PASSWORD, **(extra_users or {})}
        server = DovecotServer(root=root, users=users, spare_users=0)
        server.start()
        return cls(server, info)

    def target(
        self,
        user: str = BENCH_USER,
        password: str = BENCH_PASSWORD,
        token_lifetime_s: int = 4 * 3600,
    ) -> Target:
        """How the tools reach ``user`` here (PLAIN, or XOAUTH2 with a token minted now)."""
        return Target(
            self.port,
            self.ca_file,
            user,
            password,
            mint_token=lambda: self.server.mint_token(user, token_lifetime_s).reveal(),
        )

    @property
    def port(self) -> int:
        return self.server.imaps_port

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    def stop(self) -> None:
        self.server.stop()
