"""``make bench`` / ``python -m bench``: the comparison with mbsync and offlineimap3.

python -m bench                      # bench.compare with its defaults (20,000 messages)
python -m bench compare --rounds 1   # the same, arguments passed on
python -m bench micro                # every micro-benchmark, one after another
python -m bench protocol_parse ...   # chosen micro-benchmarks (or python -m bench.<name>)
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

#: Modules that are not micro-benchmarks: the comparisons (hours at full size) and helpers.
NOT_MICRO = {"compare", "report", "million"}


def micro_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(here)])
        if not m.name.startswith(("_", "bench_")) and m.name not in NOT_MICRO
    )


def run_micro(wanted: list[str]) -> int:
    names = micro_names()
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    failed = []
    for name in wanted:
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] == "compare" or argv[0].startswith("-"):
        from bench.compare import main as compare

        return compare(argv[1:] if argv and argv[0] == "compare" else argv)
    if argv[0] == "micro":
        return run_micro(micro_names())
    return run_micro(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
