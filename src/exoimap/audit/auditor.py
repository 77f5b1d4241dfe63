"""Emitting audit events: the :class:`Auditor`, and the "current auditor" for library code.

Library code (auth, net, sync, archive) records what it does with one call and no plumbing::

    from exoimap import audit
    audit.emit(audit.TokenRefreshed(account="work", flow="device", client_id=cid))

``emit`` hands the event to the current auditor: the one installed for this process by
:func:`set_auditor` (the CLI does this at start-up), or one bound to the current context by
``with use_auditor(a):``. By default there is none, and ``emit`` still checks the event (so
a test catches a Secret passed by mistake) and drops it.

An :class:`Auditor` stamps each event with the time, the OS user, the console user (see
:func:`acting_as`) and its run's correlation id, buffers it, and writes batches durably:
when ``batch_size`` events are waiting, when the oldest has waited ``max_delay`` seconds,
at :meth:`Auditor.flush` / :meth:`Auditor.close`, and at once for any failure or denial.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType

from exoimap.audit.events import AuditEvent
from exoimap.audit.log import AuditLog, Entry
from exoimap.config import AuditConfig, Paths
from exoimap.secrets import Secret

__all__ = [
    "AuditKey",
    "Auditor",
    "Listener",
    "acting_as",
    "auditing",
    "current_auditor",
    "emit",
    "new_correlation_id",
    "open_auditor",
    "os_user",
    "set_auditor",
    "use_auditor",
]

Listener = Callable[[AuditEvent], None]
#: The key that authenticates the log, or how to get it (asked only when auditing is
#: enabled). The caller supplies it (see :mod:`exoimap.auth.audit_key`): the audit package
#: knows nothing of where keys are kept.
AuditKey = Secret[bytes] | Callable[[], Secret[bytes]]


def new_correlation_id() -> str:
    """A fresh id for one run (one CLI invocation, one console request, one sync job)."""
    return uuid.uuid4().hex


def os_user() -> str:
    """The operating-system user running this process."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Auditor:
    """Stamps, buffers and writes audit events. ``log=None`` makes one that only checks."""

    def __init__(
        self,
        log: AuditLog | None,
        *,
        correlation_id: str | None = None,
        user: str | None = None,
        batch_size: int = 256,
        max_delay: float = 1.0,
    ) -> None:
        self.log = log
        self.correlation_id = correlation_id or (log.run if log else "") or new_correlation_id()
        self.user = user or (log.os_user if log else "") or os_user()
        self.batch_size = max(1, batch_size)
        self.max_delay = max_delay
        self._buffer: list[Entry] = []
        self._oldest = 0.0
        self._mutex = threading.Lock()
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event emitted (metrics hook here)."""
        self._listeners.append(listener)

    def emit(self, event: AuditEvent) -> None:
        """Record ``event``. Failures and denials are on disk when this returns."""
        if not isinstance(event, AuditEvent):
            raise TypeError(f"expected an AuditEvent, got {type(event).__name__}")
        for listener in self._listeners:
            listener(event)
        if self.log is None:
            return
        entry = Entry(_now(), event, self.user, _console_user.get(), self.correlation_id)
        with self._mutex:
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(entry)
            due = (
                len(self._buffer) >= self.batch_size
                or event.outcome != "success"
                or time.monotonic() - self._oldest >= self.max_delay
            )
            if due:
                self._flush_locked()

    def flush(self) -> None:
        """Write every buffered event durably."""
        with self._mutex:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self.log is None or not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            self.log.append(batch)
        except BaseException:
            # Keep what did not reach the disk for a retry: nothing lost, nothing twice.
            self._buffer = batch[self.log.durable_in_last_append :] + self._buffer
            raise

    def close(self) -> None:
        """Flush, then release the log."""
        self.flush()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Auditor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_NULL = Auditor(None, correlation_id="-", user="-")
_process_auditor: Auditor = _NULL
_context_auditor: ContextVar[Auditor | None] = ContextVar("exoimap_auditor", default=None)
_console_user: ContextVar[str | None] = ContextVar("exoimap_console_user", default=None)


def current_auditor() -> Auditor:
    """The auditor ``emit`` writes to: the context's, else the process's, else a no-op."""
    return _context_auditor.get() or _process_auditor


def set_auditor(auditor: Auditor | None) -> None:
    """Install ``auditor`` for the whole process (``None`` restores the no-op default)."""
    global _process_auditor  # noqa: PLW0603 - one process-wide default, by design
    _process_auditor = auditor or _NULL


@contextlib.contextmanager
def use_auditor(auditor: Auditor) -> Iterator[Auditor]:
    """Send events emitted in this context (and tasks started in it) to ``auditor``."""
    token = _context_auditor.set(auditor)
    try:
        yield auditor
    finally:
        _context_auditor.reset(token)


@contextlib.contextmanager
def acting_as(console_user: str) -> Iterator[None]:
    """Mark events emitted in this context as done on behalf of a console user."""
    token = _console_user.set(console_user)
    try:
        yield
    finally:
        _console_user.reset(token)


def emit(event: AuditEvent) -> None:
    """Record ``event`` with the current auditor (see the module docstring)."""
    current_auditor().emit(event)


def open_auditor(
    paths: Paths,
    config: AuditConfig | None = None,
    *,
    key: AuditKey,
    correlation_id: str | None = None,
) -> Auditor:
    """The auditor for this installation: the log under ``paths.audit_dir`` with the
    configured rotation size, keyed by ``key``. When ``[audit] enabled = false`` it only
    checks events and writes nothing (and a key source is never called)."""
    config = config or AuditConfig()
    run = correlation_id or new_correlation_id()
    user = os_user()
    if not config.enabled:
        return Auditor(None, correlation_id=run, user=user)
    log = AuditLog(
        paths.audit_dir,
        key if isinstance(key, Secret) else key(),
        max_file_bytes=config.max_file_bytes,
        run=run,
        os_user=user,
        anchor=paths.audit_anchor,
    )
    return Auditor(log, correlation_id=run, user=user)


@contextlib.contextmanager
def auditing(
    paths: Paths,
    config: AuditConfig | None = None,
    *,
    key: AuditKey,
    listeners: Iterable[Listener] = (),
) -> Iterator[Auditor]:
    """Open the installation's auditor and make it the process's for the block; flush and
    close it at the end, even on error. What a CLI command or a console worker wraps its
    work in, with ``key=audit_key_for(paths)`` (:mod:`exoimap.auth.audit_key`) and
    ``listeners=[METRICS.observe_event]`` to feed the metrics (:mod:`exoimap.metrics`)."""
    auditor = open_auditor(paths, config, key=key)
    for listener in listeners:
        auditor.add_listener(listener)
    previous = _process_auditor
    set_auditor(auditor)
    try:
        yield auditor
    finally:
        set_auditor(previous)
        auditor.close()
