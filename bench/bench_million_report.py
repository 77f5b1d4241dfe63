"""Write ``bench.million``'s results into ``docs/benchmarks.md`` and a PNG chart.

    .venv/bin/python -m bench.bench_million_report [bench/work/million-1000000.json]

Only the part between the ``bench.million`` markers is replaced. When the results of the
20,000-message run of the same shape exist too (``bench/work/million-20000.json``), each
row also shows the throughput at 20,000 and the ratio of the two.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.bench_server import WORK
from bench.report import COLOURS, DOCS, RSS_LIMIT_MB, median_range, splice_section, summarise

__all__ = ["BASELINE", "scaling", "write_million_report"]

BEGIN = "<!-- BEGIN bench.million -->"
END = "<!-- END bench.million -->"
#: The small run of the same shape that a large one is compared with.
BASELINE = 20_000
PHASES = ("initial", "resync", "resync-listed", "verify")
CHART = "benchmarks-million.png"


def _rows(results: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    table = summarise(results)
    small = summarise(baseline) if baseline else {}
    head = (
        "| tool | phase | wall s | msg/s | MB/s | peak RSS MB | client CPU s | counts equal "
        "| load avg (1 min) |"
    )
    rule = "|---|---|---|---|---|---|---|---|---|"
    if baseline:
        head += f" msg/s at {BASELINE:,} |"
        rule += "---|"
    lines = [head, rule]
    for tool in results["tools"]:
        for phase in PHASES:
            row = table.get((tool, phase))
            if row is None:
                continue
            line = (
                f"| {tool} | {phase} | {median_range(row['wall'])} | "
                f"{median_range(row['msgs'], '{:.0f}')} | {median_range(row['mbs'], '{:.1f}')} | "
                f"{median_range(row['rss'], '{:.0f}')} | {median_range(row['cpu'])} | "
                f"{int(sum(row['ok']))}/{len(row['ok'])} | {median_range(row['load'], '{:.1f}')} |"
            )
            if baseline:
                base = small.get((tool, phase))
                line += f" {median_range(base['msgs'], '{:.0f}') if base else '-'} |"
            lines.append(line)
    return lines


def scaling(results: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """One line per (tool, phase): the throughput here against the 20,000-message run's."""
    table, small = summarise(results), summarise(baseline)
    lines = []
    for tool in results["tools"]:
        for phase in PHASES:
            big, base = table.get((tool, phase)), small.get((tool, phase))
            if not big or not base:
                continue
            here, there = statistics.median(big["msgs"]), statistics.median(base["msgs"])
            lines.append(
                f"- {tool} {phase}: throughput at {results['messages']:,} vs at {BASELINE:,}: "
                f"{100 * here / there:.0f} % ({here:.0f} vs {there:.0f} msg/s)"
            )
    return lines


def _preparation(results: dict[str, Any]) -> str:
    seeding, warm = results["seeding"], results.get("warm_up", {})
    cached = " (cached from an earlier run)" if seeding.get("cached") else ""
    rate = seeding["messages"] / max(seeding["write_s"], 0.1)
    return (
        f"Seeding (files written straight into the Maildir; not in the table): "
        f"{seeding['seconds']} s{cached}, {rate:.0f} files/s. Warm-up, untimed: every file "
        f"read once {warm.get('page_cache_s', '-')} s, Dovecot's index and cache (a metadata "
        f"fetch of every folder) {warm.get('index_s', '-')} s."
    )


def _section(results: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    machine = results["machine"]
    lines = [
        BEGIN,
        "",
        "## A million messages (issue 21)",
        "",
        f"Measured {results['started']}: {results['messages']:,} messages of about "
        f"{results['seeding']['mean_size'] / 1000:.1f} KB ({results['bytes'] / 1e6:,.0f} MB) in "
        f"{results['folders']} folders (INBOX 30 %, seven others 10 % each), Dovecot on "
        "127.0.0.1 with implicit TLS. exoimap: `exoimap sync` in a temporary `EXOIMAP_HOME` "
        "(durable archive, XOAUTH2 as in the comparison above), then a no-change resync, "
        "`resync-listed` (the same resync through the library with CONDSTORE and QRESYNC "
        "left unused, as against Exchange: every folder's flags listed and compared window "
        "by window) and `exoimap verify` (shallow: folders, UIDs, sizes, flags, the index). "
        "mbsync: "
        f"`FSync yes`, initial sync and no-change resync. Rounds: {results['rounds']}, each "
        "run under `/usr/bin/time -v`; msg/s is the mailbox's messages over the wall time "
        "(for a no-change resync and verify: the messages it covered, not transferred). "
        "Checked by counting: the archive's messages per folder (`exoimap archive stats`) "
        "and mbsync's files per folder equal the server's.",
        "",
        _preparation(results),
        "",
        f"![a million messages]({CHART})",
        "",
        *_rows(results, baseline),
    ]
    if baseline:
        lines += ["", *scaling(results, baseline)]
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, "
        f"Linux {machine['kernel']}, Python {machine['python']}; Dovecot {machine['dovecot']}, "
        f"{machine['mbsync']}. Wall times rise with the load column (other work on the "
        "machine); the CPU column is less sensitive to it.",
        "",
        f"Command: `{results['command']}`.",
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def _chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(results)
    fig, (walls, rss) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / max(len(results["tools"]), 1)
    for i, tool in enumerate(results["tools"]):
        phases = [p for p in PHASES if (tool, p) in table]
        xs = [PHASES.index(p) + i * width for p in phases]
        for ax, key in ((walls, "wall"), (rss, "rss")):
            values = [statistics.median(table[(tool, p)][key]) for p in phases]
            ax.bar(xs, values, width, label=tool, color=COLOURS.get(tool, "tab:green"))
    for ax in (walls, rss):
        ax.set_xticks([k + width * (len(results["tools"]) - 1) / 2 for k in range(len(PHASES))])
        ax.set_xticklabels(PHASES)
    walls.set_yscale("log")
    walls.set_title("wall time per phase (s, log scale)")
    walls.legend()
    rss.axhline(RSS_LIMIT_MB, color="red", linestyle="--", label=f"{RSS_LIMIT_MB} MB")
    rss.set_title("peak RSS of the client (MB)")
    rss.legend()
    fig.suptitle(
        f"{results['messages']:,} messages, {results['bytes'] / 1e6:,.0f} MB, Dovecot on "
        "loopback TLS"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_million_report(
    json_path: Path,
    docs: Path = DOCS,
    *,
    chart_png: bool = True,
    base_path: Path = WORK / f"million-{BASELINE}.json",
) -> Path:
    """Write the section (and, with ``chart_png``, the chart: needs matplotlib); compare
    with the results in ``base_path`` when that file exists."""
    results = json.loads(Path(json_path).read_text())
    baseline = None
    if base_path.exists() and results["messages"] != BASELINE:
        baseline = json.loads(base_path.read_text())
    docs.mkdir(parents=True, exist_ok=True)
    if chart_png:
        _chart(results, docs / CHART)
    target = docs / "benchmarks.md"
    splice_section(target, BEGIN, END, _section(results, baseline))
    print(f"wrote {target}" + (f" and {docs / CHART}" if chart_png else ""))
    return target


def main(argv: list[str]) -> int:
    write_million_report(Path(argv[0]) if argv else WORK / "million-1000000.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
