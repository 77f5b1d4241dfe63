"""The sandbox's SMTP submission endpoint, as Exchange Online's ``smtp.office365.com:587``.

STARTTLS first (nothing else but EHLO, NOOP and QUIT before it), then ``AUTH XOAUTH2`` with
a token checked as the IMAP half checks it (:class:`~.auth.Authorizer`), but for SMTP's
permission: ``SMTP.Send`` delegated, ``SMTP.SendAsApp`` app-only; the sender
must be the signed-in mailbox and every recipient a sandbox mailbox. A submitted message is
put into each recipient's INBOX and a copy into the sender's ``Sent Items`` (Exchange keeps
the copy itself, so clients must not APPEND one: spec 1.11). Built on aiosmtpd, on the
same loop as the IMAP half, so IMAP sessions in IDLE see the new mail at once.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import logging
import ssl
from base64 import b64decode
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from exoimap.errors import NetworkError
from exoimap.sandbox.exchange.auth import SMTP_PERMISSIONS, Authorizer, IdentityView
from exoimap.sandbox.exchange.mailboxes import Mailboxes

__all__ = ["ExchangeSmtpServer", "SENT_FOLDER"]

log = logging.getLogger("exoimap.sandbox.exchange.smtp")

SENT_FOLDER = "Sent Items"
# Exchange Online's answers (spec 2.2 [C] for 235/535; the others as clients report them [R]).
AUTH_FAILED = "535 5.7.3 Authentication unsuccessful [sandbox]"
SEND_AS_DENIED = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
NO_SUCH_RECIPIENT = (
    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
)
QUEUED = "250 2.6.0 Queued mail for delivery"
#: Longest command line in bytes (as the IMAP half's ``max_command_size``).
MAX_COMMAND_SIZE = 10240


class _Submission:
    """aiosmtpd's handler: the XOAUTH2 check, the sender and recipient checks, delivery."""

    def __init__(
        self, authorizer: Authorizer, identity: IdentityView, mailboxes: Mailboxes
    ) -> None:
        self._authorizer = authorizer
        self._identity = identity
        self._mailboxes = mailboxes

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd's naming)
        if len(args) == 2:
            try:
                raw = b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message=AUTH_FAILED)
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):  # the client gave up ("*") or sent no base64
                return AuthResult(success=False, handled=True)
            raw = answer
        # A token without SMTP.Send (SMTP.SendAsApp app-only) is refused like a bad one.
        decision = self._authorizer.xoauth2(raw, SMTP_PERMISSIONS)
        if not (decision.accepted and decision.connected and decision.mailbox):
            log.info("SMTP sign-in refused: %s", decision.cause.value)
            return AuthResult(success=False, handled=False, message=AUTH_FAILED)
        return AuthResult(success=True, auth_data=decision.mailbox)

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's naming)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.strip().lower() != str(session.auth_data).lower():
            return SEND_AS_DENIED
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's naming)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        owner = self._identity.directory.find_user(address.strip())
        if owner is None:
            return NO_SUCH_RECIPIENT
        envelope.rcpt_tos.append(owner.upn.lower())
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's naming)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        for recipient in dict.fromkeys(envelope.rcpt_tos):
            self._mailboxes.get(recipient).store.add_message("INBOX", content)
        sender = self._mailboxes.get(str(session.auth_data))
        sender.store.add_message(SENT_FOLDER, content, flags=("\\Seen",))
        return QUEUED


class _LongLines(SMTP):
    """aiosmtpd reads command lines of at most 512 bytes; an XOAUTH2 line with a real
    Exchange token is 3.5 to 5 KB (spec 2.1), so allow what Exchange's IMAP allows."""

    line_length_limit = MAX_COMMAND_SIZE
    command_size_limit = MAX_COMMAND_SIZE

    def __init__(self, handler: object, **options: Any) -> None:
        super().__init__(handler, **options)
        # aiosmtpd's per-command limits are one dict shared by its class; keep ours apart.
        self.command_size_limits = collections.defaultdict(lambda: MAX_COMMAND_SIZE)


class ExchangeSmtpServer:
    """Listens for SMTP submission next to the sandbox IMAP server (port 0: any free port)."""

    def __init__(
        self,
        authorizer: Authorizer,
        identity: IdentityView,
        mailboxes: Mailboxes,
        ssl_context: ssl.SSLContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_size: int = 35 << 20,
    ) -> None:
        self.host = host
        self.port = port
        self._handler = _Submission(authorizer, identity, mailboxes)
        self._ssl_context = ssl_context
        self._max_size = max_size
        self._server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        return _LongLines(
            self._handler,
            hostname="smtp.office365.com",
            ident="Microsoft ESMTP MAIL Service (exoimap sandbox)",
            tls_context=self._ssl_context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            # Basic authentication is off in Exchange Online: only XOAUTH2 is offered.
            auth_exclude_mechanism=["PLAIN", "LOGIN"],
            data_size_limit=self._max_size,
            timeout=600,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._protocol, self.host, self.port, reuse_address=True
            )
        except OSError as exc:
            raise NetworkError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("sandbox Exchange SMTP listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
