"""exoimap.auth: an account in, a fresh access token out.

``TokenProvider`` is the entry point for the IMAP layer; ``Vault`` keeps token caches and
secrets encrypted; ``claims`` and ``aadsts`` explain tokens and failures.
"""

from __future__ import annotations

from exoimap.auth.aadsts import (
    IMAP_AUTH_FAILURE_CAUSES_APP_ONLY,
    IMAP_AUTH_FAILURE_CAUSES_DELEGATED,
    IMAP_NOT_CONNECTED_CAUSES,
    ErrorContext,
    error_from_response,
    imap_failure_causes,
)
from exoimap.auth.claims import TokenClaims, check_token, read_claims
from exoimap.auth.policy import TokenRetryPolicy
from exoimap.auth.provider import TokenInfo, TokenProvider
from exoimap.auth.vault import Vault, create_key_file, keyring_usable

__all__ = [
    "IMAP_AUTH_FAILURE_CAUSES_APP_ONLY",
    "IMAP_AUTH_FAILURE_CAUSES_DELEGATED",
    "IMAP_NOT_CONNECTED_CAUSES",
    "ErrorContext",
    "TokenClaims",
    "TokenInfo",
    "TokenProvider",
    "TokenRetryPolicy",
    "Vault",
    "check_token",
    "create_key_file",
    "error_from_response",
    "imap_failure_causes",
    "keyring_usable",
    "read_claims",
]
