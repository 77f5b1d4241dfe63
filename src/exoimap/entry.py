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
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

__all__ = ["run"]


def run() -> NoReturn:
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
