"""The comparison harness's pure parts: GNU time parsing, result checking, the layout
conversion of the seeded mailbox, and the report's marker-bounded section (the chart
itself needs matplotlib from the bench lock and is drawn by ``make bench`` only)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.bench_check import check
from bench.bench_raw import ServerMessage, normalise
from bench.bench_server import _to_fs_layout
from bench.compare import _parse_time_v
from bench.report import BEGIN, END, write_report

TIME_V = """\
\tCommand being timed: "mbsync -q bench"
\tUser time (seconds): 1.25
\tSystem time (seconds): 0.50
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50
\tMaximum resident set size (kbytes): 26624
\tExit status: 0
"""


def _message(uid: int, data: bytes, flags: frozenset[str]) -> ServerMessage:
    return ServerMessage(
        uid=uid,
        flags=flags,
        sha256=hashlib.sha256(data).hexdigest(),
        norm_sha256=hashlib.sha256(normalise(data)).hexdigest(),
        size=len(data),
    )


def test_time_v_output_is_parsed() -> None:
    parsed = _parse_time_v(TIME_V)
    assert parsed == {"user": 1.25, "sys": 0.5, "wall": 62.5, "rss_kb": 26624.0, "exit": 0.0}


def test_normalise_drops_crlf_and_the_x_tuid_header_only() -> None:
    raw = b"Subject: a\r\nX-TUID: abc123\r\n\r\nbody X-TUID: stays\r\n"
    assert normalise(raw) == b"Subject: a\n\nbody X-TUID: stays\n"


def test_peer_maildir_check_counts_missing_flags_and_rewritten_bytes(tmp_path: Path) -> None:
    one = b"Subject: one\r\n\r\nfirst\r\n"
    two = b"Subject: two\r\n\r\nsecond\r\n"
    three = b"Subject: three\r\n\r\nthird\r\n"
    server = {
        "INBOX": {1: _message(1, one, frozenset({"\\Seen"})), 2: _message(2, two, frozenset())},
        "&AMk-quipe": {1: _message(1, three, frozenset({"\\Flagged"}))},
    }
    inbox, team = tmp_path / "INBOX", tmp_path / "Équipe"
    for box in (inbox, team):
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True)
    (inbox / "cur" / "1.a:2,S").write_bytes(one)  # exact
    (team / "cur" / "3.c:2,").write_bytes(b"Subject: three\nX-TUID: q\n\nthird\n")  # rewritten
    result = check("mbsync", tmp_path, server)
    assert (result.messages, result.missing, result.extra) == (3, 1, 0)
    assert (result.byte_exact, result.normalised_only, result.flag_mismatch) == (1, 1, 1)
    assert not result.complete
    assert result.notes


def test_maildirplusplus_becomes_fs_layout(tmp_path: Path) -> None:
    for name in (".Archive", ".Archive.2023", ".Projects.Falcon"):
        (tmp_path / name / "cur").mkdir(parents=True)
        (tmp_path / name / "cur" / "m").write_bytes(name.encode())
        (tmp_path / name / "maildirfolder").touch()
    (tmp_path / "subscriptions").write_text("INBOX\n")
    _to_fs_layout(tmp_path)
    assert (tmp_path / "Archive" / "cur" / "m").read_bytes() == b".Archive"
    assert (tmp_path / "Archive" / "2023" / "cur" / "m").read_bytes() == b".Archive.2023"
    assert (tmp_path / "Projects" / "Falcon" / "cur" / "m").read_bytes() == b".Projects.Falcon"
    assert not list(tmp_path.glob(".*"))
    assert not (tmp_path / "subscriptions").exists()


def _run(
    tool: str, phase: str, rnd: int, wall: float, server_cpu: float | None = None
) -> dict[str, object]:
    return {
        "server_cpu_s": server_cpu,
        "tool": tool,
        "phase": phase,
        "round": rnd,
        "wall_s": wall,
        "cpu_s": wall / 2,
        "peak_rss_mb": 30.0,
        "load_after": 1.0,
        "complete": True,
        "byte_exact": tool == "exoimap",
        "check": {"notes": ["LF line ends"]} if tool == "mbsync" else {},
    }


def test_report_replaces_only_its_own_section(tmp_path: Path) -> None:
    results = {
        "messages": 100,
        "bytes": 1_000_000,
        "folders": 3,
        "rounds": 2,
        "tools": ["exoimap", "mbsync"],
        "started": "2026-01-01 00:00 UTC",
        "command": "python -m bench.compare",
        "machine": {
            **dict.fromkeys(("cpu", "kernel", "python", "dovecot", "mbsync"), "x"),
            **{"offlineimap3": "x", "cores": 2, "memory_gb": 4},
            **{"python_executable": "/usr/bin/python3.11", "python_speed_ns": 460},
        },
        "runs": [
            _run("exoimap", "initial", 1, 4.0, server_cpu=2.0),
            _run("mbsync", "initial", 1, 10.0),
            _run("exoimap", "initial", 2, 6.0, server_cpu=1.0),
            _run("mbsync", "initial", 2, 10.0),
            _run("limit", "limit", 1, 2.0),
            _run("limit", "limit-store", 1, 3.0),
            _run("limit", "limit", 2, 4.0),
            _run("python", "floor", 1, 0.05),
            _run("python", "floor-ssl", 1, 0.025),
            _run("mbsync", "resync", 1, 0.20),
            _run("exoimap", "resync", 1, 0.50),
            _run("exoimap", "resync-agent-first", 1, 0.12),
            _run("exoimap", "resync-agent", 1, 0.08),
        ],
        "agent_peak_rss_mb": [61.0],
    }
    source = tmp_path / "results.json"
    source.write_text(json.dumps(results))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text("# Benchmarks\n\n## protocol parse\n\nkept\n")
    # the chart needs matplotlib, which only the bench lock installs (not make test's)
    write_report(source, docs, chart_png=False)
    write_report(source, docs, chart_png=False)  # a re-run replaces, does not append
    text = (docs / "benchmarks.md").read_text()
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    assert "## protocol parse\n\nkept" in text
    assert "- vs mbsync, initial: 0.40, 0.60 (median 0.50: meets the 0.5x target)" in text
    assert "- vs mbsync, resync: 2.50 (median 2.50: MISSES the 0.3x target)" in text
    assert "- vs mbsync, resync, the agent's first sync: 0.60 (median 0.60: MISSES" in text
    assert "- vs mbsync, resync through the agent: 0.40 (median 0.40: MISSES the 0.3x" in text
    # against the limit round by round (4.0 / 2.0 and 6.0 / 4.0), and the storing limit
    assert "(the limit), per round: 2.00, 1.50 (median 1.75: MISSES the 1.3x target)" in text
    assert "storing a file per message (limit-store), per round: 1.33 (median 1.33)" in text
    assert "| limit | limit-store | 3.00 |" in text
    # exoimap's client + server CPU over the 2 cores, against the raw fetch's wall:
    # (2.0 + 2.0) / 2 / 2.0 and (3.0 + 1.0) / 2 / 4.0; the client CPU the 1.3x target
    # leaves: 2 * 1.3 * 2.0 - 2.0 and 2 * 1.3 * 4.0 - 1.0
    assert (
        "over the raw fetch's wall time), per round: 1.00, 0.50 (median 0.75); the 1.3x "
        "target leaves its client at most 3.20, 9.40 s of CPU once the server's is paid "
        "(it used 2.00, 3.00 s)" in text
    )
    # server CPU when measured (medians of 2.0 and 1.0), and client + server CPU over wall:
    # (2.0 + 2.0) / 4.0 and (3.0 + 1.0) / 6.0; a run without it shows "-"
    assert "| 2.50 (2.00-3.00) | 1.50 (1.00-2.00) | 0.83 (0.67-1.00) | 2/2 |" in text
    assert "| 30 (30-30) | 5.00 (5.00-5.00) | - | - | 2/2 | 0/2 |" in text  # mbsync's
    assert (
        "asyncio, ssl and sqlite3, then exits; mean of each round's launches): 50.0 ms, 0.25x"
        in text
    )
    assert "(one that imports only ssl; mean of each round's launches): 25.0 ms, 0.12x" in text
    assert "| exoimap | resync-agent | 0.08 |" in text
    assert "the agent process's peak RSS: 61 MB" in text
    assert "- mbsync: LF line ends" in text
    assert "![comparison chart](benchmarks-compare.png)" in text
    assert "Python x (`/usr/bin/python3.11`, 460 ns for `sum(range(100))`); Dovecot x" in text
