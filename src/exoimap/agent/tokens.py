"""The agent's answer to ``exoimap token print``: the token from memory, without start-up.

Unlike a ``sync``, which the agent runs one at a time in its main thread, each token request
is answered at once in a thread of its own, also while a sync runs: a mail client that asks
for a token must not wait for a backup. The answer is what the command would print and its
exit code, sent as stdout, stderr and exit frames (see :mod:`.wire`). One
:class:`~exoimap.auth.handout.TokenDesk` serves every request, so the token a client got
a second ago is handed out again from memory (while the vault entry behind it is unchanged)
and a refresh goes through the vault's per-account lock like anyone else's. Every answer is
on disk in the audit log before the client gets it.
"""

from __future__ import annotations

import logging
import socket
import time

from exoimap.agent import wire
from exoimap.audit import Auditor, use_auditor
from exoimap.auth.handout import TokenDesk, asking_programs, render
from exoimap.config import Paths
from exoimap.errors import ExoimapError, exit_code_for
from exoimap.logs import redact
from exoimap.untrusted import shown

__all__ = ["TokenService"]

log = logging.getLogger("exoimap.agent.server")  # the logger that goes to logs/agent.log


class TokenService:
    """Answers token requests for one agent."""

    def __init__(self, paths: Paths) -> None:
        self._desk = TokenDesk(paths)  # no prompt: the agent has no terminal to ask on

    def serve(self, conn: socket.socket, payload: bytes, auditor: Auditor) -> None:
        """Answer one request on ``conn`` and close it (runs in its own thread)."""
        with conn:
            try:
                request = wire.parse_token_request(payload)
            except wire.WireError as exc:
                _send(conn, wire.frame(wire.DECLINED, str(exc).encode()))
                return
            if not _send(conn, wire.frame(wire.ACCEPTED)):
                return
            started = time.monotonic()
            try:
                code, out, err = self.answer(*request, wire.peer_pid(conn), auditor)
            except Exception:  # a bug: the client is told, the agent goes on serving
                log.exception("a token request failed inside the agent")
                code, out = 1, b""
                err = b"exoimap: error: the command failed in the agent (logs/agent.log)\n"
            frames = [wire.frame(wire.STDOUT, out)] if out else []
            frames += [wire.frame(wire.STDERR, err)] if err else []
            frames.append(wire.frame(wire.EXIT, str(code).encode()))
            _send(conn, b"".join(frames))
            took = (time.monotonic() - started) * 1000
            log.info("answered a token request: exit code %d in %.1f ms", code, took)

    def answer(
        self, name: str, fmt: str, as_json: bool, peer: int | None, auditor: Auditor
    ) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr) of ``token print NAME`` for the client process
        ``peer``; audited with the agent's auditor and flushed before it returns."""
        asked_by = asking_programs(peer) if peer is not None else ()
        try:
            with use_auditor(auditor):
                info, username = self._desk.hand_out(
                    name, requested_by=asked_by, via="agent", fmt=fmt
                )
        except ExoimapError as exc:
            message = f"exoimap: error: {shown(redact(str(exc)))}\n"
            return exit_code_for(exc), b"", message.encode("utf-8", "replace")
        finally:
            auditor.flush()
        text = render(name, info, username, fmt=fmt, as_json=as_json, now=time.time())
        return 0, text.encode("utf-8"), b""


def _send(conn: socket.socket, data: bytes) -> bool:
    """Send ``data``; False when the client has gone."""
    try:
        conn.sendall(data)
    except OSError:
        return False
    return True
