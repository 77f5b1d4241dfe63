"""Audit log throughput: write 100,000 events durably (batched fsync), then verify them.

Run: ``.venv/bin/python -m bench.audit_log [--events N] [--batch N] [--dir PATH]``.
Data goes to a temporary folder (or ``--dir``, e.g. under ``bench/work/``) and is removed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from exoimap import audit
from exoimap.secrets import Secret


def run(directory: Path, events: int, batch: int, max_file_bytes: int) -> None:
    key = Secret(b"\x07" * 32)
    log = audit.AuditLog(directory, key, max_file_bytes=max_file_bytes, run="bench", os_user="b")
    auditor = audit.Auditor(log, batch_size=batch, max_delay=3600)
    cpu = time.process_time()
    start = time.perf_counter()
    for n in range(events):
        auditor.emit(
            audit.FolderSynced(
                account="work",
                folder=f"INBOX/Project {n % 50}",
                source="remote",
                target="archive",
                copied=n % 17,
                bytes=(n % 17) * 48_000,
                duration_s=0.25,
            )
        )
    auditor.close()
    write_s = time.perf_counter() - start
    write_cpu = time.process_time() - cpu
    files = len(list(directory.glob("audit-*.jsonl")))
    size = sum(p.stat().st_size for p in directory.glob("audit-*.jsonl"))

    cpu = time.process_time()
    start = time.perf_counter()
    result = audit.verify_log(directory, key)
    verify_s = time.perf_counter() - start
    verify_cpu = time.process_time() - cpu
    if not result.ok or result.records != events:
        raise SystemExit(f"verification failed: {result}")

    start = time.perf_counter()
    unkeyed = audit.verify_log(directory, None)
    unkeyed_s = time.perf_counter() - start
    assert unkeyed.ok

    print(
        f"events: {events}, batch (records per fsync): {batch}, files: {files}, "
        f"bytes: {size:,} ({size / events:.0f} per record)"
    )
    print(
        f"write+fsync:    {write_s:6.2f} s  {events / write_s:10,.0f} events/s"
        f"   (CPU {write_cpu:.2f} s: {events / write_cpu:,.0f} events per CPU-second)"
    )
    print(
        f"verify (keyed): {verify_s:6.2f} s  {events / verify_s:10,.0f} events/s"
        f"   (CPU {verify_cpu:.2f} s: {events / verify_cpu:,.0f} events per CPU-second)"
    )
    print(f"verify (no key):{unkeyed_s:6.2f} s  {events / unkeyed_s:10,.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--max-file-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    parent = args.dir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=parent))
    try:
        run(work / "audit", args.events, args.batch, args.max_file_bytes)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
