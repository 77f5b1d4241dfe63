"""The ``exoimap`` console script: run the CLI, then end the process without teardown.

Tearing down a Python interpreter that has loaded the CLI, asyncio, the protocol core and
SQLite takes about 0.25 s on a slow machine, as long as a whole no-change ``exoimap sync``
spends on its own work, and it only frees memory the operating system frees anyway. So once
the command has finished, every ``atexit`` handler has run (the log handlers close there)
and stdout/stderr are flushed, the process ends with :func:`os._exit`. Nothing of ours
depends on teardown: the archive, the vault and the audit log are written and fsync'd
explicitly. If a thread other than the main one is still running, the normal exit (which
waits for it) is used instead. ``exoimap.cli.main`` itself (what tests and embedding
programs call) never exits the process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

from exoimap.cli import main

__all__ = ["run"]


def run() -> NoReturn:
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)  # another thread may still write: let the interpreter wait for it
    atexit._run_exitfuncs()  # what a normal exit runs first (log handlers close here)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`exoimap ... | head`): nothing to flush
            code = code or 1
    os._exit(code)
