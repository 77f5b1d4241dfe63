"""The Exchange Online IMAP half of the sandbox tenant (see ``docs/sandbox.md``).

:class:`ExchangeImapServer` serves implicit TLS on an asyncio loop, with Exchange's exact
texts (:mod:`.texts`) and behaviour switches (:class:`ExchangeSettings`); mailboxes are
in-memory stores (:class:`Mailboxes`); :class:`ExchangeControl` changes them "from another
client" and injects faults from any thread. Most users want
:func:`exoimap.sandbox.tenant.running_tenant` or the pytest plugin instead.
"""

from __future__ import annotations

from exoimap.sandbox.exchange.auth import AuthDecision, Authorizer, Cause
from exoimap.sandbox.exchange.config import (
    AuthOutcome,
    CapabilityProfile,
    ExchangeSettings,
    FailureMapping,
    ThrottlePolicy,
)
from exoimap.sandbox.exchange.mailboxes import BUSINESS_FOLDERS, Mailbox, Mailboxes
from exoimap.sandbox.exchange.server import ExchangeControl, ExchangeImapServer

__all__ = [
    "BUSINESS_FOLDERS",
    "AuthDecision",
    "AuthOutcome",
    "Authorizer",
    "CapabilityProfile",
    "Cause",
    "ExchangeControl",
    "ExchangeImapServer",
    "ExchangeSettings",
    "FailureMapping",
    "Mailbox",
    "Mailboxes",
    "ThrottlePolicy",
]
