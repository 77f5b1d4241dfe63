"""The run journal: an unfinished run is reported once by the next run, and starting a run
reads only the records of runs still marked open, however many finished ones are kept."""

from __future__ import annotations

import json
from pathlib import Path

from exoimap.store.archive import RunJournal


def test_an_interrupted_run_is_reported_once_and_finished_ones_are_not_read(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    for n in range(60):
        journal = RunJournal(runs, durable=False)
        journal.begin({"mode": "backup", "n": n})
        journal.finish({"fetched": n})
    assert len(list(runs.glob("*.json"))) == 50  # the oldest are pruned
    assert not list(runs.glob("*.open"))
    # A finished record that went bad is not read again: it cannot stop a run from starting.
    sorted(runs.glob("*.json"))[0].write_text("{not json")

    crashed = RunJournal(runs, durable=False)
    assert crashed.begin({"mode": "backup"}) == []
    # ... killed here: never finished

    resumed = RunJournal(runs, durable=False)
    earlier = resumed.begin({"mode": "backup"})
    assert [r["run"] for r in earlier] == [crashed.run_id]
    record = json.loads((runs / f"{crashed.run_id}.json").read_text())
    assert record["interrupted"] is True
    assert record["finished"] is None
    resumed.finish({"fetched": 0})

    assert RunJournal(runs, durable=False).begin({"mode": "backup"}) == []  # reported once
