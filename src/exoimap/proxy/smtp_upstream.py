"""The proxy's SMTP side towards Exchange: one submission per message, with XOAUTH2.

Each message is handed to the account's SMTP submission server (``smtp.office365.com:587``
worldwide, the cloud's or the configured host otherwise) over verified STARTTLS, signed in
with an access token from the vault, then the connection is closed: submissions are rare
next to IMAP traffic, and a fresh connection never meets an expired session. When Exchange
refuses the token (``535``) the message is sent once more with a newly issued one.
:mod:`smtplib` runs in a worker thread; its answers are passed back as SMTP replies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import smtplib
import ssl
from dataclasses import dataclass

from exoimap.auth.claims import TokenClaims, read_claims
from exoimap.auth.policy import APP_ONLY_FLOWS
from exoimap.clouds import resolve_cloud
from exoimap.config import AccountConfig
from exoimap.errors import ConfigError, ExoimapError
from exoimap.net.tls import TLSPolicy
from exoimap.proxy.upstream import Upstreams
from exoimap.secrets import Secret
from exoimap.untrusted import shown

__all__ = ["Relay", "SmtpReply", "missing_smtp_permission", "smtp_endpoint"]

log = logging.getLogger(__name__)

_TIMEOUT = 120.0
_AUTH_REFUSED = 535
SMTP_DELEGATED_SCOPE = "SMTP.Send"
SMTP_APP_ROLE = "SMTP.SendAsApp"


@dataclass(frozen=True)
class SmtpReply:
    """What the client is answered after DATA: ``code`` and one line of text."""

    code: int
    text: str

    def line(self) -> str:
        """One reply line: no CR or LF can reach the client from any text in it."""
        return f"{self.code} {' '.join(self.text.split())}"


def smtp_endpoint(account: AccountConfig) -> tuple[str, int]:
    """The SMTP submission host and port for ``account`` (configured, else its cloud's)."""
    cloud = resolve_cloud(
        account.cloud,
        authority=account.authority,
        imap_host=account.imap_host,
        smtp_host=account.smtp_host,
        smtp_port=account.smtp_port,
    )
    return cloud.smtp_host, cloud.smtp_port


def missing_smtp_permission(account: AccountConfig, claims: TokenClaims | None) -> str | None:
    """What to do when the account's token (its claims, when readable) lacks SMTP.Send
    (SMTP.SendAsApp app-only), which Exchange's SMTP AUTH requires; None when it has it."""
    if claims is None:
        return None
    if account.flow in APP_ONLY_FLOWS:
        if SMTP_APP_ROLE in claims.roles:
            return None
        return (
            f"the app's token for {account.name} lacks {SMTP_APP_ROLE}; grant that "
            "application permission of Office 365 Exchange Online to the app (with admin "
            "consent), then restart exoimap proxy"
        )
    if SMTP_DELEGATED_SCOPE in claims.scopes:
        return None
    return (
        f"the token of {account.name} lacks {SMTP_DELEGATED_SCOPE}; run "
        f"`exoimap login {account.name} --smtp`, then restart exoimap proxy"
    )


def _server_text(error: bytes | str) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
    return shown(" ".join(text.split()))


class _Refused(Exception):
    """Exchange answered with an error reply (kept as it said it)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text


def _submit(
    endpoint: tuple[str, int],
    context: ssl.SSLContext,
    sasl: Secret[str],
    envelope: tuple[str, list[str]],
    content: bytes,
) -> SmtpReply:
    """Connect, STARTTLS, AUTH XOAUTH2, send, QUIT (blocking: run in a thread)."""
    host, port = endpoint
    sender, recipients = envelope
    with smtplib.SMTP(host, port, timeout=_TIMEOUT) as smtp:
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise _Refused(454, f"4.7.0 {host} does not offer STARTTLS; not sending in the clear")
        smtp.starttls(context=context)
        smtp.ehlo()
        try:
            smtp.auth("XOAUTH2", lambda _=None: sasl.reveal(), initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as exc:
            raise _Refused(exc.smtp_code, _server_text(exc.smtp_error)) from None
        try:
            refused = smtp.sendmail(sender, recipients, content)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _Refused(code, _server_text(text)) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _Refused(exc.smtp_code, _server_text(exc.smtp_error)) from None
    if refused:
        # Some recipients took it: the client must not send again, so this is a success
        # that names the others.
        names = ", ".join(shown(r) for r in refused)
        return SmtpReply(250, f"2.0.0 Sent, but Exchange refused {names}")
    return SmtpReply(250, "2.0.0 Sent through Exchange Online")


@dataclass
class Relay:
    """Sends messages upstream for the accounts of :class:`Upstreams`."""

    upstreams: Upstreams

    async def send(
        self, account: AccountConfig, sender: str, recipients: list[str], content: bytes
    ) -> SmtpReply:
        """Submit one message; the reply is Exchange's, or says why it could not be asked."""
        try:
            endpoint = smtp_endpoint(account)
        except ConfigError as exc:
            return SmtpReply(451, f"4.3.5 {exc}")
        envelope = (sender, recipients)
        reply = await self._attempt(account, endpoint, envelope, content, fresh=False)
        if reply.code == _AUTH_REFUSED:
            reply = await self._attempt(account, endpoint, envelope, content, fresh=True)
        if reply.code == _AUTH_REFUSED:
            reply = await self._explained(account, reply)
        return reply

    async def _explained(self, account: AccountConfig, reply: SmtpReply) -> SmtpReply:
        """Exchange refused even a new token, saying only "Authentication unsuccessful":
        when the token shows it lacks SMTP's permission, say so and how to fix it."""
        try:
            token = await self.upstreams.provider(account).access_token_async(
                self.upstreams.min_validity
            )
        except ExoimapError:
            return reply
        fix = missing_smtp_permission(account, read_claims(token))
        if fix is None:
            return reply  # e.g. SMTP AUTH turned off for the mailbox: Exchange's words
        log.warning("Exchange refused to relay mail of %s: %s", account.name, fix)
        return SmtpReply(_AUTH_REFUSED, f"5.7.3 Authentication unsuccessful: {fix}")

    async def _attempt(
        self,
        account: AccountConfig,
        endpoint: tuple[str, int],
        envelope: tuple[str, list[str]],
        content: bytes,
        *,
        fresh: bool,
    ) -> SmtpReply:
        try:
            sasl = await self._sasl(account, fresh=fresh)
            context = TLSPolicy(ca_file=account.ca_file).context()
            meter = self.upstreams.meter
            meter.upstream_opened("smtp")
            try:
                return await asyncio.to_thread(_submit, endpoint, context, sasl, envelope, content)
            finally:
                meter.upstream_closed("smtp")
        except _Refused as exc:
            log.info("upstream SMTP refused a message of %s: %d", account.name, exc.code)
            return SmtpReply(exc.code, exc.text)
        except ExoimapError as exc:  # no token: a sign-in is needed, the vault is locked...
            return SmtpReply(454, f"4.7.0 {' '.join(str(exc).split())}")
        except (OSError, smtplib.SMTPException) as exc:
            host, port = endpoint
            reason = shown(str(exc) or type(exc).__name__)
            return SmtpReply(451, f"4.4.1 Cannot reach {host}:{port}: {reason}")

    async def _sasl(self, account: AccountConfig, *, fresh: bool) -> Secret[str]:
        provider = self.upstreams.provider(account)
        token = await provider.access_token_async(
            math.inf if fresh else self.upstreams.min_validity
        )
        user = account.username or account.email
        return Secret(f"user={user}\x01auth=Bearer {token.reveal()}\x01\x01")
