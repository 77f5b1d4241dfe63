"""Benchmark: export a 20,000-message archive (about 620 MB) to mbox.

Run: ``.venv/bin/python -m bench.export_mbox [--messages 20000] [--rounds 3] [--big-mb 150]``

The archive is made once by a backup of ``bench.archive_write``'s synthetic source (bodies
made up as they are fetched) and kept under ``bench/work/export_mbox/`` for later runs.
Each round exports it to a fresh directory in a child process, through the same library
call as ``exoimap export`` (open the archive, list, stream every body through the mboxrd
writer, flush with one ``syncfs``, rename into place), and reports wall time, MB/s of
message bytes and the child's peak RSS (VmHWM). The archive's files are in the page cache (just
written or just read), so this measures exoimap, not the disk's read speed; the writes
are flushed to disk inside the measured time. ``--big-mb N`` also exports an archive
holding one N MB message, to show that memory does not grow with a message's size.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.archive_write import SyntheticStore
from exoimap.app import backup
from exoimap.app.export import ExportOptions, ExportResult, export_archive
from exoimap.app.export_output import ExportOutput
from exoimap.store.archive import ArchiveStore
from exoimap.store.memory import MemoryStore

TARGET_MB_S = 200


async def _build(root: Path, messages: int) -> None:
    source = SyntheticStore(messages)
    archive = ArchiveStore.open(root, fsync_mode="none")  # a scratch archive: speed only
    try:
        report = await backup(source, archive)  # type: ignore[arg-type]
        if not report.ok or report.fetched != messages:
            raise SystemExit(f"building the archive failed: {report.summary()}")
    finally:
        await archive.close()


async def _build_big(root: Path, megabytes: int) -> None:
    line = b"From a line that needs quoting, then some filler text for the rest.\r\n"
    body = b"Subject: big\r\n\r\n" + line * (megabytes * 1_000_000 // len(line))
    source = MemoryStore()
    source.add_message("INBOX", body, internal_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    del body
    archive = ArchiveStore.open(root, fsync_mode="none")
    try:
        await backup(source, archive)
    finally:
        await archive.close()


def _archive(work: Path, name: str, build: object) -> Path:
    """The cached archive ``work/name`` (made by ``build`` when missing or incomplete)."""
    root = work / name
    done = root / "bench-complete"
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        print(f"building {root} ...", flush=True)
        asyncio.run(build(root))  # type: ignore[operator]
        done.touch()
    return root


async def _export(archive: Path, out: Path) -> ExportResult:
    store = ArchiveStore.open(archive, create=False)
    output = ExportOutput.prepare(out, directory=True)
    result = ExportResult(out=output.out, format="mbox")
    try:
        await export_archive(store, output, ExportOptions(format="mbox"), result)
    finally:
        await store.close()
    return result


def _peak_rss_mb() -> float:
    """VmHWM: this process's own peak (ru_maxrss would count the parent's memory at the
    fork, which Linux carries over the exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(archive: str, out: str) -> None:
    """One export in this (fresh) process; prints its numbers as JSON."""
    flush = 0.0
    commit = ExportOutput.commit

    def timed_commit(self: ExportOutput) -> None:  # the final syncfs + rename, timed apart
        nonlocal flush
        begun = time.perf_counter()
        commit(self)
        flush = time.perf_counter() - begun

    ExportOutput.commit = timed_commit  # type: ignore[method-assign]
    started = time.perf_counter()
    result = asyncio.run(_export(Path(archive), Path(out)))
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "messages": result.messages,
                "bytes": result.bytes,
                "rss_mb": _peak_rss_mb(),
                "user": usage.ru_utime,
                "system": usage.ru_stime,
                "flush": flush,
            }
        )
    )


def _round(archive: Path, out: Path) -> dict[str, float]:
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "bench.export_mbox", "--child", str(archive), str(out)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    shutil.rmtree(out)
    numbers: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return numbers


def _line(label: str, numbers: dict[str, float]) -> str:
    mb = numbers["bytes"] / 1e6
    return (
        f"{label}: {int(numbers['messages'])} messages, {mb:.0f} MB in {numbers['seconds']:.2f} s "
        f"= {mb / numbers['seconds']:.0f} MB/s (flush to disk {numbers['flush']:.2f} s), "
        f"CPU {numbers['user']:.2f} s user + {numbers['system']:.2f} s system, "
        f"peak RSS {numbers['rss_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=0, help="also one message of this size")
    parser.add_argument("--dir", default="bench/work/export_mbox")
    parser.add_argument("--child", nargs=2, metavar=("ARCHIVE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    work = Path(args.dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    archive = _archive(work, f"archive-{args.messages}", lambda r: _build(r, args.messages))
    rates = []
    for number in range(1, args.rounds + 1):
        numbers = _round(archive, work / "out")
        if numbers["messages"] != args.messages:
            raise SystemExit(f"exported {numbers['messages']} of {args.messages} messages")
        rates.append(numbers["bytes"] / 1e6 / numbers["seconds"])
        print(_line(f"round {number}", numbers), flush=True)
    median = statistics.median(rates)
    verdict = "meets" if median >= TARGET_MB_S else "MISSES"
    print(
        f"median {median:.0f} MB/s ({verdict} the {TARGET_MB_S} MB/s target); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if args.big_mb:
        big = _archive(work, f"big-{args.big_mb}", lambda r: _build_big(r, args.big_mb))
        print(_line(f"one {args.big_mb} MB message", _round(big, work / "out")))


if __name__ == "__main__":
    main()
