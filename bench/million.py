"""Issue 21, "a million messages": exoimap and mbsync on one very large mailbox.

    .venv/bin/python -m bench.million --messages 1000000 [--rounds 1]
        [--tools exoimap,mbsync] [--no-report]

Not a test and not run by CI: at 1,000,000 messages it takes about 15 minutes here (and 90 s
of seeding the first time) and about 10 GB of disk.
``--messages 20000`` runs the same shape small, so that the throughput at both sizes can
be compared (the report does when both results exist).

Seeds (once, cached under ``bench/work/``; see :mod:`bench.bench_million_seed`) about 2.5 KB
messages over eight folders straight into a Dovecot Maildir, starts a throw-away Dovecot
over it (loopback, implicit TLS) and warms it untimed: every message file is read once (the
page cache, so that the first tool timed does not pay for the disk) and every folder is
listed with ``UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)`` (Dovecot's index and
cache; the counts are the reference). Then, each round, under ``/usr/bin/time -v`` as in
:mod:`bench.compare`: exoimap's full initial backup, a no-change resync, the same resync
through the library with CONDSTORE and QRESYNC left unused (``resync-listed``: what a resync
against Exchange does, every folder's flags listed and compared window by window) and
``exoimap verify`` (shallow: folders, UIDs, sizes, flags and the index, as users run it);
mbsync's initial sync and no-change resync (``FSync yes``). Each result is checked by
counting: messages per folder in the exoimap archive (``exoimap archive stats --json``) and
mbsync's files per folder must equal the server's. Results go to
``bench/work/million-<count>.json`` and, unless ``--no-report``, into ``docs/benchmarks.md``
and ``docs/benchmarks-million.png`` (:mod:`bench.bench_million_report`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.bench_check import Target, command, folder_key, maildir_folders
from bench.bench_million_report import BASELINE, scaling, write_million_report
from bench.bench_million_seed import million_root
from bench.bench_raw import folder_counts
from bench.bench_server import BENCH_PASSWORD, BENCH_USER, WORK, SeededServer, ensure_tools
from bench.compare import Run, compile_bytecode, machine_info, stop_on_sigterm, timed
from exoimap.sandbox.dovecot import DovecotServer

__all__ = ["main"]

TOOLS = ("exoimap", "mbsync")
#: What the warm-up fetches: the metadata both tools ask for before any body.
_WARM_ITEMS = b"UID FLAGS RFC822.SIZE INTERNALDATE"
#: How the ``resync-listed`` phase makes Dovecot look like Exchange to the library.
_AS_EXCHANGE = ("--ignore-extensions", "CONDSTORE,QRESYNC")
#: Tokens outlive the longest run (Dovecot checks their expiry at each sign-in).
_TOKEN_LIFETIME_S = 48 * 3600


def _differences(expected: dict[str, int], stored: dict[str, int]) -> dict[str, list[int]]:
    """Folders whose stored count is not the server's: name -> [server, stored]."""
    return {
        name: [expected.get(name, 0), stored.get(name, 0)]
        for name in sorted(set(expected) | set(stored))
        if expected.get(name, 0) != stored.get(name, 0)
    }


def _read_every_file(maildir: Path) -> int:
    """Read every message file once (into the page cache); returns the bytes read."""
    total = 0
    for top, _dirs, files in os.walk(maildir):
        if os.path.basename(top) not in ("cur", "new"):
            continue
        for name in files:
            with open(os.path.join(top, name), "rb") as handle:
                total += len(handle.read())
    return total


def _warm(root: Path, target: Target) -> tuple[dict[str, int], dict[str, float]]:
    """Untimed warm-up; returns the server's messages per folder and how long it took."""
    started = time.monotonic()
    read = _read_every_file(root / "mail" / BENCH_USER / "Maildir")
    cached = time.monotonic()
    counts = folder_counts(target.port, target.ca_file, target.user, target.password, _WARM_ITEMS)
    done = time.monotonic()
    print(
        f"warm-up: read {read / 1e6:.0f} MB of message files in {cached - started:.1f} s, "
        f"Dovecot listed {sum(counts.values())} messages in {done - cached:.1f} s",
        flush=True,
    )
    timing = {"page_cache_s": round(cached - started, 1), "index_s": round(done - cached, 1)}
    return {folder_key(n): c for n, c in counts.items()}, timing


def _archive_counts(sync_argv: list[str]) -> dict[str, int]:
    """Messages per folder in the exoimap archive, as ``exoimap archive stats`` counts them."""
    control = sync_argv[: sync_argv.index("sync")]
    done = subprocess.run(
        [*control, "archive", "stats", "bench", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        return {}
    stats = json.loads(done.stdout.splitlines()[0])
    return {folder_key(f["folder"]): f["messages"] for f in stats["folders"]}


def _mbsync_counts(store: Path) -> dict[str, int]:
    return {name: len(files) for name, files in maildir_folders(store).items()}


def _checked(run: Run, expected: dict[str, int], stored: dict[str, int], size: int) -> Run:
    differing = _differences(expected, stored)
    run.messages = sum(min(expected.get(n, 0), c) for n, c in stored.items())
    run.bytes = size
    run.complete = run.exit_code == 0 and not differing
    run.check = {"differing_folders": differing}
    return run


@dataclass(frozen=True)
class _Setting:
    """What every timed run of a measurement shares."""

    target: Target
    expected: dict[str, int]  # the server's messages per folder
    size: int  # the server's bytes
    log: Path
    timeout: int


def _tool_runs(tool: str, rnd: int, home: Path, setting: _Setting) -> list[Run]:
    """One tool's timed phases in one round, each checked by counting."""
    argv = command(tool, setting.target, home)
    phases = [("initial", argv), ("resync", argv)]
    if tool == "exoimap":
        # the same archive, synced as from a server without CONDSTORE (Exchange): every
        # folder's flags listed and compared, one window at a time
        listed = [*command("exoimap-lib", setting.target, home), *_AS_EXCHANGE]
        phases.append(("resync-listed", listed))
        phases.append(("verify", [*argv[: argv.index("sync")], "verify", "bench"]))
    runs = []
    for phase, phase_argv in phases:
        run = timed(tool, phase, rnd, phase_argv, home, setting.log, setting.timeout)
        stored = _archive_counts(argv) if tool == "exoimap" else _mbsync_counts(home / "store")
        runs.append(_checked(run, setting.expected, stored, setting.size))
        _show(runs[-1])
    return runs


def _show(run: Run) -> None:
    state = "ok" if run.complete else f"FAILED (exit {run.exit_code}) {run.check}"
    rate = run.messages / max(run.wall_s, 1e-3)
    print(
        f"round {run.round} {run.tool:8s} {run.phase:8s} {run.wall_s:8.2f} s wall "
        f"{rate:8.0f} msg/s {run.cpu_s:8.2f} s cpu {run.peak_rss_mb:7.1f} MB rss  "
        f"load {run.load_after:5.2f}  {state}",
        flush=True,
    )


def measure(args: argparse.Namespace) -> list[Run]:
    """Seed, warm, run every tool's phases for every round; saves the results as JSON
    (after each tool, so that a long run cut short keeps what it measured)."""
    ensure_tools()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        raise SystemExit(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOLS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    root, seeded = million_root(args.messages, args.seed)
    if seeded.get("cached"):
        print(f"using the seeded mailbox in {root} (seeding took {seeded['seconds']} s)")
    out = WORK / f"million-{args.messages}.json"
    log = WORK / f"million-{args.messages}.log"
    log.write_text("")
    server = SeededServer(
        DovecotServer(root=root, users={BENCH_USER: BENCH_PASSWORD}, spare_users=0), seeded
    )
    runs: list[Run] = []
    results: dict[str, object] = {
        "messages": seeded["messages"],
        "bytes": seeded["bytes"],
        "folders": len(seeded["folders"]),  # type: ignore[arg-type]
        "seeding": seeded,
        "rounds": args.rounds,
        "tools": tools,
        "partial": True,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python -m bench.million", *sys.argv[1:]]),
        "machine": machine_info(),
        "runs": runs,
    }

    def save() -> None:
        document = {**results, "runs": [{**asdict(r), "cpu_s": r.cpu_s} for r in runs]}
        out.write_text(json.dumps(document, indent=1, ensure_ascii=False))

    server.server.start()
    try:
        target = server.target(token_lifetime_s=_TOKEN_LIFETIME_S)
        expected, results["warm_up"] = _warm(root, target)
        results["server_folders"] = expected
        compile_bytecode()
        scratch = Path(tempfile.mkdtemp(prefix="exoimap-million-", dir=args.scratch))
        setting = _Setting(target, expected, int(str(seeded["bytes"])), log, args.timeout)
        for rnd in range(1, args.rounds + 1):
            shift = (rnd - 1) % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                home = scratch / f"{tool}-{rnd}"
                home.mkdir()
                runs.extend(_tool_runs(tool, rnd, home, setting))
                save()
                # kept until the end: deleting a million files makes the next tool's file
                # creation far slower on ext4 without a journal (bench.file_creation)
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        server.stop()
    results["partial"] = False
    save()
    print(f"results: {out}")
    return runs


def _print_scaling(results_path: Path) -> None:
    """The throughput against the 20,000-message run's, when that run's results exist."""
    base_path = WORK / f"million-{BASELINE}.json"
    results = json.loads(results_path.read_text())
    if base_path.exists() and results["messages"] != BASELINE:
        for line in scaling(results, json.loads(base_path.read_text())):
            print(line.removeprefix("- "))


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument(
        "--timeout", type=int, default=6 * 3600, help="seconds any one timed run may take"
    )
    parser.add_argument("--scratch", default=None, help="where the tools' copies go")
    parser.add_argument("--no-report", action="store_true", help="do not touch docs/")
    args = parser.parse_args(argv)
    if args.messages < 10:
        parser.error("--messages must be at least 10")
    runs = measure(args)
    _print_scaling(WORK / f"million-{args.messages}.json")
    if not args.no_report:
        write_million_report(WORK / f"million-{args.messages}.json")
    return 0 if all(r.complete for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
