"""CPU seconds of a process, or of a server and every process it started, from ``/proc``.

A benchmark's client CPU comes from ``/usr/bin/time``; the server's (Dovecot: a master
process and the ``imap``, ``imap-login`` and ``auth`` processes it starts) is what this adds,
so a run can say how many of the machine's cores were busy and whose work kept them busy.

:func:`tree_cpu_seconds` counts the root process, every live descendant, and the children
the root has already reaped (``cutime`` and ``cstime``: an ``imap`` process that served a
client and exited). Take it before and after a run and subtract. Linux only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_cpu_seconds", "tree_cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` from the state field on (the name may hold spaces and ``)``)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU of ``pid``; with ``reaped_children``, also of the children it
    has waited for."""
    fields = _stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICKS


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process there is now."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):  # it ended meanwhile
            continue
    return parents


def tree_cpu_seconds(root: int) -> float:
    """CPU of ``root``, its live descendants and the children it has reaped."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    total = process_cpu_seconds(root, reaped_children=True)
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            # a descendant's own reaped children count as well (a zombie keeps its times)
            total += process_cpu_seconds(pid, reaped_children=True)
        except (OSError, ValueError, IndexError):  # it ended between the scan and now
            continue
    return total
