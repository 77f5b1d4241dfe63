"""The watch inside the agent: ``exoimap agent start --watch [NAME...]``.

The agent's main thread runs commands one at a time (see :mod:`.server`), so the watch
(:func:`exoimap.app.watch_service.serve_watch`, exactly what ``exoimap watch`` runs) gets a
thread and an event loop of its own, with its own auditor and kept connections, from the
agent's start until it stops. It signs in without a prompt (the agent has no terminal), as
the agent's token answers do. While it watches, the agent does not stop when idle; once it
ends (every account needs a sign-in), the agent's idle timeout counts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from exoimap.app import resident
from exoimap.app.sd_notify import Notifier
from exoimap.app.watch import MailboxHealth, WatchSettings
from exoimap.app.watch_health import HealthFile
from exoimap.app.watch_service import WatchService, serve_watch
from exoimap.audit import open_auditor, use_auditor
from exoimap.auth.audit_key import audit_key_for
from exoimap.auth.token_child import token_provider_for
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.logs import redact
from exoimap.metrics import METRICS, serve_metrics
from exoimap.net.account import AccountProvider

__all__ = ["AgentWatch"]

log = logging.getLogger("exoimap.agent.server")  # the logger that goes to logs/agent.log

#: How long stopping waits for the watch to close its connections.
STOP_TIMEOUT = 30.0


def _provider(account: AccountConfig) -> AccountProvider:
    # tokens from a child process (the watch then never holds MSAL); no prompt: no terminal
    return token_provider_for(account, Paths.from_env())


class AgentWatch:
    """``serve_watch`` for ``accounts`` on a thread of its own (see the module docstring)."""

    def __init__(
        self,
        paths: Paths,
        accounts: Sequence[AccountConfig],
        settings: WatchSettings,
        health_file: HealthFile,
        *,
        metrics_port: int | None = None,
    ) -> None:
        self.paths = paths
        self.accounts = list(accounts)
        self.settings = settings
        self._health: dict[str, MailboxHealth] = {a.name: MailboxHealth(a.name) for a in accounts}
        self._logged_states: dict[str, str] = {}
        # under systemd the agent is the service: it says READY and STOPPING; the watch's
        # heartbeat feeds the watchdog (its event loop is what must not hang)
        self._service = WatchService(
            health_file=health_file,
            notifier=Notifier(),
            on_change=self._changed,
            owns_service=False,
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[list[MailboxHealth]] | None = None
        self._thread = threading.Thread(target=self._run, name="agent-watch", daemon=True)
        self._stopping = False
        self.error = ""
        #: The watch ended because every account needs the user to sign in.
        self.needs_signin = False
        self.metrics_port = metrics_port
        #: Where the watch's metrics are served (once they are).
        self.metrics_url = ""

    def _changed(self, health: MailboxHealth) -> None:
        with self._lock:
            self._health[health.account] = health
            logged = self._logged_states.get(health.account)
            self._logged_states[health.account] = health.state
        if logged == health.state:
            return  # other counters moved: the log has one line per change of state
        if health.state in ("signin_needed", "reconnecting"):
            log.warning("watch: %s: %s: %s", health.account, health.state, health.last_error)
        else:
            log.info("watch: %s: %s", health.account, health.state)

    @property
    def active(self) -> bool:
        """Whether the watch still runs (it ends when every account needs a sign-in)."""
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the watch (its syncs keep what they wrote) and wait for it."""
        with self._lock:
            self._stopping = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)

    def status(self) -> dict[str, Any]:
        with self._lock:
            mailboxes = [h.as_json() for h in self._health.values()]
        return {
            "active": self.active,
            "error": self.error,
            "health_file": str(self._service.health_file.path if self._service.health_file else ""),
            "metrics_url": self.metrics_url,
            "mailboxes": mailboxes,
        }

    def _run(self) -> None:
        log.info("watch: %s", ", ".join(a.name for a in self.accounts))
        try:
            config = load_config(self.paths)
            # this thread's own auditor, in its context: the process-wide one is swapped
            # by every `exoimap sync` the agent runs meanwhile, and the watch's events went
            # to that sync's auditor (its metrics missed them)
            auditor = open_auditor(self.paths, config.audit, key=audit_key_for(self.paths))
            if self.metrics_port is not None:
                auditor.add_listener(METRICS.observe_event)
            try:
                with (
                    use_auditor(auditor),
                    self._metrics_served(),
                    resident.resident() as kept,
                ):
                    kept.runner.run(self._watch(kept))
            finally:
                auditor.close()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # logged and shown by `agent status`; the agent goes on
            self.error = redact(str(exc))
            log.exception("the watch failed")
        log.info("watch ended")

    @contextlib.contextmanager
    def _metrics_served(self) -> Iterator[None]:
        """Serve the metrics the watch's audit events feed (when a port was asked for)."""
        if self.metrics_port is None:
            yield
            return
        with serve_metrics(self.metrics_port) as server:
            self.metrics_url = server.url
            log.info("watch: metrics on %s", server.url)
            yield

    async def _watch(self, kept: resident.Resident) -> None:
        task = asyncio.create_task(
            serve_watch(
                self.accounts, self.paths, _provider, self.settings, self._service, kept=kept
            )
        )
        with self._lock:
            self._loop, self._task = asyncio.get_running_loop(), task
            if self._stopping:  # stop() came before there was a task to cancel
                task.cancel()
        ended = await task
        self.needs_signin = bool(ended) and all(h.state == "signin_needed" for h in ended)
