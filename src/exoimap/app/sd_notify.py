"""The systemd notification protocol (``sd_notify``), without a dependency.

Under systemd with ``Type=notify`` the service manager passes ``NOTIFY_SOCKET`` (a path, or
``@name`` for the abstract namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. A
notification is one datagram of ``KEY=VALUE`` lines. Outside systemd every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends ``READY=1``, ``WATCHDOG=1``, ``STATUS=...`` to the service manager."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # the abstract namespace
        self._address = address if address.startswith(("/", "\0")) else ""
        watchdog = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_seconds: float | None = (
            int(watchdog) / 1e6 if watchdog.isdigit() and int(watchdog) > 0 and mine else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, **fields: str) -> bool:
        """Send one notification (``notify(READY="1", STATUS="...")``); False when not
        under systemd or the socket refused it (a notification is never worth a crash)."""
        if not self._address:
            return False
        # one line per field: a newline inside a value would start a bogus field
        message = "\n".join(
            f"{key}={value.replace(chr(10), ' ')}" for key, value in fields.items()
        ).encode()
        # Non-blocking: a manager that does not read (its queue is full) must never stall
        # the watch's event loop; that notification is dropped.
        kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        try:
            with socket.socket(socket.AF_UNIX, kind) as sock:
                sock.connect(self._address)
                sock.send(message)
        except BlockingIOError:
            log.debug("sd_notify to %r dropped: the service manager's queue is full", self._address)
            return False
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify(READY="1", **({"STATUS": status} if status else {}))

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG="1")

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)
