"""The exact next steps for a newly added account, filled in with its values.

``exoimap account add`` prints these; docs/setup-microsoft-365.md explains them.
"""

from __future__ import annotations

from exoimap.auth.policy import APP_ONLY_FLOWS
from exoimap.clouds import resolve_cloud
from exoimap.config import AccountConfig

__all__ = ["next_steps"]

_PS_CONNECT = "Connect-ExchangeOnline -Organization {tenant}"
# Sovereign clouds need -ExchangeEnvironmentName.
_PS_ENVIRONMENT = {
    "gcc-high": " -ExchangeEnvironmentName O365USGovGCCHigh",
    "dod": " -ExchangeEnvironmentName O365USGovDoD",
    "china": " -ExchangeEnvironmentName O365China",
}


def next_steps(account: AccountConfig) -> str:
    """What the user still has to do, as text with the account's own values."""
    name = account.name
    lines: list[str] = []
    if account.flow == "token-command":
        lines += [
            "This account gets its tokens from your command; exoimap contacts no Microsoft",
            "endpoint. Check that it prints a token:",
            f"  exoimap token show {name}",
        ]
        return "\n".join(lines)
    if account.mechanism in ("plain", "login"):
        return (
            "Store the IMAP password (read from stdin or a prompt):\n"
            f"  exoimap account set-secret {name}"
        )
    cloud = resolve_cloud(
        account.cloud,
        authority=account.authority,
        imap_host=account.imap_host,
        imap_port=account.imap_port,
    )
    client = account.client_id or "<APPLICATION_CLIENT_ID>"
    tenant = account.tenant or "<TENANT_ID>"
    if account.flow in APP_ONLY_FLOWS:
        lines += [
            "1. In Entra ID, give the app the APPLICATION permission IMAP.AccessAsApp of",
            "   'Office 365 Exchange Online' and grant admin consent, or open:",
            f"   {cloud.admin_consent_url(account.tenant, client)}",
            "2. Find the Enterprise Application's object id (NOT the App Registration's):",
            f"   az ad sp show --id {client} --query id -o tsv",
            "3. Register the app in Exchange Online and give it this mailbox (PowerShell):",
            "   Install-Module -Name ExchangeOnlineManagement   # once",
            "   " + _PS_CONNECT.format(tenant=tenant) + _PS_ENVIRONMENT.get(account.cloud, ""),
            f"   New-ServicePrincipal -AppId {client} -ObjectId <ENTERPRISE_APP_OBJECT_ID> "
            f'-DisplayName "exoimap {name}"',
            f'   Add-MailboxPermission -Identity "{account.email}" '
            "-User <ENTERPRISE_APP_OBJECT_ID> -AccessRights FullAccess",
        ]
        if account.flow == "client-secret":
            lines += [
                "4. Store the client secret's Value (read from stdin or a prompt):",
                f"   exoimap account set-secret {name}",
                f"5. Check it: exoimap login {name}",
            ]
        else:
            lines += [
                "4. Upload the certificate's public part to the app registration; if",
                f"   {account.certificate} is encrypted, store its passphrase:",
                f"   exoimap account set-secret {name}",
                f"5. Check it: exoimap login {name}",
            ]
    else:
        lines += [
            "1. In Entra ID, give the app the DELEGATED permission IMAP.AccessAsUser.All of",
            "   'Office 365 Exchange Online' (or Microsoft Graph's IMAP.AccessAsUser.All) and",
            "   turn on 'Allow public client flows' (Authentication page).",
        ]
        if account.flow == "browser":
            lines.append(
                "   Add the platform 'Mobile and desktop applications' with redirect URI "
                "http://localhost (exoimap listens on http://localhost:<any port>)."
            )
        lines += [
            "2. If your tenant requires admin consent, an administrator opens:",
            f"   {cloud.admin_consent_url(account.tenant, client)}",
            f"3. Sign in: exoimap login {name}",
        ]
    return "\n".join(lines)
