"""The health file of ``exoimap watch``: one JSON document, replaced whole on each change.

Monitoring reads it (``jq '.mailboxes[] | select(.state != "watching")'``); ``updated``
moves at every heartbeat, so a stale file means a hung or dead watcher. Layout::

    {"pid": 1234, "started": 1764921600.0, "updated": 1764921615.2,
     "mailboxes": [{"account": "work", "state": "watching", "idle_folders": ["INBOX"],
                    "syncs": 3, "messages_synced": 12, "last_sync": 1764921610.9,
                    "last_sync_ok": true, "last_error": "", "last_error_at": null,
                    "throttled": 0, "throttled_seconds": 0.0,
                    "resumes": 0, "last_resume": null}]}
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from exoimap.app.watch import MailboxHealth
from exoimap.audit.atomic import replace_file

__all__ = ["HealthFile"]

log = logging.getLogger(__name__)


class HealthFile:
    """Writes the watch's health to ``path`` (0600: it names accounts and errors)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()

    def write(self, mailboxes: Iterable[MailboxHealth]) -> None:
        """Replace the file; a failure is logged, never raised (the watch goes on)."""
        document = {
            "pid": os.getpid(),
            "started": self.started,
            "updated": time.time(),
            "mailboxes": [m.as_json() for m in mailboxes],
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            replace_file(self.path, json.dumps(document, indent=1).encode() + b"\n")
        except OSError as exc:
            log.warning("cannot write the health file %s: %s", self.path, exc)
