"""Interleaved A/B of two exoimap builds: the same backup and resyncs, alternating.

Run: ``.venv/bin/python -m bench.ab --before OTHER/.venv/bin/exoimap [--after EXE]
[--messages 20000] [--rounds 6]``

Both builds back up the same seeded Dovecot mailbox (see :mod:`bench.bench_server`) through
the CLI as ``bench.compare`` runs it (token-command sign-in, XOAUTH2, loopback TLS): an
initial backup, then three cold no-change resyncs (no agent). The order alternates every
round (before/after, then after/before), so a load that changes during the run falls on both
sides alike; medians of wall and CPU (user + system) time are printed. Use it to check that a
change is "no worse than before" on a shared machine, where absolute times drift.

Both builds' bytecode is compiled first: with ``PYTHONDONTWRITEBYTECODE`` set (as in this
project's shells) an editable install never writes ``.pyc`` files, so a build whose modules
changed since its last compile would pay for compiling them in every timed run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.bench_check import Target, _exoimap_cli
from bench.bench_server import BENCH_PASSWORD, BENCH_USER, SeededServer
from bench.compare import Run, timed

RESYNCS = 3


def _argv_for(exe: str, target: Target, home: Path) -> list[str]:
    argv = _exoimap_cli(target, home, home / "store")
    return [exe if word.endswith("/exoimap") else word for word in argv]


def _round(variant: str, exe: str, target: Target, scratch: Path, rnd: int, log: Path) -> list[Run]:
    home = scratch / f"{variant}-{rnd}"
    home.mkdir()
    argv = _argv_for(exe, target, home)
    runs = [timed(variant, "initial", rnd, argv, home, log)]
    runs += [
        timed(variant, "resync", rnd, [*argv, "--no-agent"], home, log) for _ in range(RESYNCS)
    ]
    failed = [run for run in runs if run.exit_code != 0]
    if failed:
        raise SystemExit(f"{variant} failed (exit {failed[0].exit_code}); see {log}")
    return runs


def _compile(exe: str) -> None:
    """Write the ``.pyc`` files of the exoimap package that ``exe`` runs."""
    python = str(Path(exe).with_name("python"))
    script = "import compileall, exoimap; compileall.compile_dir(exoimap.__path__[0], quiet=1)"
    subprocess.run([python, "-c", script], check=True)


def _summary(results: dict[str, list[Run]]) -> list[str]:
    lines = []
    for phase in ("initial", "resync"):
        for variant, runs in results.items():
            rows = [run for run in runs if run.phase == phase]
            wall = statistics.median(run.wall_s for run in rows)
            cpu = statistics.median(run.user_s + run.sys_s for run in rows)
            rss = max(run.peak_rss_mb for run in rows)
            lines.append(
                f"{variant:7} {phase:8} wall median {wall:6.2f} s   CPU median {cpu:6.2f} s   "
                f"peak RSS {rss:4.0f} MB   (n={len(rows)})"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the other build's exoimap executable")
    parser.add_argument("--after", default=".venv/bin/exoimap", help="this build's executable")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    executables = {
        "before": str(Path(args.before).absolute()),
        "after": str(Path(args.after).absolute()),
    }
    for exe in executables.values():
        _compile(exe)
    server = SeededServer.start(args.messages, 0)
    log = Path(tempfile.mkdtemp(prefix="exoimap-ab-")) / "ab.log"
    results: dict[str, list[Run]] = {"before": [], "after": []}
    try:
        target = Target(
            server.port,
            server.ca_file,
            BENCH_USER,
            BENCH_PASSWORD,
            mint_token=lambda: server.server.mint_token(BENCH_USER, 4 * 3600).reveal(),
        )
        scratch = log.parent
        for rnd in range(args.rounds):
            order = ("before", "after") if rnd % 2 == 0 else ("after", "before")
            for variant in order:
                runs = _round(variant, executables[variant], target, scratch, rnd, log)
                results[variant] += runs
                initial = runs[0]
                print(
                    f"round {rnd} {variant:6}: initial {initial.wall_s:.2f} s wall, "
                    f"{initial.user_s + initial.sys_s:.2f} s CPU; resyncs "
                    + ", ".join(f"{run.wall_s:.2f}" for run in runs[1:]),
                    flush=True,
                )
    finally:
        server.stop()
        # the homes go only now: deleting 20,000 files slows the next run's file creation
        # on ext4 without a journal (bench.file_creation)
        for home in log.parent.iterdir():
            if home.is_dir():
                shutil.rmtree(home, ignore_errors=True)
    print("\n".join(_summary(results)))


if __name__ == "__main__":
    main()
