"""Where the time of a full exoimap backup goes: one library backup under cProfile.

    .venv/bin/python -m bench.profile_backup [--messages 20000] [--timer cpu|wall]
        [--no-profile] [--json PATH] [--pstats PATH]

Starts the seeded Dovecot of :mod:`bench.compare` (cached under ``bench/work/``), then, in
this process, backs the mailbox up through the library as :mod:`bench.bench_exoimap` does
(PLAIN sign-in, :class:`RemoteImapStore` with 4 connections, ``exoimap.app.backup``) into a
fresh durable archive in its default fsync mode, with every thread under cProfile.

Reports the wall time, the process CPU time (user + system from ``getrusage``, all threads,
profiler included), how the event-loop thread was scheduled (:mod:`bench.thread_schedule`:
on a CPU, waiting for one, blocked) and the profile: own time (tottime) summed by area of
the code (see :mod:`bench.bench_profile`) and the top functions by own time.

``--timer wall`` (the default) profiles elapsed time with ``time.perf_counter``: cheap
(the backup takes about 1.4 times as long as unprofiled), but a thread's time includes
waiting for the GIL and the disk, so with several threads the areas add up to more than
the CPU time, and idle threads show as "thread waits" (left out of "total less waits").
``--timer cpu`` profiles each thread's CPU time (``time.thread_time``): the areas add up to
about the process's CPU time, but that timer is a system call per profiled call, which
makes the run about 4 times slower and inflates code that makes many small calls (the
parser) more than code that spends its time in a few system calls. Read the areas as
shares, not as what an unprofiled run spends; ``--no-profile`` gives that run's wall and
CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.bench_profile import AREAS, WAITS, by_area, by_thread, profiling, top_functions
from bench.bench_server import BENCH_PASSWORD, BENCH_USER, SeededServer, ensure_tools
from bench.thread_schedule import ThreadSchedule, thread_schedule
from exoimap.app import backup
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.session import Endpoint
from exoimap.net.tls import TLSPolicy
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.remote import RemoteImapStore
from exoimap.sync import SyncPolicy

__all__ = ["main"]

TIMERS = {"cpu": time.thread_time, "wall": time.perf_counter}


@dataclass
class Backup:
    summary: dict[str, object]
    fsync_mode: str
    wall_s: float
    user_s: float
    sys_s: float
    #: how the event-loop thread (this one: asyncio.run runs the loop here) was scheduled
    event_loop: ThreadSchedule

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


async def _backup(
    server: SeededServer, archive_dir: Path, connections: int
) -> tuple[dict[str, object], str]:
    endpoint = Endpoint("127.0.0.1", server.port, TLSPolicy(ca_file=server.ca_file))
    creds = PasswordCredentials(BENCH_USER, Secret(BENCH_PASSWORD))
    source = await RemoteImapStore.connect(endpoint, creds, max_connections=connections)
    archive = ArchiveStore.open(archive_dir)
    try:
        report = await backup(source, archive, SyncPolicy(max_parallel_folders=connections))
    finally:
        await archive.close()
        await source.close()
    return report.summary(), archive.fsync_mode


def timed_backup(server: SeededServer, archive_dir: Path, connections: int) -> Backup:
    """One backup in this process: wall and the process's CPU (every thread) around it, and
    how the kernel scheduled this thread, which runs the event loop."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    scheduled_before = thread_schedule()
    started = time.perf_counter()
    summary, fsync_mode = asyncio.run(_backup(server, archive_dir, connections))
    wall = time.perf_counter() - started
    scheduled = thread_schedule() - scheduled_before
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Backup(
        summary,
        fsync_mode,
        wall,
        after.ru_utime - before.ru_utime,
        after.ru_stime - before.ru_stime,
        scheduled,
    )


def _print(run: Backup, areas: dict[str, float] | None, top: list[dict[str, object]]) -> None:
    s = run.summary
    size = s["bytes"] if isinstance(s["bytes"], int) else 0
    print(
        f"backed up {s['fetched']} messages ({size / 1e6:.0f} MB) in {s['folders']} "
        f"folders, fsync mode {run.fsync_mode}: wall {run.wall_s:.1f} s, CPU {run.cpu_s:.1f} s "
        f"(user {run.user_s:.1f}, sys {run.sys_s:.1f})"
    )
    print(f"event-loop thread: {run.event_loop.describe(run.wall_s)}")
    if areas is None:
        return
    total = sum(areas.values()) or 1.0
    print(f"\n{'area':<16} {'seconds':>8} {'share':>6}")
    for area in AREAS:
        print(f"{area:<16} {areas[area]:>8.2f} {areas[area] / total:>6.1%}")
    busy = total - sum(areas[area] for area in WAITS)
    print(f"{'profiled total':<16} {total:>8.2f}")
    print(f"{'total less waits':<16} {busy:>8.2f}")
    print(f"\n{'function (top by own time)':<70} {'calls':>9} {'own s':>7} {'cum s':>7}  area")
    for row in top:
        print(
            f"{str(row['function'])[:70]:<70} {row['calls']:>9} {row['tottime_s']:>7.2f} "
            f"{row['cumtime_s']:>7.2f}  {row['area']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--timer", choices=sorted(TIMERS), default="wall")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--no-profile", action="store_true", help="time the backup only")
    parser.add_argument("--scratch", type=Path, help="where the archive goes (default: temp)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the archive (deleting 20,000 files slows the next run's file creation "
        "on ext4 without a journal)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--pstats", type=Path, help="save the merged profile (pstats file)")
    args = parser.parse_args(argv)
    ensure_tools()
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
    archive_dir = Path(tempfile.mkdtemp(prefix="exoimap-profile-", dir=args.scratch))
    try:
        server = SeededServer.start(args.messages, args.seed)
    except BaseException:
        archive_dir.rmdir()
        raise
    try:
        os.sync()  # earlier runs' dirty pages are written now, not during this one
        load_before = os.getloadavg()[0]
        areas: dict[str, float] | None = None
        top: list[dict[str, object]] = []
        running = 0
        threads: dict[str, float] = {}
        if args.no_profile:
            run = timed_backup(server, archive_dir, args.connections)
        else:
            with profiling(TIMERS[args.timer]) as profiles:
                run = timed_backup(server, archive_dir, args.connections)
            stats, running = profiles.stats()
            threads = {kind: round(seconds, 3) for kind, seconds in by_thread(profiles).items()}
            areas = {area: round(seconds, 3) for area, seconds in by_area(stats).items()}
            top = [asdict(row) for row in top_functions(stats, args.top)]
            if args.pstats:
                stats.dump_stats(args.pstats)
        load_after = os.getloadavg()[0]
    finally:
        if args.keep:
            print(f"archive kept: {archive_dir}")
        else:
            shutil.rmtree(archive_dir, ignore_errors=True)
        server.stop()
    _print(run, areas, top)
    if threads:
        print("\nown time by thread: " + ", ".join(f"{k} {v:.2f} s" for k, v in threads.items()))
    if running:
        print(f"({running} thread(s) still running at the end are not in the profile)")
    print(f"\nload average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    if args.json:
        data = {
            "messages": args.messages,
            "connections": args.connections,
            "profiled": not args.no_profile,
            "timer": None if args.no_profile else args.timer,
            "fsync_mode": run.fsync_mode,
            "wall_s": round(run.wall_s, 2),
            "user_s": round(run.user_s, 2),
            "sys_s": round(run.sys_s, 2),
            "cpu_s": round(run.cpu_s, 2),
            "event_loop": asdict(run.event_loop),
            "summary": run.summary,
            "areas_s": areas,
            "top": top,
            "threads_s": threads,
            "threads_not_profiled": running,
            "load_before": round(load_before, 2),
            "load_after": round(load_after, 2),
        }
        args.json.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return 1 if run.summary.get("failed_folders") else 0


if __name__ == "__main__":
    sys.exit(main())
