"""What the proxy tells clients it can do: Exchange's list, with its own sign-in methods.

Clients sign in to the proxy with an app password (``AUTH=PLAIN`` or ``LOGIN``); the
upstream's ``AUTH=XOAUTH2`` and friends mean nothing to them and would tempt OAuth-aware
clients into a mechanism the proxy does not take. Everything else passes as the server
sent it.
"""

from __future__ import annotations

from exoimap.protocol.types import (
    CapabilityCode,
    CapabilityResponse,
    Response,
    StatusResponse,
)

__all__ = ["BEFORE_LOGIN", "BEFORE_STARTTLS", "for_client", "rewritten"]

#: Before sign-in (LOGIN needs no capability: IMAP4rev1 has it unless LOGINDISABLED).
BEFORE_LOGIN = ("IMAP4", "IMAP4rev1", "AUTH=PLAIN", "SASL-IR", "LITERAL+", "ID")
#: On a STARTTLS port before TLS: no password may be sent yet (RFC 3501 7.2.1).
BEFORE_STARTTLS = ("IMAP4", "IMAP4rev1", "STARTTLS", "LOGINDISABLED", "LITERAL+", "ID")
_DROPPED = ("AUTH=", "LOGINDISABLED", "STARTTLS")


def for_client(upstream: tuple[str, ...] | frozenset[str]) -> tuple[str, ...]:
    """The upstream's capabilities as the client sees them after signing in."""
    kept = [cap for cap in upstream if not cap.upper().startswith(_DROPPED)]
    return tuple(kept)


def rewritten(response: Response) -> Response:
    """``response`` with any capability list in it shown as :func:`for_client` says."""
    if isinstance(response, CapabilityResponse):
        return CapabilityResponse(for_client(response.capabilities))
    if isinstance(response, StatusResponse) and isinstance(response.code, CapabilityCode):
        code = CapabilityCode(for_client(response.code.capabilities))
        return StatusResponse(response.tag, response.status, code, response.text)
    return response
