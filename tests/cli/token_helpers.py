"""Helpers for the ``token print`` tests: is a token accepted, and digests to compare tokens
by (a failing assertion then never shows a token)."""

from __future__ import annotations

import hashlib
import imaplib

from exoimap.sandbox.tenant import SandboxTenant


def digest(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


def imap_accepts(tenant: SandboxTenant, upn: str, token: str) -> bool:
    """Whether the sandbox's Exchange IMAP signs ``upn`` in with ``token`` (XOAUTH2)."""
    client = imaplib.IMAP4_SSL(
        tenant.imap_host, tenant.imap_port, ssl_context=tenant.ssl_context(), timeout=30
    )
    try:
        client.authenticate("XOAUTH2", lambda _: tenant.xoauth2(upn, token))
    except imaplib.IMAP4.error:
        return False
    finally:
        client.shutdown()
    return True
