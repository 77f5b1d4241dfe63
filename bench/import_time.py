"""What a cold ``exoimap sync`` imports before it does any work, from ``-X importtime``.

    .venv/bin/python -m bench.import_time [--runs 5] [--json PATH]

Runs, each time in a fresh interpreter with ``python -X importtime``, the ``exoimap``
console script with ``sync --help`` in an empty ``EXOIMAP_HOME``. That is the cold path
of ``exoimap sync`` up to the point where it starts working: the console script, the agent
client (which finds no agent and declines), the CLI root, and the ``sync`` command's module
with everything it imports at module level. Imports a sync makes later, while it works
(the token provider, rich's progress bars on a terminal, the search index) are not in it.
The floor is an interpreter that only imports ``asyncio, ssl, sqlite3`` (what any Python
TLS + SQLite + asyncio program pays; the same floor as :mod:`bench.compare`).

Prints, over the runs: the median total import time (the sum of every module's own time),
the module count, the median wall time of the whole process, how the total splits between
exoimap, third-party packages and the standard library, and the 15 modules with the
largest median self time. One warm-up run of each command is left out. Then, without
``-X importtime``, how long the same imports take and how much of that goes to defining
dataclasses (generating their methods from source is most of a dataclass definition's cost).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.compare import FLOORS, compile_bytecode

__all__ = ["ImportRun", "main", "parse_importtime"]

TOP = 15


@dataclass
class ImportRun:
    """One interpreter's ``-X importtime`` lines: module -> (self µs, cumulative µs)."""

    modules: dict[str, tuple[int, int]]
    wall_ms: float

    @property
    def total_us(self) -> int:
        return sum(own for own, _ in self.modules.values())


def parse_importtime(stderr: str) -> dict[str, tuple[int, int]]:
    """``import time: SELF | CUMULATIVE | NAME`` lines into NAME -> (self, cumulative) µs.
    A module imported twice (it cannot be, but a line may repeat) keeps the sum."""
    modules: dict[str, tuple[int, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        own, cumulative, name = int(fields[0]), int(fields[1]), fields[2].strip()
        before = modules.get(name, (0, 0))
        modules[name] = (before[0] + own, before[1] + cumulative)
    return modules


def sync_argv() -> list[str]:
    """The console script as ``pip`` installed it (what users run), else ``-m exoimap``."""
    script = Path(sys.executable).parent / "exoimap"
    target = [str(script)] if script.exists() else ["-m", "exoimap"]
    return [sys.executable, "-X", "importtime", *target, "sync", "--help"]


def floor_argv() -> list[str]:
    return [FLOORS["floor"][0], "-X", "importtime", *FLOORS["floor"][1:]]


def run_once(argv: list[str], home: Path) -> ImportRun:
    env = {**os.environ, "EXOIMAP_HOME": str(home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed copy has its bytecode
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr[-500:]}")
    return ImportRun(parse_importtime(done.stderr), wall_ms)


#: Run in a fresh interpreter: import the CLI root and the ``sync`` command's module (the
#: cold path) and time every dataclass definition on the way. It wraps a private function of
#: the standard library's ``dataclasses``, as a measurement may; the toolkit never does.
DATACLASS_PROBE = """
import dataclasses, json, time
define = dataclasses._process_class
spent = [0.0, 0]
def timed(cls, *args, **kwargs):
    started = time.perf_counter()
    try:
        return define(cls, *args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - started
        spent[1] += 1
dataclasses._process_class = timed
started = time.perf_counter()
import exoimap.cli, exoimap.cli.sync_cmd
took = time.perf_counter() - started
print(json.dumps({"classes": spent[1], "dataclass_ms": spent[0] * 1e3, "import_ms": took * 1e3}))
"""


@dataclass
class DataclassCost:
    """Medians over the runs: how much of the cold path's imports defines dataclasses."""

    runs: int
    classes: int
    dataclass_ms: float
    import_ms: float


def dataclass_cost(runs: int, home: Path) -> DataclassCost:
    """Run :data:`DATACLASS_PROBE` ``runs`` times after one warm-up; the medians."""
    env = {**os.environ, "EXOIMAP_HOME": str(home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [sys.executable, "-c", DATACLASS_PROBE]
    results = []
    for _ in range(runs + 1):  # the first is the warm-up
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout))
    kept = results[1:]
    return DataclassCost(
        runs=len(kept),
        classes=int(statistics.median(r["classes"] for r in kept)),
        dataclass_ms=round(statistics.median(r["dataclass_ms"] for r in kept), 1),
        import_ms=round(statistics.median(r["import_ms"] for r in kept), 1),
    )


def measure(argv: list[str], runs: int, home: Path) -> list[ImportRun]:
    run_once(argv, home)  # warm-up: the page cache, not the measurement
    return [run_once(argv, home) for _ in range(runs)]


def _origin(name: str) -> str:
    top = name.split(".", 1)[0]
    if top == "exoimap":
        return "exoimap"
    if top in sys.stdlib_module_names:
        return "stdlib"
    return "third-party"


@dataclass
class TopModule:
    module: str
    self_ms: float
    cumulative_ms: float


@dataclass
class Summary:
    """Medians over the runs of one command."""

    argv: list[str]
    runs: int
    total_ms: float
    total_ms_min: float
    total_ms_max: float
    wall_ms: float
    modules: int
    by_origin_ms: dict[str, float]
    top: list[TopModule]


def _ms(micros: float) -> float:
    return round(micros / 1000, 2)


def summarise(argv: list[str], runs: list[ImportRun]) -> Summary:
    """Totals, module count, the split by origin and the top modules (medians)."""
    names = set.intersection(*(set(r.modules) for r in runs))
    own = {n: statistics.median(r.modules[n][0] for r in runs) for n in names}
    cumulative = {n: statistics.median(r.modules[n][1] for r in runs) for n in names}
    origins: dict[str, list[float]] = {}
    for run in runs:
        split: dict[str, float] = {}
        for name, (own_us, _) in run.modules.items():
            split[_origin(name)] = split.get(_origin(name), 0.0) + own_us
        for origin, summed in split.items():
            origins.setdefault(origin, []).append(summed)
    totals = [r.total_us for r in runs]
    return Summary(
        argv=argv,
        runs=len(runs),
        total_ms=_ms(statistics.median(totals)),
        total_ms_min=_ms(min(totals)),
        total_ms_max=_ms(max(totals)),
        wall_ms=round(statistics.median(r.wall_ms for r in runs), 1),
        modules=int(statistics.median(len(r.modules) for r in runs)),
        by_origin_ms={k: _ms(statistics.median(v)) for k, v in sorted(origins.items())},
        top=[
            TopModule(n, _ms(own[n]), _ms(cumulative[n]))
            for n in sorted(own, key=lambda n: own[n], reverse=True)[:TOP]
        ],
    )


def show(label: str, result: Summary) -> None:
    print(f"\n{label}: {' '.join(result.argv)}")
    print(
        f"  imports {result.total_ms:.1f} ms median ({result.total_ms_min:.1f}-"
        f"{result.total_ms_max:.1f}) over {result.runs} runs, {result.modules} modules, "
        f"process wall {result.wall_ms:.0f} ms"
    )
    print("  by origin: " + ", ".join(f"{k} {v:.1f} ms" for k, v in result.by_origin_ms.items()))
    print(f"  {'module (top by median self time)':<44} {'self ms':>8} {'cum ms':>8}")
    for row in result.top:
        print(f"  {row.module:<44} {row.self_ms:>8.2f} {row.cumulative_ms:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    compile_bytecode()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="exoimap-importtime-") as home:
        sync = sync_argv()
        floor = floor_argv()
        cold = summarise(sync, measure(sync, args.runs, Path(home)))
        bare = summarise(floor, measure(floor, args.runs, Path(home)))
        classes = dataclass_cost(args.runs, Path(home))
    load_after = os.getloadavg()[0]
    show("exoimap sync, cold, before any work", cold)
    show("floor", bare)
    print(
        f"\ndataclass definitions on the cold path: {classes.classes} classes, "
        f"{classes.dataclass_ms:.1f} ms of the {classes.import_ms:.1f} ms its imports take "
        f"without -X importtime (medians of {classes.runs} runs)"
    )
    print(f"\nload average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    data = {
        "python": sys.version.split()[0],
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
        "sync": asdict(cold),
        "floor": asdict(bare),
        "dataclasses": asdict(classes),
    }
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
