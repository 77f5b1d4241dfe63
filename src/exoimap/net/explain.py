"""Why an IMAP sign-in failed: the likely causes, in one place.

Exchange Online answers every bad XOAUTH2 attempt with the same ``NO AUTHENTICATE failed.``
and a valid token without mailbox access with ``BAD User is authenticated but not
connected.``; neither says why. The lists below are what the Microsoft documentation and
field reports give as causes, written as things the user can check.
"""

from __future__ import annotations

from exoimap.errors import ImapAuthenticationFailed

__all__ = [
    "AUTHENTICATE_FAILED_CAUSES",
    "NOT_CONNECTED_CAUSES",
    "explain_auth_failure",
    "is_not_connected",
]

AUTHENTICATE_FAILED_CAUSES: tuple[str, ...] = (
    "the access token has expired or was issued for another resource "
    "(the audience must be https://outlook.office.com or https://outlook.office365.com)",
    "the token lacks the IMAP permission (IMAP.AccessAsUser.All delegated, "
    "or IMAP.AccessAsApp for app-only)",
    "for app-only access: the application's service principal was not registered in "
    "Exchange (New-ServicePrincipal)",
    "for app-only access: the service principal was registered with the wrong object id "
    "(use the enterprise application's object id, not the app registration's)",
    "IMAP is disabled for the mailbox (Set-CASMailbox -ImapEnabled $true)",
    "the user= name is not the mailbox the token was issued for",
)

NOT_CONNECTED_CAUSES: tuple[str, ...] = (
    "the user= name is not the mailbox the token's user or application may open",
    "the signed-in user or service principal has no FullAccess permission on the mailbox "
    "(Add-MailboxPermission)",
    "for app-only access: the service principal was registered with the wrong object id",
    "IMAP is disabled for the mailbox",
    "too many IMAP connections are open to this mailbox",
    "a temporary problem in Exchange Online (retry in a few minutes)",
)

_NOT_CONNECTED = "user is authenticated but not connected"


def is_not_connected(text: str) -> bool:
    """Whether a BAD/NO text is Exchange's ``User is authenticated but not connected.``"""
    return _NOT_CONNECTED in text.lower()


def explain_auth_failure(
    *, host: str, user: str, mechanism: str, server_text: str, exchange: bool
) -> ImapAuthenticationFailed:
    """The error to raise for a refused sign-in, listing the likely causes."""
    text = server_text.strip() or "no reason given"
    if is_not_connected(server_text):
        return ImapAuthenticationFailed(
            f"{host} accepted the {mechanism} sign-in for {user} but could not open the "
            f"mailbox ({text!r}).",
            causes=NOT_CONNECTED_CAUSES,
        )
    if exchange and mechanism.upper() in ("XOAUTH2", "OAUTHBEARER"):
        return ImapAuthenticationFailed(
            f"{host} refused the {mechanism} sign-in for {user} ({text!r}).",
            causes=AUTHENTICATE_FAILED_CAUSES,
        )
    if mechanism.upper() in ("XOAUTH2", "OAUTHBEARER"):
        return ImapAuthenticationFailed(
            f"{host} refused the {mechanism} sign-in for {user} ({text!r}).",
            causes=(
                "the access token has expired or was issued for another resource or scope",
                "the user= name does not match the token's user",
            ),
        )
    return ImapAuthenticationFailed(
        f"{host} refused the {mechanism} sign-in for {user} ({text!r}).",
        causes=("the user name or password is wrong", "the account is disabled on the server"),
    )
