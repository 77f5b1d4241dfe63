"""The groups of a person in too many for the ID token (the groups overage), from Microsoft
Graph: ``POST {graph}/v1.0/me/getMemberObjects`` with the delegated access token of the
sign-in, which needs ``GroupMember.Read.All`` (or ``Directory.Read.All``).

The console asks its own configured Graph, never the endpoint the ID token's
``_claim_sources`` names: that may be the retired Azure AD Graph, and the access token must
go nowhere else than where the settings say.
"""

from __future__ import annotations

from pathlib import Path

import requests

from exoimap.auth.transport import token_session
from exoimap.errors import AuthError
from exoimap.secrets import Secret
from exoimap.untrusted import shown

__all__ = ["CONSENT_HINT", "GRAPH_SCOPE", "member_groups"]

#: The delegated permission the console asks for when its settings map groups to roles.
GRAPH_SCOPE = "https://graph.microsoft.com/GroupMember.Read.All"
#: What an admin must do when the console cannot learn someone's groups.
CONSENT_HINT = (
    "an admin must grant the console's app the Microsoft Graph delegated permission "
    "GroupMember.Read.All with admin consent"
)


def member_groups(
    graph_url: str, access_token: Secret[str], *, ca_file: Path | None, timeout: float = 30.0
) -> frozenset[str]:
    """The object ids (lower case) of every group the token's user is in."""
    url = f"{graph_url.rstrip('/')}/v1.0/me/getMemberObjects"
    headers = {"Authorization": f"Bearer {access_token.reveal()}", "Accept": "application/json"}
    with token_session(ca_file, timeout) as http:
        try:
            response = http.post(url, json={"securityEnabledOnly": False}, headers=headers)
        except requests.RequestException as exc:
            raise AuthError(
                f"Microsoft Graph is not reachable to name your groups: {type(exc).__name__}"
            ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        raise AuthError(
            f"Microsoft Graph refused to name your groups ({_said(response, body)}): {CONSENT_HINT}"
        )
    values = body.get("value")
    if not isinstance(values, list):
        raise AuthError("Microsoft Graph answered without a list of groups")
    return frozenset(str(v).lower() for v in values if isinstance(v, str))


def _said(response: requests.Response, body: object) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    said = f"HTTP {response.status_code}" + (f" {code}" if isinstance(code, str) else "")
    return shown(said)
