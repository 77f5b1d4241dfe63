"""``bench.import_time`` and ``bench.profile_backup``: their parsing and grouping, and both
run end to end, small (so they cannot rot). Nothing here is timed."""

from __future__ import annotations

import hashlib
import json
import pstats
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.bench_profile import (
    ARCHIVE,
    AREAS,
    HASHING,
    INDEX,
    OTHER,
    PARSING,
    TLS,
    area_of,
    by_area,
    profiling,
)
from bench.import_time import parse_importtime

REPO = Path(__file__).resolve().parents[2]

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       150 |        150 |   _io
import time:       240 |        271 |   codecs
import time:       548 |       1107 | encodings
not an import line
"""


def test_importtime_lines_are_parsed_and_the_header_skipped() -> None:
    assert parse_importtime(IMPORTTIME) == {
        "_io": (150, 150),
        "codecs": (240, 271),
        "encodings": (548, 1107),
    }


def test_functions_get_the_area_of_their_file_or_builtin() -> None:
    src = "/x/src/exoimap"
    assert area_of((f"{src}/protocol/parse_fetch.py", 1, "f")) == PARSING
    assert area_of((f"{src}/store/archive/append.py", 1, "f")) == ARCHIVE
    assert area_of((f"{src}/store/archive/index.py", 1, "f")) == INDEX
    assert area_of(("/usr/lib/python3.11/ssl.py", 1, "read")) == TLS
    assert area_of(("~", 0, "<method 'update' of '_hashlib.HASH' objects>")) == HASHING
    assert area_of(("/usr/lib/python3.11/json/decoder.py", 1, "f")) == OTHER
    assert area_of(("~", 0, "<built-in method posix.write>")) is None  # its callers decide


def test_a_builtins_time_is_shared_out_over_its_callers_areas() -> None:
    writer = ("/x/src/exoimap/store/archive/writer.py", 10, "write")
    parser = ("/x/src/exoimap/protocol/parse.py", 20, "parse")
    write = ("~", 0, "<built-in method posix.write>")
    stats = pstats.Stats()
    stats.stats = {  # type: ignore[attr-defined]
        writer: (1, 1, 0.5, 2.0, {}),
        parser: (1, 1, 1.0, 1.5, {}),
        write: (4, 4, 2.0, 2.0, {writer: (3, 3, 1.5, 1.5), parser: (1, 1, 0.5, 0.5)}),
    }
    areas = by_area(stats)
    assert set(areas) == set(AREAS)
    assert areas[ARCHIVE] == 0.5 + 1.5
    assert areas[PARSING] == 1.0 + 0.5
    assert sum(areas.values()) == 3.5


def _hash_a_lot() -> None:
    digest = hashlib.sha256()
    for _ in range(2000):
        digest.update(b"x" * 4096)


def test_profiling_takes_in_threads_started_inside_it() -> None:
    with profiling(time.perf_counter) as profiles:
        worker = threading.Thread(target=_hash_a_lot)
        worker.start()
        worker.join()
    stats, running = profiles.stats()
    assert running == 0
    assert threading.Thread.run.__name__ == "run"  # put back
    table = stats.stats  # type: ignore[attr-defined]
    updates = [v for k, v in table.items() if "_hashlib.HASH" in k[2] and "update" in k[2]]
    assert len(updates) == 1
    assert updates[0][1] == 2000  # every call made in the thread
    assert by_area(stats)[HASHING] > 0


def test_import_time_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "imports.json"
    command = [sys.executable, "-m", "bench.import_time", "--runs", "1", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["sync"]["argv"][-2:] == ["sync", "--help"]
    assert result["sync"]["modules"] > result["floor"]["modules"] > 50
    assert result["sync"]["by_origin_ms"]["exoimap"] > 0
    assert "exoimap" not in result["floor"]["by_origin_ms"]
    assert len(result["sync"]["top"]) == 15
    assert "exoimap sync, cold" in done.stdout
    # the dataclasses the cold path defines (the protocol's, the config's, the store's ...)
    # and the share of its import time they take
    classes = result["dataclasses"]
    assert classes["classes"] > 100
    assert 0 < classes["dataclass_ms"] < classes["import_ms"]
    assert f"dataclass definitions on the cold path: {classes['classes']} classes" in done.stdout


def test_profile_backup_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    # 40 messages: a seeded mailbox of its own (bench.ab's test uses 30)
    command = [sys.executable, "-m", "bench.profile_backup", "--messages", "40"]
    command += ["--json", str(out), "--pstats", str(tmp_path / "p.pstats")]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["summary"]["fetched"] == 40
    assert result["summary"]["failed_folders"] == 0
    assert result["fsync_mode"] == "auto"
    assert abs(result["cpu_s"] - (result["user_s"] + result["sys_s"])) <= 0.011  # rounding
    assert result["areas_s"][PARSING] > 0
    assert result["areas_s"][ARCHIVE] > 0
    assert len(result["top"]) == 20
    assert result["threads_s"]["main"] > 0
    assert pstats.Stats(str(tmp_path / "p.pstats")).total_tt > 0  # type: ignore[attr-defined]
    # the event loop ran in the calling thread: it was on a CPU for part of the wall time
    # and gave the CPU up while it waited for the server
    loop = result["event_loop"]
    assert 0 < loop["on_cpu_s"] <= result["wall_s"] + 0.05
    assert loop["voluntary_switches"] > 0
    assert "event-loop thread: on a CPU" in done.stdout
