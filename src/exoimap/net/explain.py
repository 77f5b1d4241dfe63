"""Why an IMAP sign-in failed: the likely causes, in one place.

Exchange Online answers every bad XOAUTH2 attempt with the same ``NO AUTHENTICATE failed.``
and a valid token without mailbox access with ``BAD User is authenticated but not
connected.``; neither says why. The lists below are what the Microsoft documentation and
field reports give as causes, written as things the user can check.
"""

from __future__ import annotations

from exoimap.errors import ImapAuthenticationFailed
from exoimap.net.credentials import CheckedToken

__all__ = [
    "AUTHENTICATE_FAILED_CAUSES",
    "CHECKED_DELEGATED_CAUSES",
    "CHECKED_NOT_CONNECTED_CAUSES",
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

#: What is left once exoimap has checked the token (for Exchange, with the IMAP scope).
CHECKED_DELEGATED_CAUSES: tuple[str, ...] = (
    "the user= name is not the mailbox the token was issued for",
    "IMAP is disabled for the mailbox (Set-CASMailbox -ImapEnabled $true)",
    "the tenant has disabled IMAP or modern authentication for it",
)

CHECKED_NOT_CONNECTED_CAUSES: tuple[str, ...] = (
    "the user= name is not the mailbox the token's user may open",
    "the signed-in user has no FullAccess permission on the mailbox (Add-MailboxPermission)",
    "IMAP is disabled for the mailbox",
    "too many IMAP connections are open to this mailbox",
    "a temporary problem in Exchange Online (retry in a few minutes)",
)

_NOT_CONNECTED = "user is authenticated but not connected"


def is_not_connected(text: str) -> bool:
    """Whether a BAD/NO text is Exchange's ``User is authenticated but not connected.``"""
    return _NOT_CONNECTED in text.lower()


def explain_auth_failure(
    *,
    host: str,
    user: str,
    mechanism: str,
    server_text: str,
    exchange: bool,
    checked: CheckedToken | None = None,
) -> ImapAuthenticationFailed:
    """The error to raise for a refused sign-in, listing the likely causes. ``checked``: what
    the sign-in layer verified about the token, whose causes are then left out."""
    text = server_text.strip() or "no reason given"
    oauth = mechanism.upper() in ("XOAUTH2", "OAUTHBEARER")
    if exchange and oauth and checked is not None:
        if checked.app_only:
            return _app_only_refused(host, user, mechanism, text, checked)
        if is_not_connected(server_text):
            return ImapAuthenticationFailed(
                f"{host} accepted the {mechanism} sign-in for {user} but could not open the "
                f"mailbox ({text!r}).",
                causes=CHECKED_NOT_CONNECTED_CAUSES,
            )
        return ImapAuthenticationFailed(
            f"{host} refused the {mechanism} sign-in for {user} ({text!r}); the token is for "
            "Exchange Online and carries IMAP.AccessAsUser.All.",
            causes=CHECKED_DELEGATED_CAUSES,
        )
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


def _app_only_refused(
    host: str, user: str, mechanism: str, text: str, token: CheckedToken
) -> ImapAuthenticationFailed:
    """An app-only token for Exchange with IMAP.AccessAsApp, refused: what remains is a step
    in Exchange Online, and the token names the ids the PowerShell commands need."""
    app_id = token.app_id or "<CLIENT_ID>"
    principal = token.object_id or "<ENTERPRISE_APP_OBJECT_ID>"
    grant = f'Add-MailboxPermission -Identity "{user}" -User {principal} -AccessRights FullAccess'
    if is_not_connected(text):
        return ImapAuthenticationFailed(
            f"{host} accepted the app-only {mechanism} sign-in for {user} but could not open "
            f"the mailbox ({text!r}). The token is for Exchange Online and carries "
            "IMAP.AccessAsApp, so the missing step is most likely the app's FullAccess "
            "permission on this mailbox.",
            fix=f"In Exchange Online PowerShell: {grant}. (If it was granted: too many IMAP "
            "connections, or a passing Exchange problem; try again later.)",
        )
    return ImapAuthenticationFailed(
        f"{host} refused the app-only {mechanism} sign-in for {user} ({text!r}), although the "
        "token is for Exchange Online and carries IMAP.AccessAsApp. The missing step is most "
        "likely the app's registration in Exchange Online (New-ServicePrincipal), or it was "
        "registered with the App Registration's object id instead of the Enterprise "
        "Application's.",
        fix=f"In Exchange Online PowerShell: New-ServicePrincipal -AppId {app_id} -ObjectId "
        f"{principal} (the Enterprise Application's object id, as the token carries it), then "
        f"{grant}. If both exist: IMAP may be disabled for the mailbox "
        f"(Set-CASMailbox {user} -ImapEnabled $true).",
    )
