"""The agent process: accept requests on the socket and run them as the command would.

Threads: an acceptor answers every connection at once (``status``, ``stop``, or a ``run``
that is accepted, or declined as busy) and hands accepted runs to the main thread, which
runs them one at a time through the ``run`` callable it was given (the CLI's ``main``,
handed over by ``exoimap agent serve``: the agent never imports the CLI) with stdout and
stderr relayed to the client. The main thread is the one that runs commands because
asyncio's Ctrl-C handling works only there: a client that goes away (Ctrl-C, or killed) is
turned into a SIGINT to the main thread, so the command is interrupted exactly as it would
be in its own process.

Who may connect: the socket's directory is 0700, the socket 0600, and on Linux the peer's
uid is checked (``SO_PEERCRED``) as well. One agent per data directory: it holds an
exclusive lock on ``run/agent.lock`` for as long as it lives.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import queue
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exoimap.agent import wire
from exoimap.agent.tokens import TokenService
from exoimap.agent.watching import AgentWatch
from exoimap.app.resident import Resident, resident
from exoimap.app.sd_notify import Notifier
from exoimap.audit import Auditor, auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.config import Paths, load_config
from exoimap.errors import ConfigError, ExoimapError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Agent", "AgentBusy", "RunCommand", "code_fingerprint"]

log = logging.getLogger(__name__)

#: Runs one command line in this process and returns its exit code; the resident state
#: goes along so the command can reuse what earlier runs kept.
RunCommand = Callable[[list[str], Resident | None], int]

#: How long the acceptor waits for a connected client to send its request.
REQUEST_TIMEOUT = 5.0
#: How often the idle main thread and the acceptor look at the stop flag.
TICK = 0.25
#: How often an idle agent closes kept connections that have grown too old.
EXPIRY_INTERVAL = 30.0


class AgentBusy(ExoimapError):
    """Another agent already serves this data directory."""


def code_fingerprint() -> tuple[int, int]:
    """(newest mtime, count) of exoimap's source files: changes when exoimap is upgraded
    or edited, and then this agent must not run another command with its old code."""
    import exoimap

    root = os.path.dirname(os.path.abspath(exoimap.__file__))
    newest = count = 0
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
                count += 1
    return newest, count


class _Relay(io.TextIOBase):
    """A text stream whose writes go to the client as stdout or stderr frames."""

    encoding = "utf-8"

    def __init__(self, send: _Sender, kind: bytes, tty: bool, columns: int | None) -> None:
        self._send = send
        self._kind = kind
        self._tty = tty
        #: The client's terminal width (read by the progress display).
        self.columns = columns

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "surrogateescape")
        for start in range(0, len(data), wire.MAX_FRAME):
            self._send(self._kind, data[start : start + wire.MAX_FRAME])
        return len(text)

    def isatty(self) -> bool:
        return self._tty

    def writable(self) -> bool:
        return True


class _Sender:
    """Sends messages on one connection from any thread; a client that left is ignored."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.gone = False

    def __call__(self, kind: bytes, payload: bytes = b"") -> None:
        with self._lock:
            if self.gone:
                return
            try:
                self._conn.sendall(wire.frame(kind, payload))
            except OSError:
                self.gone = True


@dataclass
class _Run:
    conn: socket.socket
    request: wire.RunRequest
    ended: bool = False  # the agent was freed from it (see Agent._end_run)


@dataclass
class _State:
    started: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.monotonic)
    requests: int = 0
    busy: bool = False
    stopping: bool = False
    running: bool = False  # a command is executing in the main thread right now


class Agent:
    """One agent for one data directory. :meth:`serve` runs it until it stops."""

    def __init__(
        self,
        paths: Paths,
        *,
        run: RunCommand,
        idle_timeout: float,
        watch: AgentWatch | None = None,
    ) -> None:
        self.paths = paths
        self.watch = watch
        self._run_command = run
        self.idle_timeout = idle_timeout
        self.socket_path = paths.agent_socket
        self._state = _State()
        self._lock = threading.Lock()
        self._runs: queue.Queue[_Run | None] = queue.Queue()
        self._fingerprint = code_fingerprint()
        self._main_thread = threading.main_thread()
        self._resident: Resident | None = None
        self._auditor: Auditor | None = None
        self._tokens = TokenService(paths)
        self._ready = threading.Event()  # the auditor is open: token requests may be answered
        self._client_gone = False  # the running command's client left: SIGINT was ours
        self._last_expiry = time.monotonic()
        #: systemd's notifications (nothing outside systemd): READY once the agent serves
        #: and watches, STOPPING when it stops; its watch feeds the watchdog.
        self._notifier = Notifier()

    # --- lifetime -------------------------------------------------------------------------

    def serve(self) -> None:
        """Listen until stopped, idle for ``idle_timeout`` seconds (0: never), or outdated.

        Call from the main thread: commands run here, and signals reach only that thread.
        """
        if threading.current_thread() is not self._main_thread:
            raise RuntimeError("Agent.serve() must run in the main thread")
        _log_to_agent_log()
        _warm_up()
        with self._locked(), self._listening() as listener:
            # The handlers before the acceptor: once it answers, `agent start` reports the
            # agent up, and a SIGTERM from then on must stop it cleanly, not kill it.
            previous_term = signal.signal(signal.SIGTERM, self._on_sigterm)
            previous_int = signal.signal(signal.SIGINT, self._on_sigint_when_idle)
            acceptor = threading.Thread(
                target=self._accept_loop, args=(listener,), name="agent-accept", daemon=True
            )
            acceptor.start()
            log.info("agent %d listening on %s", os.getpid(), self.socket_path)
            try:
                # Its own auditor between syncs (each sync opens one for itself): a kept
                # connection closed while idle or at the end is audited like any other.
                with (
                    auditing(
                        self.paths,
                        load_config(self.paths).audit,
                        key=audit_key_for(self.paths),
                    ) as self._auditor,
                    resident() as self._resident,
                ):
                    self._ready.set()
                    if self.watch is not None:
                        self.watch.start()
                    self._notifier.ready(self._serving())
                    try:
                        self._main_loop()
                    finally:
                        self._notifier.notify(STOPPING="1")
                        if self.watch is not None:
                            self.watch.stop()
            finally:
                signal.signal(signal.SIGTERM, previous_term)
                signal.signal(signal.SIGINT, previous_int)
                with self._lock:
                    self._state.stopping = True
                acceptor.join()
                self._decline_queued("the agent stopped")
        log.info("agent %d stopped after %d requests", os.getpid(), self._state.requests)

    def _serving(self) -> str:
        watching = ""
        if self.watch is not None:
            watching = ", watching " + ", ".join(a.name for a in self.watch.accounts)
        return f"serving on {self.socket_path}{watching}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        run_dir = self.socket_path.parent
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if run_dir.stat().st_uid != os.getuid():
            raise ConfigError(f"{run_dir} belongs to another user; the agent will not use it")
        os.chmod(run_dir, 0o700)
        fd = os.open(run_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AgentBusy(f"an agent already serves {self.paths.data_dir}") from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def _listening(self) -> Iterator[socket.socket]:
        path = str(self.socket_path)
        if len(os.fsencode(path)) > wire.MAX_SOCKET_PATH:
            raise ConfigError(
                f"the agent's socket path {path} is longer than {wire.MAX_SOCKET_PATH} bytes; "
                "set EXOIMAP_HOME to a shorter directory"
            )
        # We hold the lock, so a socket file left here is a dead agent's.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        inode = os.stat(path).st_ino
        try:
            listener.listen(16)
            listener.settimeout(TICK)
            yield listener
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == inode:  # never remove a successor's socket
                    os.unlink(path)

    # Signal handlers run in the main thread between two bytecodes, maybe while it holds
    # self._lock: they only set flags (atomic under the GIL) and never take the lock.

    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        self._state.stopping = True
        if self._state.running:  # interrupt the command as Ctrl-C would; its work is kept
            signal.raise_signal(signal.SIGINT)

    def _on_sigint_when_idle(self, _signum: int, _frame: object) -> None:
        # Ctrl-C on `exoimap agent serve` in a terminal: stop. (While a command runs, the
        # default handler is in place, so that asyncio turns SIGINT into a clean cancel.)
        if not self._client_gone:  # not a late interrupt sent for a client that left
            self._state.stopping = True

    # --- the main thread: run commands ----------------------------------------------------

    def _main_loop(self) -> None:
        while True:
            try:
                if not self._next():
                    return
            except KeyboardInterrupt:  # an interrupt meant for a command that just ended
                continue

    def _watch_service_ended(self, *, busy: bool) -> bool:
        """Under systemd a watching agent is the watch service: once its watch has ended
        (every account needs a sign-in, or it failed), it stops as ``exoimap watch`` would,
        so that the service manager sees it (its exit code: ``agent serve``)."""
        if busy or self.watch is None or self.watch.active or not self._notifier.enabled:
            return False
        self._state.stopping = True
        log.info("the watch ended: stopping (the agent runs as a watch service)")
        return True

    def _next(self) -> bool:
        """Run the next request, if one comes within a tick; False when it is time to stop."""
        try:
            item = self._runs.get(timeout=TICK)
        except queue.Empty:
            with self._lock:
                if self._state.stopping:
                    return False
                idle = time.monotonic() - self._state.last_active
                busy = self._state.busy  # a run was accepted and is on its way here
                watching = self.watch is not None and self.watch.active
                if not (busy or watching) and self.idle_timeout and idle >= self.idle_timeout:
                    self._state.stopping = True
                    log.info("agent idle for %.0f s: stopping", idle)
                    return False
                if self._watch_service_ended(busy=busy):
                    return False
            if not busy and time.monotonic() - self._last_expiry >= EXPIRY_INTERVAL:
                self._last_expiry = time.monotonic()
                if self._resident is not None:  # close connections kept too long
                    self._resident.runner.run(self._resident.sources.expire())
                if self._auditor is not None:
                    self._auditor.flush()
            return True
        if item is None:
            return False
        try:
            with item.conn:
                self._execute(item)
        finally:
            self._end_run(item)  # normally done already, before the exit code was sent
        return True

    def _end_run(self, run: _Run) -> None:
        """The agent is free for the next request (once per run: by then another run may
        have been accepted, and its busy flag is not this run's to clear)."""
        with self._lock:
            if run.ended:
                return
            run.ended = True
            self._state.running = False
            self._state.busy = False
            self._state.last_active = time.monotonic()

    def _execute(self, run: _Run) -> None:
        request = run.request
        send = _Sender(run.conn)
        stdout = _Relay(send, wire.STDOUT, request.tty, request.columns)
        stderr = _Relay(send, wire.STDERR, request.tty, request.columns)
        watcher = threading.Thread(
            target=self._watch_client, args=(run.conn,), name="agent-watch", daemon=True
        )
        self._client_gone = False
        with self._lock:
            self._state.requests += 1
            self._state.running = True
        watcher.start()
        code = 1
        started = time.monotonic()
        idle_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with (
                _working_directory(request.cwd),
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
            ):
                code = self._run_command(request.argv, self._resident)
        except KeyboardInterrupt:
            code = 130
        except Exception:  # a bug: the client is told, the agent goes on serving
            log.exception("the command failed inside the agent")
            send(wire.STDERR, b"exoimap: error: the command failed in the agent (logs/agent.log)\n")
        finally:
            # Free before the client hears the exit code: a sync it starts right after must
            # be taken, not declined as busy (and run in its own process) while this one
            # is still closing its connection.
            self._end_run(run)
            signal.signal(signal.SIGINT, idle_handler)
            send(wire.EXIT, str(code).encode())
            watcher.join()
            took = (time.monotonic() - started) * 1000
            log.info("ran a sync: exit code %d in %.1f ms", code, took)

    def _watch_client(self, conn: socket.socket) -> None:
        """Interrupt the running command when its client goes away."""
        while True:
            with self._lock:
                if not self._state.running:
                    return
            try:
                readable, _, _ = select.select([conn], [], [], TICK)
                ended = bool(readable) and not conn.recv(1, socket.MSG_PEEK)
            except (OSError, ValueError):
                ended = True
            if ended or readable:  # end of stream, or bytes a client never sends mid-run
                with self._lock:
                    if self._state.running:
                        self._client_gone = True
                        signal.pthread_kill(self._main_thread.ident or 0, signal.SIGINT)
                return

    # --- the acceptor thread --------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._state.stopping:
                    return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                log.exception("accept failed")
                time.sleep(TICK)
                continue
            try:
                self._answer(conn)
            except (OSError, wire.WireError) as exc:
                log.info("a client was dropped: %s", exc)
                conn.close()

    def _answer(self, conn: socket.socket) -> None:
        """Answer one connection; a run it accepts is handed over with its connection."""
        if not _same_user(conn):
            log.warning("refused a connection from another user")
            conn.close()
            return
        conn.settimeout(REQUEST_TIMEOUT)
        request = wire.FrameReader(conn).read()
        send = _Sender(conn)
        if request is None:
            conn.close()
            return
        kind, payload = request
        version = payload.split(b"\0", 1)[0]
        if version != str(wire.VERSION).encode():
            send(wire.DECLINED, f"the agent speaks protocol {wire.VERSION}".encode())
        elif kind == wire.STATUS:
            send(wire.STATUS_REPLY, json.dumps(self.status()).encode())
        elif kind == wire.STOP:
            with self._lock:
                self._state.stopping = True
            send(wire.ACCEPTED)
        elif kind == wire.TOKEN:
            refuse = self._outdated()
            if refuse is None:
                self._serve_token(conn, payload)
                return  # its thread owns the connection now
            send(wire.DECLINED, refuse.encode())
        elif kind == wire.RUN:
            run = wire.parse_run_request(payload)
            refuse = _unservable(run) or self._refusal()
            if refuse is None:
                conn.settimeout(None)
                send(wire.ACCEPTED)
                self._runs.put(_Run(conn, run))
                return  # the main thread owns the connection now
            send(wire.DECLINED, refuse.encode())
        else:
            send(wire.DECLINED, f"not a request the agent knows: {kind!r}".encode())
        conn.close()

    def _serve_token(self, conn: socket.socket, payload: bytes) -> None:
        """Answer a ``token print`` in a thread of its own: a sync may be running."""
        with self._lock:
            self._state.last_active = time.monotonic()
        answer = threading.Thread(
            target=self._answer_token, args=(conn, payload), name="agent-token"
        )
        answer.daemon = True
        answer.start()

    def _answer_token(self, conn: socket.socket, payload: bytes) -> None:
        # An agent that has just started listens before its auditor is open.
        if not self._ready.wait(wire.ACCEPT_TIMEOUT / 2) or self._auditor is None:
            with conn:
                _Sender(conn)(wire.DECLINED, b"the agent is still starting")
            return
        self._tokens.serve(conn, payload, self._auditor)

    def _outdated(self) -> str | None:
        """Why this agent must not serve anything more (and is stopping), or None."""
        if code_fingerprint() == self._fingerprint:
            return None
        log.info("exoimap's code changed since the agent started: stopping")
        with self._lock:
            self._state.stopping = True
        return (
            "exoimap was upgraded or changed since the agent started, so the agent has "
            "stopped (start it again: exoimap agent start)"
        )

    def _refusal(self) -> str | None:
        """Why a run cannot be taken now, or None (and then the agent is busy with it)."""
        outdated = self._outdated()
        if outdated is not None:
            return outdated
        with self._lock:
            if self._state.stopping:
                return "the agent is stopping"
            if self._state.busy:
                return "busy"
            self._state.busy = True
        return None

    def status(self) -> dict[str, Any]:
        with self._lock:
            state = self._state
            return {
                "pid": os.getpid(),
                "started": state.started,
                "requests": state.requests,
                "busy": state.busy,
                "idle_timeout": self.idle_timeout,
                "idle_for": round(time.monotonic() - state.last_active, 1),
                "data_dir": str(self.paths.data_dir),
                "connections_kept": self._resident.sources.parked if self._resident else 0,
                "connections_reused": self._resident.sources.reused if self._resident else 0,
                "watch": self.watch.status() if self.watch is not None else None,
            }

    def _decline_queued(self, reason: str) -> None:
        while True:
            try:
                item = self._runs.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                with item.conn:
                    send = _Sender(item.conn)
                    send(wire.STDERR, f"exoimap: error: {reason}; run the command again\n".encode())
                    send(wire.EXIT, b"1")


def _unservable(request: wire.RunRequest) -> str | None:
    """Why the agent must not run this request at all, or None."""
    from exoimap.agent.client import served_by_agent

    if not served_by_agent(request.argv):
        return "the agent runs only `exoimap sync`"
    if not os.path.isdir(request.cwd) or not os.access(request.cwd, os.X_OK):
        return f"the agent cannot work in {request.cwd}"
    return None


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    """Run a command where its client runs (one command at a time, so chdir is safe)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _same_user(conn: socket.socket) -> bool:
    return wire.peer_uid(conn) in (None, os.getuid())


def _log_to_agent_log() -> None:
    """The agent's own lines go to its stderr (logs/agent.log), whatever logging each
    command sets up for itself (whose stderr is the client's)."""
    import sys

    from exoimap.logs import RedactingFilter

    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


_WARM_MODULES = (
    "exoimap.cli",
    "exoimap.cli.sync_cmd",
    "exoimap.auth.provider",
    "exoimap.auth.vault",
    "exoimap.store.remote",
)


def _warm_up() -> None:
    """Import what a sync needs now, so the first request is as quick as the next ones."""
    import importlib

    for name in _WARM_MODULES:
        importlib.import_module(name)
