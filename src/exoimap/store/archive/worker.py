"""The archive's worker thread: all of its SQLite and file work runs there.

One thread per open archive (a ``ThreadPoolExecutor`` with one worker): the event loop
never waits for the disk, the SQLite connection is only ever used from that thread, and
the archive's operations run one after the other, in the order they were asked for.
Flushing the files of an append batch and its journal record needs neither the index nor
that order: :meth:`Worker.run_beside` runs it on the loop's default pool, so batches of
several folders flush at once. Message bodies are written by a separate thread per
append batch (:mod:`exoimap.store.archive.writer`), so a batch streaming in does not wait
for another folder's commit.

:meth:`Worker.run` is also the boundary where ``OSError`` of the archive's file work
becomes a store error (:func:`~exoimap.store.archive.files.map_os_error`); SQLite errors
are mapped by the index itself (:mod:`exoimap.store.archive.index`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from exoimap.store.archive.files import map_os_error

__all__ = ["Worker"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Worker:
    """One thread that runs the archive's blocking work, in order."""

    def __init__(self, root: Path | None = None) -> None:
        """``root``: the archive, whose disk a full-disk error names."""
        self._root = root
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exoimap-archive")

    async def run(
        self,
        what: str,
        folder: str | None,
        function: Callable[_P, _T],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run ``function`` on the thread; an ``OSError`` becomes a store error saying
        ``what`` failed (scoped to ``folder`` when it is about one folder)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool, functools.partial(function, *args, **kwargs)
            )
        except OSError as exc:
            raise map_os_error(exc, what, folder=folder, path=self._root) from exc

    async def run_beside(
        self,
        what: str,
        folder: str | None,
        function: Callable[_P, _T],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Like :meth:`run`, but on a thread of the loop's default pool: for flushing
        files already written, which needs no order and no index, so that one folder's
        flush does not hold up the others' work."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except OSError as exc:
            raise map_os_error(exc, what, folder=folder, path=self._root) from exc

    def call(
        self, what: str, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run ``function`` on the thread and wait for it, blocking (opening and closing,
        which may happen outside an event loop)."""
        try:
            return self._pool.submit(function, *args, **kwargs).result()
        except OSError as exc:
            raise map_os_error(exc, what, path=self._root) from exc

    def close(self) -> None:
        """Wait for the work handed over, then end the thread."""
        self._pool.shutdown(wait=True)
