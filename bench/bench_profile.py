"""Profiling helpers for :mod:`bench.profile_backup`: every thread under cProfile, and the
profile's time grouped by area of the code.

Not a benchmark on its own (``python -m bench`` skips modules named ``bench_*``).

An area is picked from the file a function lives in: *IMAP parsing* ``exoimap/protocol/``,
*session/fetch* ``exoimap/net/``, *archive writing* ``exoimap/store/archive/`` ``files``,
``append``, ``writer``, ``journal``, *index* ``exoimap/store/archive/index`` and
``sqlite3``, *TLS* ``ssl``, *hashing* ``hashlib``, *asyncio* ``asyncio`` and ``selectors``,
*other exoimap* the rest of exoimap (sync engine, app, the rest of the store), *other*
everything else. Built-in functions have no file; the ones with an obvious area
(``_ssl``, ``_hashlib``, ``sqlite3``, ``select.epoll``, lock waits) get it from their
name, and every other built-in's time goes to the areas of the functions that called it,
in proportion to the time spent under each caller (a ``posix.write`` called from the
archive's writer is archive writing). *epoll wait* is ``select.epoll.poll`` (the event loop
waiting for the server) and *thread waits* ``_thread.lock.acquire`` and
``_queue.SimpleQueue.get`` (threads waiting for work or for each other): both are near zero
with a CPU timer. :data:`WAITS` are those two.
"""

from __future__ import annotations

import cProfile
import pstats
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AREAS",
    "WAITS",
    "Profiles",
    "area_of",
    "by_area",
    "by_thread",
    "profiling",
    "top_functions",
]

Func = tuple[str, int, str]

PARSING = "IMAP parsing"
SESSION = "session/fetch"
ARCHIVE = "archive writing"
INDEX = "index"
TLS = "TLS"
HASHING = "hashing"
ASYNCIO = "asyncio"
POLL = "epoll wait"
LOCKS = "thread waits"
EXOIMAP = "other exoimap"
OTHER = "other"
WAITS = (POLL, LOCKS)
AREAS = (PARSING, SESSION, ARCHIVE, INDEX, TLS, HASHING, ASYNCIO, POLL, LOCKS, EXOIMAP, OTHER)

_ARCHIVE_WRITING = ("files.py", "append.py", "writer.py", "journal.py")

#: Built-ins whose area their name tells (a substring of pstats' function name).
_BUILTIN_AREAS = (
    ("_ssl.", TLS),
    ("_hashlib", HASHING),
    ("_blake2", HASHING),
    ("sqlite3.", INDEX),
    ("select.epoll", POLL),
    ("_thread.lock", LOCKS),
    ("_queue.SimpleQueue", LOCKS),
    ("_thread.RLock", LOCKS),
)

#: Path pieces, first match wins: exoimap's packages before the standard library's.
_PATH_AREAS = (
    ("/exoimap/protocol/", PARSING),
    ("/exoimap/net/", SESSION),
    ("/exoimap/store/archive/index", INDEX),
    ("/sqlite3/", INDEX),
    ("/asyncio/", ASYNCIO),
    ("/selectors.py", ASYNCIO),
    ("/ssl.py", TLS),
    ("/hashlib.py", HASHING),
)


def area_of(func: Func) -> str | None:
    """The area of ``func``, or None for a built-in whose callers decide."""
    filename, _, name = func
    if filename == "~":
        return next((area for key, area in _BUILTIN_AREAS if key in name), None)
    path = filename.replace("\\", "/")
    if "/exoimap/store/archive/" in path and path.endswith(_ARCHIVE_WRITING):
        return ARCHIVE
    found = next((area for key, area in _PATH_AREAS if key in path), None)
    if found is not None:
        return found
    return EXOIMAP if "/exoimap/" in path else OTHER


def _split(func: Func, own: float, callers: dict[Func, Any]) -> dict[str, float]:
    """``own`` seconds of ``func`` by area: its own, else shared out over its callers'."""
    area = area_of(func)
    if area is not None:
        return {area: own}
    under = {caller: entry[2] for caller, entry in callers.items()}
    spread = sum(under.values())
    if not spread:  # called from nowhere profiled (a thread's first frame)
        return {OTHER: own}
    shares: dict[str, float] = {}
    for caller, part in under.items():
        caller_area = area_of(caller) or OTHER
        shares[caller_area] = shares.get(caller_area, 0.0) + own * part / spread
    return shares


def by_area(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time (tottime) per area, every area present (0.0 when none)."""
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    seconds = dict.fromkeys(AREAS, 0.0)
    for func, (_cc, _nc, own, _cum, callers) in table.items():
        for area, part in _split(func, own, callers).items():
            seconds[area] += part
    return seconds


@dataclass
class TopFunction:
    function: str
    area: str
    calls: int
    tottime_s: float
    cumtime_s: float


def _short(func: Func) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    filename = re.sub(r"^.*/(site-packages|src|lib/python3\.\d+)/", "", filename)
    return f"{filename}:{line}({name})"


def top_functions(stats: pstats.Stats, count: int) -> list[TopFunction]:
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:count]
    rows = []
    for func, (_cc, nc, own, cum, callers) in ranked:
        shares = _split(func, own, callers)
        area = max(shares, key=lambda a: shares[a])
        if area_of(func) is None:  # a built-in counted where its callers are
            area = f"{area} (by caller)"
        rows.append(TopFunction(_short(func), area, nc, own, cum))
    return rows


@dataclass
class Profiles:
    """One profiler per thread: the main thread's and one for each thread started while
    :func:`profiling` was active."""

    timer: Callable[[], float]
    main: cProfile.Profile
    threads: list[tuple[threading.Thread, cProfile.Profile]] = field(default_factory=list)

    def stats(self) -> tuple[pstats.Stats, int]:
        """The merged profile of the main thread and every thread that has ended, and how
        many threads were left out because they still run (their time is not in it)."""
        merged = pstats.Stats(self.main)
        running = 0
        for thread, profile in self.threads:
            if thread.is_alive():
                running += 1  # its profiler cannot be stopped from here
            else:
                merged.add(profile)
        return merged, running


def by_thread(profiles: Profiles) -> dict[str, float]:
    """Own time per kind of thread (its name less a trailing number: ``fsync_3`` is
    ``fsync``), the main thread as ``main``; threads still running are left out."""
    totals = {"main": pstats.Stats(profiles.main).total_tt}  # type: ignore[attr-defined]
    for thread, profile in profiles.threads:
        if not thread.is_alive():
            kind = re.sub(r"[-_]?\d+$", "", thread.name) or thread.name
            total: float = pstats.Stats(profile).total_tt  # type: ignore[attr-defined]
            totals[kind] = totals.get(kind, 0.0) + total
    return totals


@contextmanager
def profiling(timer: Callable[[], float]) -> Iterator[Profiles]:
    """Profile the calling thread, and every thread started inside the block, with
    ``timer`` (``time.thread_time`` gives each thread's own CPU time)."""
    profiles = Profiles(timer, cProfile.Profile(timer))
    original_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profile = cProfile.Profile(timer)
        profiles.threads.append((thread, profile))
        profile.enable()
        try:
            original_run(thread)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign,assignment]
    profiles.main.enable()
    try:
        yield profiles
    finally:
        profiles.main.disable()
        threading.Thread.run = original_run  # type: ignore[method-assign]
