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

A ``sync`` is first offered to a running ``exoimap agent`` (:mod:`exoimap.agent.client`);
only when none takes it is the CLI imported and run here.

The cyclic garbage collector runs far less often in this process than Python's default
(:data:`GC_THRESHOLDS`): a backup allocates a few dozen container objects per message,
almost all freed by reference counting, yet with the default thresholds the collector ran
about 350 times in a 20,000-message backup and took 0.15-0.23 s (2-4 % of its CPU), most
of it walking the long-lived objects the imports made. Memory held in reference cycles is
still freed, a little later. The library leaves the collector alone: it belongs to the
program that embeds it.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

__all__ = ["GC_THRESHOLDS", "run"]

#: Collector thresholds for a CLI process (Python's default: 700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)


def run() -> NoReturn:
    gc.set_threshold(*GC_THRESHOLDS)
    # The agent client first, and the CLI (click, asyncio, the toolkit) only if the command
    # runs here: a sync handed to a running agent costs this process almost no imports.
    try:
        from exoimap.agent.client import forward
    except ImportError:  # no Unix sockets on this platform: no agent either
        code = None
    else:
        try:
            code = forward(sys.argv[1:])
        except KeyboardInterrupt:  # before the agent accepted: nothing ran
            print("exoimap: interrupted.", file=sys.stderr)
            code = 130
    if code is None:
        from exoimap.cli import main

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
