"""The proxy's SMTP submission listener: the same app passwords as IMAP, relayed upstream.

A client (a scan-to-email printer, a script, a mail client) submits with ``AUTH PLAIN`` or
``AUTH LOGIN`` and an app password, checked by the same :class:`~.gate.Gate` as IMAP
sign-ins (counted, rate-limited and audited per source; the vault is never opened for a
guess). Each accepted message goes to Exchange by :class:`~.smtp_upstream.Relay` with the
account's OAuth2 token, and the client gets Exchange's answer. TLS: STARTTLS (port 587
style, nothing but EHLO, NOOP and QUIT before it) or implicit TLS (465 style); plaintext
only on loopback and only when asked, as for IMAP. Built on aiosmtpd.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import ssl
import warnings
from base64 import b64decode
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from exoimap import audit
from exoimap.errors import ConfigError
from exoimap.proxy.gate import Admitted, Gate
from exoimap.proxy.meter import ProxyMeter
from exoimap.proxy.server import check_plaintext
from exoimap.proxy.smtp_upstream import Relay

__all__ = ["DEFAULT_SMTP_LISTEN", "SubmissionServer", "TlsMode"]

log = logging.getLogger(__name__)
# aiosmtpd logs every command line at INFO; keep message data and envelopes out of our logs.
logging.getLogger("mail.log").setLevel(logging.WARNING)

DEFAULT_SMTP_LISTEN = "127.0.0.1:1587"
TlsMode = Literal["starttls", "implicit", "none"]
#: Exchange Online's default send limit is 35 MB [U]; a larger message is refused at once.
DEFAULT_MAX_SIZE = 35 << 20
_BAD_CREDENTIALS = "535 5.7.8 Authentication credentials invalid"


def _decoded(value: str) -> str | None:
    try:
        return b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


class _Handler:
    """aiosmtpd's handler: app-password sign-in, then each message relayed upstream."""

    def __init__(self, gate: Gate, relay: Relay) -> None:
        self._gate = gate
        self._relay = relay

    async def _check(self, server: SMTP, username: str, password: str) -> AuthResult:
        assert server.session is not None
        peer = server.session.peer
        source = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        decision = await self._gate.check(source, username, password)
        if isinstance(decision, Admitted):
            return AuthResult(success=True, auth_data=decision)
        if decision.code == "UNAVAILABLE":
            return AuthResult(success=False, handled=False, message=f"454 4.7.0 {decision.text}")
        return AuthResult(success=False, handled=False, message=_BAD_CREDENTIALS)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd's naming)
        if len(args) == 2:
            text = _decoded(args[1])
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):  # aborted or not base64: already answered
                return AuthResult(success=False, handled=True)
            text = answer.decode("utf-8", "replace")
        parts = text.split("\x00") if text is not None else []
        if len(parts) != 3:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Malformed PLAIN")
        return await self._check(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd's naming)
        if len(args) == 2:
            username = _decoded(args[1])
        else:
            answer = await server.challenge_auth("Username:")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            username = answer.decode("utf-8", "replace")
        if username is None:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Malformed LOGIN")
        answer = await server.challenge_auth("Password:")
        if not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(server, username, answer.decode("utf-8", "replace"))

    async def handle_DATA(  # noqa: N802 (aiosmtpd's naming)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        admitted: object = session.auth_data  # aiosmtpd types it as None
        assert isinstance(admitted, Admitted)  # auth_required: no MAIL before AUTH
        content = envelope.original_content or b""
        recipients = list(envelope.rcpt_tos)
        reply = await self._relay.send(
            admitted.account, envelope.mail_from or "", recipients, content
        )
        meter = self._gate.upstreams.meter
        meter.relayed("smtp", "to_upstream", len(content))
        meter.message_submitted("success" if 200 <= reply.code < 300 else "failure")
        peer = session.peer
        audit.emit(
            audit.MailSubmitted(
                account=admitted.account.name,
                outcome="success" if 200 <= reply.code < 300 else "failure",
                client=f"client {peer[0] if isinstance(peer, tuple) else peer}",
                username=admitted.password.label,
                recipients=len(recipients),
                size=len(content),
                reply=reply.code,
            )
        )
        return reply.line()


class _Metered(SMTP):
    """aiosmtpd's protocol, its connections counted (once each: STARTTLS makes a second
    ``connection_made`` on the same connection)."""

    def __init__(self, meter: ProxyMeter, handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self._meter = meter
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted:
            self._counted = True
            self._meter.client_opened("smtp")
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._counted = False
            self._meter.client_closed("smtp")
        super().connection_lost(error)


@dataclass
class SubmissionServer:
    """Accepts SMTP submission on ``host:port`` (see the module docstring)."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    mode: TlsMode
    gate: Gate
    relay: Relay
    max_size: int = DEFAULT_MAX_SIZE
    _server: asyncio.Server | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.mode == "none":
            check_plaintext(self.host)
        elif self.tls is None:
            raise ConfigError(f"SMTP submission with {self.mode} needs a certificate")
        self._handler = _Handler(self.gate, self.relay)

    def _protocol(self) -> SMTP:
        starttls = self.mode == "starttls"
        with warnings.catch_warnings():
            # aiosmtpd warns of AUTH without its STARTTLS; here TLS is implicit or the
            # listener is on loopback (checked above).
            warnings.simplefilter("ignore", UserWarning)
            return self._smtp(starttls)

    def _smtp(self, starttls: bool) -> SMTP:
        return _Metered(
            self.gate.upstreams.meter,
            self._handler,
            hostname="exoimap-proxy",
            ident="exoimap proxy SMTP submission",
            tls_context=self.tls if starttls else None,
            require_starttls=starttls,
            auth_required=True,
            # aiosmtpd cannot see implicit TLS, and a plaintext listener is loopback only.
            auth_require_tls=starttls,
            data_size_limit=self.max_size,
            timeout=300,
        )

    async def start(self) -> int:
        """Start listening; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        implicit = self.tls if self.mode == "implicit" else None
        try:
            self._server = await loop.create_server(
                self._protocol, self.host, self.port, ssl=implicit
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
