"""The run journal: which sync runs started, which finished, which were interrupted.

Crash safety of the data itself lives where the atomic unit is: the archive writes a
journal record for every batch before touching its files and rolls it forward when it is
opened again (:mod:`exoimap.store.archive.journal`). Because the backup state (which source
message each archive message came from) is committed in the same index transaction as the
message, a resumed run simply plans again and continues; there is no second state file
that could disagree.

This module records runs on top of that, in ``<archive>/runs/`` (through the archive's
:meth:`~exoimap.store.archive.store.ArchiveStore.begin_run` and ``end_run``):
:meth:`RunJournal.begin` writes ``runs/<id>.json`` atomically (write-new, fsync, rename,
fsync dir) and returns the runs that never finished; :meth:`RunJournal.finish` replaces it
with the summary. A resumed run reports "the previous run was interrupted" from it. An
empty ``runs/<id>.open`` marks a run as started and not finished, so ``begin`` reads only
those records, not the last 50.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

from exoimap.errors import StoreError
from exoimap.store.archive.files import atomic_write, map_os_error

__all__ = ["RunJournal", "finished_runs"]

_KEEP_RUNS = 50


class RunJournal:
    """Start / finish records of sync runs in one directory."""

    def __init__(self, directory: Path, *, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable
        self.run_id = (
            _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S.%f") + "-" + uuid.uuid4().hex[:8]
        )
        self._path = directory / f"{self.run_id}.json"
        self._open_mark = directory / f"{self.run_id}.open"

    def begin(self, detail: dict[str, Any]) -> list[dict[str, Any]]:
        """Record this run's start; return earlier runs that never finished (and close them)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            interrupted = []
            for mark in sorted(self.directory.glob("*.open")):
                path = mark.with_suffix(".json")
                record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
                if record and "finished" not in record:
                    interrupted.append(record)
                    record["finished"] = None
                    record["interrupted"] = True
                    atomic_write(path, json.dumps(record).encode(), durable=self.durable)
                mark.unlink()
            self._open_mark.touch(mode=0o600)
            record = {
                "run": self.run_id,
                "pid": os.getpid(),
                "started": _dt.datetime.now(_dt.UTC).isoformat(),
                **detail,
            }
            atomic_write(self._path, json.dumps(record).encode(), durable=self.durable)
            self._prune()
        except OSError as exc:
            raise map_os_error(exc, "writing the run journal", path=self.directory) from exc
        except ValueError as exc:
            raise StoreError(f"unreadable run journal in {self.directory}: {exc}") from exc
        return interrupted

    def finish(self, summary: dict[str, Any]) -> None:
        """Record that this run finished, with its summary."""
        try:
            record = json.loads(self._path.read_text(encoding="utf-8"))
            record["finished"] = _dt.datetime.now(_dt.UTC).isoformat()
            record["summary"] = summary
            atomic_write(self._path, json.dumps(record).encode(), durable=self.durable)
            self._open_mark.unlink(missing_ok=True)
        except OSError as exc:
            raise map_os_error(exc, "writing the run journal", path=self.directory) from exc

    def _prune(self) -> None:
        runs = sorted(self.directory.glob("*.json"))
        for path in runs[:-_KEEP_RUNS]:
            path.unlink()


def finished_runs(directory: Path) -> list[tuple[_dt.datetime, int]]:
    """When each recorded run finished and the bytes it fetched, oldest first (read only;
    records that are unreadable or of runs that never finished are left out)."""
    found: list[tuple[_dt.datetime, int]] = []
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return found
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            finished = _dt.datetime.fromisoformat(record["finished"])
            fetched = int(record["summary"]["bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if finished.tzinfo is None:  # not written by this module
            continue
        found.append((finished, fetched))
    found.sort()
    return found
