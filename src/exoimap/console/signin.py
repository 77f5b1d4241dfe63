"""Sign-in with Entra ID: OpenID Connect authorization code flow with PKCE, through MSAL.

MSAL makes the state, nonce and PKCE verifier, checks them when the code comes back, and
redeems the code (as a confidential client when the console has a client secret). Every
step uses a fresh MSAL application with its own token cache, so no token outlives the
sign-in: the console keeps only who the person is and their roles.

Only when the settings map groups to roles does the sign-in ask for a Graph permission
(``GroupMember.Read.All``, delegated), and only to learn the groups of a person in too many
for the ID token to name (more than 200, the groups overage).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msal
import requests

from exoimap.auth.transport import token_session
from exoimap.console.membership import CONSENT_HINT, GRAPH_SCOPE, member_groups
from exoimap.console.policy import Principal
from exoimap.console.settings import ConsoleSettings
from exoimap.errors import AuthError
from exoimap.secrets import Secret
from exoimap.untrusted import shown

__all__ = ["SignIn"]

#: The errors of a sign-in whose permissions nobody consented to (AADSTS65001).
_NO_CONSENT = frozenset({"consent_required", "invalid_grant"})


_log = logging.getLogger(__name__)
#: Seconds one request to the identity platform or Graph may take.
_HTTP_TIMEOUT = 30.0


def _who(claims: Mapping[str, Any]) -> str:
    return shown(str(claims.get("preferred_username") or claims.get("oid") or "someone"))


class SignIn:
    """Starts and finishes sign-ins for one console (blocking: call from a thread)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings

    def _client(self) -> msal.ClientApplication:
        http = token_session(self.settings.ca_file, _HTTP_TIMEOUT)
        common: dict[str, Any] = {
            "authority": self.settings.authority,
            "http_client": http,
            "instance_discovery": False,
            "token_cache": msal.TokenCache(),
        }
        secret = self.settings.client_secret
        if secret is not None:
            return msal.ConfidentialClientApplication(
                self.settings.client_id, client_credential=secret.reveal(), **common
            )
        return msal.PublicClientApplication(self.settings.client_id, **common)

    def begin(self, *, again_as: str | None = None) -> dict[str, Any]:
        """A new flow: ``auth_uri`` to send the browser to, and what :meth:`finish` needs.
        ``again_as``: a sign-in again by this person (``prompt=login``: the identity
        platform asks for the password even where it has a sign-in session)."""
        extra: dict[str, Any] = {"prompt": "login", "login_hint": again_as} if again_as else {}
        try:
            flow: dict[str, Any] = self._client().initiate_auth_code_flow(
                self._scopes(),
                redirect_uri=self.settings.redirect_uri,
                response_mode="form_post",
                **extra,
            )
        except (ValueError, requests.RequestException) as exc:
            raise AuthError(
                f"the identity platform is not reachable: {type(exc).__name__}"
            ) from None
        return flow

    def _scopes(self) -> list[str]:
        """Least privilege: the Graph permission only when groups can give roles."""
        return [GRAPH_SCOPE] if self.settings.groups else []

    def finish(self, flow: dict[str, Any], reply: Mapping[str, str]) -> Principal:
        """Redeem the code the browser brought back; the person in the ID token."""
        try:
            result = self._client().acquire_token_by_auth_code_flow(flow, dict(reply))
        except ValueError:  # state mismatch, a reply to another sign-in
            raise AuthError("the sign-in reply does not belong to this sign-in") from None
        except requests.RequestException as exc:
            raise AuthError(
                f"the identity platform is not reachable: {type(exc).__name__}"
            ) from None
        claims = result.get("id_token_claims")
        if "error" in result or not isinstance(claims, dict):
            error = shown(
                str(result.get("error_description") or result.get("error") or "no ID token")
            )
            first = error.splitlines()[0] if error else "unknown"
            asked_graph = bool(self._scopes())
            hint = f"; {CONSENT_HINT}" if asked_graph and result.get("error") in _NO_CONSENT else ""
            raise AuthError(f"the sign-in failed: {first}{hint}")
        return Principal(
            oid=str(claims.get("oid", "")),
            upn=str(claims.get("preferred_username", "")),
            name=str(claims.get("name", "")),
            roles=self._roles(claims, Secret(str(result.get("access_token") or ""))),
        )

    def _roles(self, claims: Mapping[str, Any], access_token: Secret[str]) -> frozenset[str]:
        """The app roles of the ID token, and those the settings give its groups. A token
        that could not name all the person's groups (``_claim_names``: the overage of
        more than 200) has them asked of Microsoft Graph with the sign-in's access token."""
        app_roles = claims.get("roles")
        roles = {str(r) for r in app_roles} if isinstance(app_roles, list) else set()
        groups = claims.get("groups")
        held = {str(g).lower() for g in groups} if isinstance(groups, list) else set()
        names = claims.get("_claim_names")
        if isinstance(names, dict) and "groups" in names and self.settings.groups:
            try:
                held |= member_groups(
                    self.settings.graph_url, access_token, ca_file=self.settings.ca_file
                )
            except AuthError as exc:
                if not roles:
                    raise
                # the roles given directly still hold; only those through groups are missing
                _log.warning("%s signs in with their app roles only: %s", _who(claims), exc)
        for group in held:
            roles.update(self.settings.groups.get(group, ()))
        return frozenset(roles)
