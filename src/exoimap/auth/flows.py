"""The MSAL adapter: every Microsoft sign-in goes through the official ``msal`` library.

Flows: device code (default; works over SSH and in containers), browser sign-in with PKCE
on a loopback redirect, app-only with a client secret, app-only with a certificate (PEM or
PFX). This module builds the MSAL application for an account, runs one flow or one silent
refresh on a token cache given to it, retries transient failures with backoff, and maps
every failure to :mod:`exoimap.errors`. It never stores anything: the caller
(:class:`~exoimap.auth.provider.TokenProvider`) owns the vault and the cross-process lock.

Two details of this environment matter. ``REQUESTS_CA_BUNDLE`` overrides ``verify=`` in
``requests``, so with a custom CA file the HTTP session (:mod:`exoimap.auth.transport`, which
also survives servers closing idle connections) is built with ``trust_env = False``. MSAL
caches 429/5xx answers (and 400s for a minute) in its ``http_cache``; we own that dict and
empty it before each retry, so a retry really asks the server again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msal
import requests

from exoimap.auth.aadsts import ErrorContext, error_from_response
from exoimap.auth.loopback import REGISTERED_REDIRECT_URI, LoopbackListener
from exoimap.auth.policy import APP_ONLY_FLOWS, DELEGATED_FLOWS, TokenRetryPolicy
from exoimap.auth.transport import token_session
from exoimap.clouds import Cloud
from exoimap.config import AccountConfig
from exoimap.errors import (
    AuthError,
    ConfigError,
    InteractionRequired,
    InvalidClientCredentials,
    TenantOrAppNotFound,
    TransientAuthError,
)
from exoimap.secrets import Secret

T = TypeVar("T")

__all__ = [
    "APP_ONLY_FLOWS",
    "DELEGATED_FLOWS",
    "MsalAdapter",
    "certificate_credential",
]

logger = logging.getLogger("exoimap.auth")


def certificate_credential(path: Path, passphrase: Secret[str] | None) -> dict[str, str]:
    """MSAL's ``client_credential`` for a PEM (key + certificate) or PFX file.

    The file is read and checked here so that a wrong passphrase or a file without a key
    gives a clear error before anything is sent.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    where = {"key": "certificate"}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the certificate file {path}: {exc.strerror}", **where
        ) from None
    password = passphrase.reveal().encode("utf-8") if passphrase else None
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
            certs = x509.load_pem_x509_certificates(data)
            cert = certs[0]
        else:
            key_or_none, cert_or_none, _ = pkcs12.load_key_and_certificates(data, password)
            if key_or_none is None or cert_or_none is None:
                raise ConfigError(f"{path} must hold both a private key and a certificate", **where)
            key, cert = key_or_none, cert_or_none
    except TypeError:
        raise InvalidClientCredentials(
            f"the private key in {path} is encrypted",
            fix="Store its passphrase with `exoimap account set-secret NAME`.",
        ) from None
    except ValueError as exc:
        text = str(exc).lower()
        if ("password" in text or "decrypt" in text or "mac" in text) and password is None:
            raise InvalidClientCredentials(
                f"{path} is encrypted",
                fix="Store its passphrase with `exoimap account set-secret NAME`.",
            ) from None
        if "password" in text or "decrypt" in text or "mac" in text:
            raise InvalidClientCredentials(
                f"the passphrase stored for {path} does not open it",
                fix="Store the right one with `exoimap account set-secret NAME`.",
            ) from None
        raise ConfigError(
            f"{path} is not a PEM file with a private key and certificate, nor a PFX file", **where
        ) from None
    if cert.not_valid_after_utc.timestamp() < time.time():
        raise InvalidClientCredentials(
            f"the certificate in {path} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            fix="Create a new certificate, upload it to the app registration, and point "
            "`certificate` at it.",
        )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    pem_cert = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    # Without "thumbprint", MSAL signs with PS256 and sends the SHA-256 thumbprint.
    return {"private_key": pem_key, "public_certificate": pem_cert}


class MsalAdapter:
    """Builds MSAL applications for one account and runs its flows."""

    def __init__(
        self,
        account: AccountConfig,
        cloud: Cloud,
        *,
        credential: Callable[[], Secret[str] | None] = lambda: None,
        retry: TokenRetryPolicy | None = None,
        http_timeout: float = 30.0,
        say: Callable[[str], None] = print,
    ) -> None:
        if account.flow not in DELEGATED_FLOWS | APP_ONLY_FLOWS:
            raise ConfigError(f"flow {account.flow!r} does not use MSAL", key="flow")
        if not account.client_id:
            raise ConfigError(
                "client_id is required: register an app in Entra ID "
                "(see docs/setup-microsoft-365.md) and set its Application (client) ID",
                key=f"accounts.{account.name}.client_id",
            )
        self.account = account
        self.cloud = cloud
        self.app_only = account.flow in APP_ONLY_FLOWS
        self.scopes = list(cloud.sign_in_scopes(app_only=self.app_only, smtp=account.smtp_send))
        self._credential = credential
        self._retry = retry or TokenRetryPolicy()
        self._session = token_session(account.ca_file, http_timeout)
        self._http_cache: dict[Any, Any] = {}
        self._say = say
        self.context = ErrorContext(
            account=account.name, client_id=account.client_id, tenant=account.tenant, cloud=cloud
        )

    # -- building --

    def _client_credential(self) -> str | dict[str, str]:
        secret = self._credential()
        if self.account.flow == "client-secret":
            if not secret:
                raise InvalidClientCredentials(
                    f"account {self.account.name!r} has no client secret stored",
                    fix=f"Store it with `exoimap account set-secret {self.account.name}`.",
                )
            return secret.reveal()
        assert self.account.certificate is not None  # config.py requires it for this flow
        return certificate_credential(self.account.certificate, secret)

    def build(self, cache: msal.SerializableTokenCache) -> Any:
        """The MSAL application for this account, bound to ``cache``."""
        kwargs: dict[str, Any] = {
            "authority": self.cloud.authority(self.account.tenant),
            "token_cache": cache,
            "http_client": self._session,
            "http_cache": self._http_cache,
        }
        if self.cloud.name == "custom":
            kwargs["instance_discovery"] = False
        return self._call(lambda: self._construct(kwargs))

    def _construct(self, kwargs: dict[str, Any]) -> Any:
        if self.app_only:
            return msal.ConfidentialClientApplication(
                self.account.client_id, client_credential=self._client_credential(), **kwargs
            )
        return msal.PublicClientApplication(self.account.client_id, **kwargs)

    # -- calling, with retries and error mapping --

    def _call(self, op: Callable[[], T]) -> T:
        """Run one MSAL operation; retry transient failures with backoff."""
        delays = self._retry.delays()
        for attempt in range(len(delays) + 1):
            try:
                return self._once(op)
            except TransientAuthError as exc:
                if attempt == len(delays):
                    raise
                logger.warning("%s Retrying in %.1f s.", exc, delays[attempt])
                self._retry.sleep(delays[attempt])
                self._http_cache.clear()  # MSAL would otherwise replay the cached failure
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, op: Callable[[], T]) -> T:
        name = self.account.name
        try:
            return op()
        except requests.exceptions.SSLError as exc:
            raise AuthError(
                f"account {name!r}: TLS to the identity platform failed: {type(exc).__name__}",
                fix="Check the account's `ca_file` and the system clock.",
            ) from None
        except requests.exceptions.RequestException as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            what = f"HTTP {status}" if status else type(exc).__name__
            raise TransientAuthError(
                f"account {name!r}: cannot reach the identity platform ({what})",
                fix="Check the network and try again.",
            ) from None
        except msal.exceptions.MsalServiceError as exc:
            status = self._session.last_status
            raise TransientAuthError(
                f"account {name!r}: the identity platform failed (HTTP {status or '?'})",
                fix="Try again in a few minutes.",
            ) from exc
        except ValueError as exc:
            text = str(exc)
            if "authority configuration" in text or "tenant" in text.lower():
                authority = self.cloud.authority(self.account.tenant)
                # the tenant asked for is the authority's last part (a custom authority
                # names its own, whatever `tenant` says)
                tenant = authority.rstrip("/").rsplit("/", 1)[-1]
                raise TenantOrAppNotFound(
                    f"account {name!r}: the identity platform at {authority} does not know "
                    f"the tenant {tenant!r}",
                    fix="Check the account's `tenant` and `cloud` (and `authority` for custom).",
                ) from None
            if self._session.last_status is not None and (
                self._session.last_status == 429 or self._session.last_status >= 500
            ):
                raise TransientAuthError(
                    f"account {name!r}: the identity platform failed "
                    f"(HTTP {self._session.last_status})",
                    fix="Try again in a few minutes.",
                ) from None
            raise AuthError(f"account {name!r}: sign-in failed: {text}") from None

    def check(self, result: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """Raise the mapped error for an MSAL error result; return a success result."""
        if result is None:
            raise AuthError(f"account {self.account.name!r}: no token was returned")
        if "error" in result:
            raise error_from_response(result, self.context, status=self._session.last_status)
        if "access_token" not in result:
            raise AuthError(f"account {self.account.name!r}: the answer carried no access token")
        return result

    def run(self, op: Callable[[], Mapping[str, Any] | None]) -> Mapping[str, Any]:
        """Run an MSAL call that returns a result dict; error dicts that are transient are
        retried like exceptions."""

        def once() -> Mapping[str, Any]:
            return self.check(op())

        return self._call(once)

    # -- flows --

    def device_login(self, app: Any) -> Mapping[str, Any]:
        flow = self._call(lambda: app.initiate_device_flow(scopes=self.scopes))
        if "user_code" not in flow:
            raise error_from_response(flow, self.context, status=self._session.last_status)
        self._say(
            str(
                flow.get("message")
                or f"Open {flow.get('verification_uri')} and enter the code {flow['user_code']}."
            )
        )
        # Polling is one long call; a transient failure in it means starting over.
        return self.check(self._once(lambda: app.acquire_token_by_device_flow(flow)))

    def browser_login(
        self,
        app: Any,
        *,
        open_browser: Callable[[str], bool],
        timeout: float,
    ) -> Mapping[str, Any]:
        with LoopbackListener() as listener:
            flow = self._call(
                lambda: app.initiate_auth_code_flow(
                    scopes=self.scopes,
                    redirect_uri=listener.redirect_uri,
                    login_hint=self.account.email,
                    response_mode="form_post",
                )
            )
            url = str(flow["auth_uri"])
            self._say(f"Sign in at this address (it opens in your browser if there is one):\n{url}")
            try:
                opened = open_browser(url)
            except Exception:  # a broken browser launcher must not end the sign-in
                opened = False
            if not opened:
                self._say("No browser could be opened: open the address above yourself.")
            params = listener.wait(timeout)
        if params is None:
            raise InteractionRequired(
                f"account {self.account.name!r}: the browser sign-in did not finish within "
                f"{timeout:g} s (nothing came back to {listener.redirect_uri}). If the browser "
                f"showed AADSTS50011, the app registration lacks the redirect URI "
                f"{REGISTERED_REDIRECT_URI}.",
                fix=f"Add it under Authentication > 'Mobile and desktop applications' if needed, "
                f"then run `exoimap login {self.account.name}` again (--timeout SECONDS to wait "
                "longer).",
            )
        if "error" in params:
            raise error_from_response(params, self.context)
        return self.run(lambda: app.acquire_token_by_auth_code_flow(flow, params))

    def silent(self, app: Any, *, force_refresh: bool) -> Mapping[str, Any] | None:
        """Refresh (or take from the cache) the delegated token; None when no user is cached."""
        accounts = self._call(app.get_accounts)
        if not accounts:
            return None
        wanted = (self.account.username or self.account.email).lower()
        chosen = next(
            (a for a in accounts if str(a.get("username", "")).lower() == wanted), accounts[0]
        )

        def once() -> Mapping[str, Any] | None:
            result = app.acquire_token_silent_with_error(
                self.scopes, chosen, force_refresh=force_refresh
            )
            return None if result is None else self.check(result)

        return self._call(once)

    def client_token(self, app: Any) -> Mapping[str, Any]:
        """App-only token (MSAL returns a cached one while it has more than 5 minutes)."""
        return self.run(lambda: app.acquire_token_for_client(scopes=self.scopes))
