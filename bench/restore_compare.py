"""Benchmark: restore an archive into an empty mailbox, against mbsync pushing the same
Maildir (issue 16: restore at most 0.5x mbsync's wall time, a re-run with nothing to do
under 1 s, peak RSS under 150 MB).

    python -m bench.restore_compare [--messages 20000] [--rounds 3]

One seeded Dovecot (the comparison's cached mailbox, ``bench.bench_server``) is backed up
once into an archive by the library. Then, each round, into a fresh empty user each:
``exoimap restore bench --to <user> --merge`` (the CLI, durable ledger, XOAUTH2 with a token
Dovecot validates), the same command again (nothing to do), and ``mbsync`` pushing a copy of
the archive's Maildir (``Sync Push``, ``Create Far``, ``FSync yes``). Each run is timed under
``/usr/bin/time -v``; the targets are then counted over IMAP (every message once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_server import BENCH_PASSWORD, BENCH_USER, WORK, SeededServer, ensure_tools
from bench.compare import Run, timed
from exoimap.app import backup
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import SyncPolicy

TARGET_PASSWORD = "restore-pass"


def _endpoint(server: SeededServer) -> Endpoint:
    return Endpoint("127.0.0.1", server.port, TLSPolicy(ca_file=server.ca_file))


async def _backup(server: SeededServer, archive_root: Path) -> int:
    source = await RemoteImapStore.connect(
        _endpoint(server),
        PasswordCredentials(BENCH_USER, Secret(BENCH_PASSWORD)),
        max_connections=4,
    )
    archive = ArchiveStore.open(archive_root, fsync_mode="none")
    try:
        report = await backup(source, archive, SyncPolicy(max_parallel_folders=4))
    finally:
        await archive.close()
        await source.close()
    return report.fetched


async def _count(server: SeededServer, user: str) -> tuple[int, int]:
    """Messages and the largest count of one Message-ID-less duplicate check: (total, folders)."""
    store = await RemoteImapStore.connect(
        _endpoint(server), PasswordCredentials(user, Secret(TARGET_PASSWORD)), max_connections=1
    )
    total = folders = 0
    try:
        for info in await store.list_folders():
            if not info.selectable:
                continue
            state = await store.folder_state(info.name)
            total += state.exists
            folders += 1
    finally:
        await store.close()
    return total, folders


def _exoimap_home(home: Path, server: SeededServer, user: str, archive: Path) -> Path:
    token = home / "token"
    token.touch(mode=0o600)
    token.write_text(server.server.mint_token(user, 4 * 3600).reveal())
    exo = home / "exoimap-home"
    exo.mkdir(mode=0o700)
    (exo / "config.toml").write_text(
        "[accounts.bench]\n"
        f'email = "{BENCH_USER}"\n'
        f'archive = "{archive}"\n'
        'flow = "token-command"\n'
        f'token_command = ["cat", "{token}"]\n'
        'imap_host = "127.0.0.1"\n'
        f"imap_port = {server.port}\n"
        f'ca_file = "{server.ca_file}"\n\n'
        "[accounts.target]\n"
        f'email = "{user}"\n'
        'flow = "token-command"\n'
        f'token_command = ["cat", "{token}"]\n'
        'imap_host = "127.0.0.1"\n'
        f"imap_port = {server.port}\n"
        f'ca_file = "{server.ca_file}"\n'
    )
    return exo


def _mbsync_argv(home: Path, server: SeededServer, user: str, maildir: Path) -> list[str]:
    conf = home / "mbsyncrc"
    conf.write_text(
        "FSync yes\n\nIMAPAccount target\nHost localhost\n"
        f"Port {server.port}\nUser {user}\n"
        f'Pass "{TARGET_PASSWORD}"\nAuthMechs PLAIN\nSSLType IMAPS\n'
        f"CertificateFile {server.ca_file}\n\n"
        "IMAPStore far\nAccount target\n\n"
        f"MaildirStore near\nInbox {maildir}\nSubFolders Maildir++\n\n"
        "Channel push\nFar :far:\nNear :near:\nPatterns *\nCreate Far\n"
        "Sync Push\nExpunge None\nSyncState *\n"
    )
    conf.chmod(0o600)
    return ["mbsync", "-q", "-c", str(conf), "push"]


def _show(run: Run) -> None:
    cpu = run.user_s + run.sys_s
    print(
        f"round {run.round} {run.tool:8} {run.phase:8} {run.wall_s:6.2f} s wall {cpu:6.2f} s cpu "
        f"{run.peak_rss_mb:5.0f} MB rc {run.exit_code}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ensure_tools()
    users = {
        f"restore-{tool}-{n}@lab.test": TARGET_PASSWORD
        for n in range(args.rounds)
        for tool in ("exo", "mbsync")
    }
    server = SeededServer.start(args.messages, 0, extra_users=users)
    scratch = Path(tempfile.mkdtemp(prefix="exoimap-restore-bench-"))
    log = scratch / "log.txt"
    runs: list[Run] = []
    counts: dict[str, tuple[int, int]] = {}
    try:
        archive = scratch / "archive"
        started = time.monotonic()
        stored = asyncio.run(_backup(server, archive))
        print(f"archive: {stored} messages backed up in {time.monotonic() - started:.1f} s")
        exe = str(Path(sys.executable).with_name("exoimap"))
        for rnd in range(args.rounds):
            exo_user, mb_user = f"restore-exo-{rnd}@lab.test", f"restore-mbsync-{rnd}@lab.test"
            home = scratch / f"exo-{rnd}"
            home.mkdir()
            exo_home = _exoimap_home(home, server, exo_user, archive)
            argv = [
                "env",
                f"EXOIMAP_HOME={exo_home}",
                exe,
                "restore",
                "bench",
                "--to",
                "target",
                "--merge",
            ]
            for phase in ("restore", "rerun"):
                run = timed("exoimap", phase, rnd, argv, home, log)
                runs.append(run)
                _show(run)
            counts[f"exoimap-{rnd}"] = asyncio.run(_count(server, exo_user))
            home = scratch / f"mbsync-{rnd}"
            home.mkdir()
            maildir = home / "maildir"
            shutil.copytree(archive / "maildir", maildir)
            run = timed(
                "mbsync", "restore", rnd, _mbsync_argv(home, server, mb_user, maildir), home, log
            )
            runs.append(run)
            _show(run)
            counts[f"mbsync-{rnd}"] = asyncio.run(_count(server, mb_user))
    finally:
        server.stop()
        for user in users:
            shutil.rmtree(WORK / f"dovecot-{args.messages}-0" / "mail" / user, ignore_errors=True)
    summary = {
        f"{tool} {phase}": statistics.median(
            r.wall_s for r in runs if r.tool == tool and r.phase == phase
        )
        for tool, phase in {(r.tool, r.phase) for r in runs}
    }
    result = {
        "messages": args.messages,
        "runs": [r.__dict__ for r in runs],
        "counts": counts,
        "median_wall_s": summary,
    }
    out = WORK / f"restore-{args.messages}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({"median_wall_s": summary, "counts": counts}, indent=1))
    print(f"results: {out}; log: {log}")
    shutil.rmtree(scratch / "archive", ignore_errors=True)
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
