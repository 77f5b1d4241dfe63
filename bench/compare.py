"""exoimap against mbsync and offlineimap3 on a throw-away Dovecot (loopback, TLS).

    .venv/bin/python -m bench.compare [--messages 20000] [--rounds 3]
        [--tools exoimap,mbsync,offlineimap3] [--variant-100k] [--big-mb 150] [--no-report]

Installs what is missing (Dovecot, isync, offlineimap3, GNU time; Debian packages, as
root), starts Dovecot over a cached seeded mailbox (``bench/work/``), takes the server's
content with an independent raw reader (the reference every result is checked against),
then for each round runs every tool, in an order that rotates from round to round, for a
full initial sync and a no-change resync, each under ``/usr/bin/time -v``. For exoimap, each
round then starts ``exoimap agent`` and times two more no-change resyncs through it:
``resync-agent-first`` (the agent's first sync: code loaded, no connection yet) and
``resync-agent`` (the next one, reusing the connection the first left, as a scheduled sync
finds it); the agent's own peak RSS is recorded. Each round also runs the *limit*: a
pipelined raw fetch of every folder to nowhere, and the *storing limit*: the same fetch
writing each message to a file of its own and flushing once at the end (what one file per
message costs on this disk, with nothing else a backup does). The tools' stores are kept
until the end of the run (deleting one makes the next tool's file creation slow on ext4
without a journal; docs/benchmarks.md, "Deleting between runs"). The results go to
``bench/work/compare-<messages>.json`` and, unless ``--no-report``, into
``docs/benchmarks.md`` and ``docs/benchmarks-compare.png`` (see :mod:`bench.report`).

Peers sign in with PLAIN, as does exoimap (its password path; the same for all tools).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import bench_raw
from bench.bench_check import TOOLS, Check, Target, check, command
from bench.bench_server import BENCH_PASSWORD, BENCH_USER, WORK, SeededServer, ensure_tools
from bench.process_cpu import tree_cpu_seconds

__all__ = ["Run", "compile_bytecode", "machine_info", "main", "stop_on_sigterm", "timed"]

TIMEOUT = {
    "python": 60,
    "exoimap": 1800,
    "exoimap-lib": 1800,
    "mbsync": 1800,
    "offlineimap3": 3600,
    "limit": 1800,
}
#: How long after a run its server processes get to end before their CPU is read.
SERVER_SETTLE_S = 0.2
BIG_USER = "big@lab.test"
BIG_PASSWORD = "big-pass"


@dataclass
class Run:
    tool: str
    # initial | resync | resync-agent-first | resync-agent | limit | limit-store | big |
    # floor | floor-ssl
    phase: str
    round: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    exit_code: int
    load_before: float
    load_after: float
    messages: int = 0
    bytes: int = 0
    complete: bool = False
    byte_exact: bool = False
    check: dict[str, object] = field(default_factory=dict)
    #: CPU of the server's processes during the run (None: not measured)
    server_cpu_s: float | None = None

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def _parse_time_v(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key.startswith("Elapsed (wall clock) time"):
            parts = [float(p) for p in value.split(":")]
            seconds = 0.0
            for p in parts:
                seconds = seconds * 60 + p
            out["wall"] = seconds
        elif key == "User time (seconds)":
            out["user"] = float(value)
        elif key == "System time (seconds)":
            out["sys"] = float(value)
        elif key == "Maximum resident set size (kbytes)":
            out["rss_kb"] = float(value)
        elif key == "Exit status":
            out["exit"] = float(value)
    return out


def timed(
    tool: str,
    phase: str,
    rnd: int,
    argv: list[str],
    cwd: Path,
    log: Path,
    timeout: int | None = None,
    store: bool = False,
    server_pid: int | None = None,
) -> Run:
    """Run ``argv`` under ``/usr/bin/time -v`` (and ``timeout``: ``TIMEOUT[tool]`` seconds
    unless given); parse what it reports. ``store``: the raw reader's storing limit, into a
    new directory under ``cwd``. ``server_pid``: the server's master process, whose CPU
    (with every process it started) is measured over the run."""
    stats = cwd / f"time-{phase}.txt"
    if store:
        argv = [*argv, "--store", str(cwd / f"stored-{rnd}")]
    full = [
        "/usr/bin/time",
        "-v",
        "-o",
        str(stats),
        "timeout",
        str(timeout or TIMEOUT.get(tool, 1800)),
        *argv,
    ]
    os.sync()  # the previous run's dirty pages are written now, not during this run
    load_before = os.getloadavg()[0]
    server_before = tree_cpu_seconds(server_pid) if server_pid else None
    with open(log, "ab") as out:
        out.write(f"\n== {tool} {phase} round {rnd}: {' '.join(argv)}\n".encode())
        out.flush()
        started = time.monotonic()
        proc = subprocess.run(
            full, cwd=Path(__file__).parent.parent, stdout=out, stderr=out, check=False
        )
        elapsed = time.monotonic() - started
    server_cpu = None
    if server_pid and server_before is not None:
        time.sleep(SERVER_SETTLE_S)  # the client's imap processes end and are reaped
        server_cpu = round(tree_cpu_seconds(server_pid) - server_before, 2)
    parsed = _parse_time_v(stats.read_text()) if stats.exists() else {}
    return Run(
        tool=tool,
        phase=phase,
        round=rnd,
        wall_s=parsed.get("wall", elapsed),
        user_s=parsed.get("user", 0.0),
        sys_s=parsed.get("sys", 0.0),
        peak_rss_mb=parsed.get("rss_kb", 0.0) / 1024,
        exit_code=proc.returncode,
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        server_cpu_s=server_cpu,
    )


#: The least any Python IMAP client pays per run on this machine (measured, not
#: subtracted): an interpreter that loads what a TLS + SQLite + asyncio program must, and
#: exits; and one that loads only ``ssl``, which no IMAP client over TLS can do without.
FLOORS = {
    "floor": [sys.executable, "-c", "import asyncio, ssl, sqlite3"],
    "floor-ssl": [sys.executable, "-c", "import ssl"],
}
#: Launches averaged for a floor (``/usr/bin/time`` reports wall time in 10 ms steps).
FLOOR_LAUNCHES = 20


def floor_run(phase: str, rnd: int) -> Run:
    """The mean wall time of :data:`FLOOR_LAUNCHES` launches of the floor ``phase``."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    codes = [subprocess.run(FLOORS[phase], check=False).returncode for _ in range(FLOOR_LAUNCHES)]
    wall = (time.perf_counter() - started) / FLOOR_LAUNCHES
    return Run(
        tool="python",
        phase=phase,
        round=rnd,
        wall_s=round(wall, 4),
        user_s=0.0,
        sys_s=0.0,
        peak_rss_mb=0.0,
        exit_code=max(codes),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        complete=not any(codes),
    )


def compile_bytecode() -> None:
    """Write exoimap's bytecode once, as ``pip install`` does for an installed package.
    The editable install used here would otherwise recompile every module on every run
    when ``PYTHONDONTWRITEBYTECODE`` is set (it is on some machines): ~0.25 s per run
    that no installed copy pays."""
    src = Path(__file__).resolve().parent.parent / "src"
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(src)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _record_check(run: Run, result: Check, total_bytes: int) -> None:
    run.messages = result.messages - result.missing
    run.bytes = total_bytes
    run.complete = result.complete and run.exit_code == 0
    run.byte_exact = result.exact
    run.check = {
        "missing": result.missing,
        "extra": result.extra,
        "flag_mismatch": result.flag_mismatch,
        "byte_exact": result.byte_exact,
        "normalised_only": result.normalised_only,
        "notes": result.notes,
    }


def interpreter_speed_ns() -> int:
    """Nanoseconds this interpreter takes for ``sum(range(100))`` (best of 5): how fast it
    runs Python code on this machine. Machines and builds differ: Debian's python3.11 took
    460 ns where a plain source build of 3.11 took 790 on the same machine."""
    timer = timeit.Timer("sum(range(100))")
    return round(min(timer.repeat(repeat=5, number=100_000)) / 100_000 * 1e9)


def machine_info() -> dict[str, object]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )

    def version(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        text = (done.stdout or done.stderr).strip().splitlines()
        return text[0] if text else "unknown"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": os.path.realpath(sys.executable),
        "python_speed_ns": interpreter_speed_ns(),
        "dovecot": version(["dovecot", "--version"]),
        "mbsync": version(["mbsync", "--version"]),
        "offlineimap3": version(["offlineimap", "--version"]),
        "filesystem_tmp": tempfile.gettempdir(),
    }


def _big_mailbox(server: SeededServer, megabytes: int) -> None:
    """One message of ``megabytes`` MB for the memory check (written once, cached)."""
    box = server.server.maildir(BIG_USER)
    if box.exists() and any((box / "cur").iterdir()):
        return
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/\r\n"
    head = (
        b"From: Big <big@lab.test>\r\nTo: big@lab.test\r\nSubject: one big message\r\n"
        b"Message-ID: <big@lab.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    body = line * (megabytes * 1024 * 1024 // len(line))
    server.server.write_message(BIG_USER, head + body, flags="S")
    server.server.fix_ownership(BIG_USER)


def compare(args: argparse.Namespace) -> dict[str, object]:
    ensure_tools()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for tool in tools:
        if tool not in TOOLS:
            raise SystemExit(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / f"compare-{args.messages}.log"
    log.write_text("")
    server = SeededServer.start(args.messages, args.seed, extra_users={BIG_USER: BIG_PASSWORD})
    runs: list[Run] = []
    started = time.time()
    out = WORK / f"compare-{args.messages}.json"

    agent_rss: list[float] = []

    def results(partial: bool) -> dict[str, object]:
        return {
            "agent_peak_rss_mb": agent_rss,
            "messages": count,
            "bytes": total,
            "folders": len(reference),
            "rounds": args.rounds,
            "tools": tools,
            "partial": partial,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "command": " ".join(["python -m bench.compare", *sys.argv[1:]]),
            "machine": machine,
            "runs": [{**asdict(r), "cpu_s": r.cpu_s} for r in runs],
        }

    def keep(run: Run) -> None:
        """Record a run and save what there is so far (a long run can be cut short)."""
        runs.append(run)
        _show(run)
        out.write_text(json.dumps(results(partial=True), indent=1))

    machine = machine_info()
    try:
        target = Target(
            server.port,
            server.ca_file,
            BENCH_USER,
            BENCH_PASSWORD,
            mint_token=lambda: server.server.mint_token(BENCH_USER, 4 * 3600).reveal(),
        )
        print("reading the server's content (reference) ...", flush=True)
        reference = bench_raw.snapshot(target.port, target.ca_file, target.user, target.password)
        total = sum(m.size for box in reference.values() for m in box.values())
        count = sum(len(box) for box in reference.values())
        print(f"server: {count} messages, {total / 1e6:.0f} MB, {len(reference)} folders")
        scratch = Path(tempfile.mkdtemp(prefix="exoimap-compare-", dir=args.scratch))
        compile_bytecode()
        limit_argv = [
            *(sys.executable, "-m", "bench.bench_raw", "--port", str(target.port)),
            *("--ca", str(target.ca_file), "--user", target.user, "--password", target.password),
        ]
        for rnd in range(1, args.rounds + 1):
            order = tools[(rnd - 1) % len(tools) :] + tools[: (rnd - 1) % len(tools)]
            pid = server.server.pid
            lim = timed("limit", "limit", rnd, limit_argv, scratch, log, server_pid=pid)
            lim.messages, lim.bytes, lim.complete = count, total, lim.exit_code == 0
            keep(lim)
            stored = timed(
                "limit", "limit-store", rnd, limit_argv, scratch, log, store=True, server_pid=pid
            )
            stored.messages, stored.bytes = count, total
            stored.complete = stored.exit_code == 0
            keep(stored)
            for phase in FLOORS:
                keep(floor_run(phase, rnd))
            for tool in order:
                if tool in args.once and rnd > 1:
                    continue
                home = scratch / f"{tool}-{rnd}"
                home.mkdir()
                argv = command(tool, target, home)
                for phase in ("initial", "resync"):
                    run = timed(tool, phase, rnd, argv, home, log, server_pid=pid)
                    _record_check(run, check(tool, home / "store", reference), total)
                    keep(run)
                if tool == "exoimap" and args.agent:
                    with _agent(argv, agent_rss):
                        for phase in ("resync-agent-first", "resync-agent"):
                            run = timed(tool, phase, rnd, argv, home, log, server_pid=pid)
                            _record_check(run, check(tool, home / "store", reference), total)
                            keep(run)
                # The tools' stores stay until the end: deleting 20,000 files makes every
                # file created in the same inode groups for minutes after slow on ext4
                # without a journal (docs/benchmarks.md, "Deleting between runs").
        if args.big_mb and "exoimap" in tools:
            _big_mailbox(server, args.big_mb)
            big = Target(
                server.port,
                server.ca_file,
                BIG_USER,
                BIG_PASSWORD,
                mint_token=lambda: server.server.mint_token(BIG_USER, 3600).reveal(),
            )
            for tool in [t for t in ("exoimap", "mbsync") if t in tools]:
                home = scratch / f"{tool}-big"
                home.mkdir()
                run = timed(tool, "big", 0, command(tool, big, home), home, log)
                run.messages, run.bytes = 1, args.big_mb * 1024 * 1024
                run.complete = run.exit_code == 0
                keep(run)
                shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        server.stop()
    return results(partial=False)


@contextlib.contextmanager
def _agent(sync_argv: list[str], peak_rss: list[float]) -> Iterator[None]:
    """An ``exoimap agent`` for the home of ``sync_argv`` (``env EXOIMAP_HOME=... exoimap
    sync NAME``) while the block runs; its peak RSS is appended to ``peak_rss``."""
    control = sync_argv[: sync_argv.index("sync")]
    subprocess.run([*control, "agent", "start"], check=True, capture_output=True)
    try:
        yield
        status = subprocess.run(
            [*control, "agent", "status"], check=True, capture_output=True, text=True
        ).stdout
        pid = int(status.split("pid ", 1)[1].split(",", 1)[0])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_rss.append(int(line.split()[1]) / 1024)
    finally:
        subprocess.run([*control, "agent", "stop"], check=False, capture_output=True)


def _show(run: Run) -> None:
    state = "ok" if run.complete else f"INCOMPLETE {run.check}"
    exact = " byte-exact" if run.byte_exact else ""
    print(
        f"round {run.round} {run.tool:12s} {run.phase:7s} {run.wall_s:7.2f} s wall "
        f"{run.cpu_s:7.2f} s cpu {run.peak_rss_mb:6.1f} MB rss  load {run.load_after:5.2f}  "
        f"{state}{exact}",
        flush=True,
    )


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # runs the finally blocks: Dovecot stops


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument(
        "--once",
        default="",
        help="tools to run in the first round only (e.g. offlineimap3: minutes per run)",
    )
    parser.add_argument("--big-mb", type=int, default=150, help="0 skips the big-message run")
    parser.add_argument(
        "--variant-100k", action="store_true", help="100,000 messages (long; not for CI)"
    )
    parser.add_argument("--scratch", default=None, help="where the tools' copies go")
    parser.add_argument("--no-report", action="store_true", help="do not touch docs/")
    parser.add_argument(
        "--no-agent",
        dest="agent",
        action="store_false",
        help="skip the resyncs through `exoimap agent`",
    )
    parser.add_argument(
        "--sandbox-throttle",
        action="store_true",
        help="also back up from the sandbox Exchange server with throttling on",
    )
    args = parser.parse_args(argv)
    if args.variant_100k:
        args.messages = 100_000
    args.once = {t.strip() for t in args.once.split(",") if t.strip()}
    results = compare(args)
    if args.sandbox_throttle:
        from bench.bench_throttle import throttled_run

        results["throttle"] = throttled_run(1000, max_messages=40, window=2.0, backoff_ms=500)
        (WORK / "throttle.json").write_text(json.dumps(results["throttle"], indent=1))
    out = WORK / f"compare-{args.messages}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"results: {out}")
    if not args.no_report:
        from bench.report import write_report

        write_report(out)
    failed = [r for r in results["runs"] if not r["complete"]]  # type: ignore[union-attr]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
