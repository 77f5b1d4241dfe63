"""bench.million's pure parts: the Maildir files its seeder writes, the count check, and the
report section with its comparison against the 20,000-message run (the benchmark itself
takes hours and is not run here)."""

from __future__ import annotations

import json
import re
from email import message_from_bytes
from pathlib import Path
from typing import Any

from bench.bench_check import folder_key
from bench.bench_million_report import BEGIN, END, write_million_report
from bench.bench_million_seed import _write_messages
from bench.bench_server import _to_fs_layout
from bench.million import _differences

_NAME = re.compile(r"^(\d+)\.M\d+P\d+\.bench,S=(\d+),W=(\d+):2,([DFRST]*)$")


def test_seeded_files_are_named_as_dovecot_names_them_and_follow_the_shares(
    tmp_path: Path,
) -> None:
    maildir = tmp_path / "Maildir"
    total, per_folder = _write_messages(maildir, 40, seed=3)
    _to_fs_layout(maildir)
    assert per_folder == {
        "INBOX": 12,
        **dict.fromkeys(("Sent Items", "Deleted Items", "Drafts", "Junk Email"), 4),
        **dict.fromkeys(("Archive", "Archive/2023", "Équipe"), 4),
    }
    folders = {
        "INBOX": maildir / "cur",
        "Archive/2023": maildir / "Archive" / "2023" / "cur",
        "Équipe": maildir / "&AMk-quipe" / "cur",
    }
    for folder, cur in folders.items():
        assert len(list(cur.iterdir())) == per_folder[folder]
    ids, written = set(), 0
    for path in maildir.rglob("cur/*"):
        match = _NAME.match(path.name)
        assert match, path.name
        data = path.read_bytes()
        assert int(match.group(2)) == int(match.group(3)) == len(data)
        assert int(path.stat().st_mtime) == int(match.group(1))  # Dovecot's INTERNALDATE
        assert match.group(4) == "".join(sorted(match.group(4)))
        ids.add(message_from_bytes(data)["Message-ID"])
        written += len(data)
    assert written == total
    assert len(ids) == 40
    assert None not in ids
    assert 1500 < total / 40 < 4000  # "about 2 KB"


def test_counts_compare_across_folder_name_spellings() -> None:
    server = {folder_key("&AMk-quipe"): 4, folder_key("INBOX"): 12, "Trash": 0}
    assert _differences(server, {"Équipe": 4, "INBOX": 12}) == {}
    assert _differences(server, {"Équipe": 3, "INBOX": 12, "Extra": 1}) == {
        "Extra": [0, 1],
        "Équipe": [4, 3],
    }


def _results(messages: int, walls: dict[tuple[str, str], float]) -> dict[str, Any]:
    machine = {
        "cpu": "test cpu",
        "cores": 2,
        "memory_gb": 1,
        "kernel": "k",
        "python": "3.11",
        "dovecot": "2.3",
        "mbsync": "isync 1.4",
    }
    runs = [
        {
            "tool": tool,
            "phase": phase,
            "round": 1,
            "wall_s": wall,
            "peak_rss_mb": 50.0,
            "cpu_s": wall / 2,
            "load_after": 0.5,
            "complete": True,
            "byte_exact": False,
        }
        for (tool, phase), wall in walls.items()
    ]
    return {
        "messages": messages,
        "bytes": messages * 2500,
        "folders": 8,
        "seeding": {"messages": messages, "mean_size": 2500, "seconds": 9.5, "write_s": 9.0},
        "warm_up": {"page_cache_s": 1.0, "index_s": 2.0},
        "rounds": 1,
        "tools": ["exoimap", "mbsync"],
        "started": "2026-12-05 20:00 UTC",
        "command": f"python -m bench.million --messages {messages}",
        "machine": machine,
        "runs": runs,
    }


def test_report_section_compares_throughput_with_the_20000_run(tmp_path: Path) -> None:
    big = tmp_path / "million-1000000.json"
    big.write_text(
        json.dumps(
            _results(1_000_000, {("exoimap", "initial"): 500.0, ("mbsync", "initial"): 1000.0})
        )
    )
    small = tmp_path / "million-20000.json"
    small.write_text(
        json.dumps(_results(20_000, {("exoimap", "initial"): 5.0, ("mbsync", "initial"): 10.0}))
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text(
        f"# Benchmarks\n\nkept\n\n{BEGIN}\nstale section\n{END}\n\ntail\n"
    )
    write_million_report(big, docs, chart_png=False, base_path=small)
    text = (docs / "benchmarks.md").read_text()
    assert text.count(BEGIN) == 1
    assert "stale section" not in text
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert text.rstrip().endswith("tail")
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    # 2000 msg/s at a million against 4000 at 20,000
    assert "- exoimap initial: throughput at 1,000,000 vs at 20,000: 50 % (2000 vs 4000" in section
    assert "| exoimap | initial | 500.00 | 2000 | 5.0 | 50 | 250.00 | 1/1 | 0.5 | 4000 |" in section
    assert "| mbsync | initial | 1000.00 | 1000 |" in section
    assert "`python -m bench.million --messages 1000000`" in section
