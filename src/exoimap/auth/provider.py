"""TokenProvider: an account in, a fresh access token out.

This is what the IMAP layer uses. For each account it knows the server (host, port, user,
SASL mechanism) and hands out an access token valid for at least ``min_validity`` seconds,
refreshing proactively. Refreshes are serialised across processes with the vault's lock on
the account; the token cache is re-read inside the lock (another process may have rotated
the refresh token) and written back the moment MSAL changed it, before any check that could
raise. A transient failure never removes anything stored.

The API is synchronous (MSAL is); :meth:`TokenProvider.access_token_async` runs it in a
worker thread for asyncio callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exoimap import audit
from exoimap.auth import refresh_status
from exoimap.auth.account_server import AccountServer
from exoimap.auth.claims import TokenClaims, check_token, read_claims
from exoimap.auth.policy import APP_ONLY_FLOWS, DELEGATED_FLOWS, TokenRetryPolicy
from exoimap.auth.token_command import run_token_command
from exoimap.auth.vault import Vault
from exoimap.config import AccountConfig
from exoimap.errors import (
    AuthError,
    ConfigError,
    ExoimapError,
    TokenExpiredOrRevoked,
    TransientAuthError,
)
from exoimap.secrets import Secret
from exoimap.words import sentences

if TYPE_CHECKING:  # MSAL (and requests) load only when a Microsoft flow runs
    import msal

    from exoimap.auth.flows import MsalAdapter

__all__ = ["REFRESH_TOKEN_INACTIVITY_LIMIT", "TokenInfo", "TokenProvider", "open_system_browser"]

logger = logging.getLogger("exoimap.auth")

#: Microsoft ends a refresh token after 90 days without use.
REFRESH_TOKEN_INACTIVITY_LIMIT = 90 * 86400.0
#: Warn when a refresh token has not been used for this long.
REFRESH_TOKEN_WARN_AFTER = 75 * 86400.0


@dataclass(frozen=True)
class TokenInfo:
    """An access token and what we know about it."""

    token: Secret[str]
    #: Epoch seconds; ``math.inf`` when unknown (an opaque token from a token command).
    expires_at: float
    claims: TokenClaims | None
    #: True when just issued (not taken from a cache).
    fresh: bool
    #: Warnings about the token (broad permissions), already logged when fresh.
    warnings: tuple[str, ...] = ()
    #: Whether the claims passed the Exchange checks (audience, IMAP permission, expiry).
    checked: bool = False


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def open_system_browser(url: str, environ: Mapping[str, str] | None = None) -> bool:
    """Open ``url`` in a graphical browser; False when there is none.

    Without a display (SSH, containers) Python's ``webbrowser`` would start a text browser
    such as lynx in this very terminal and wait for it; then we only print the URL.
    """
    import webbrowser

    env = os.environ if environ is None else environ
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


class TokenProvider(AccountServer):
    """Access tokens (and the server to use them on) for one configured account."""

    def __init__(
        self,
        account: AccountConfig,
        *,
        vault: Vault | None = None,
        say: Callable[[str], None] = _stderr,
        retry: TokenRetryPolicy | None = None,
        open_browser: Callable[[str], bool] = open_system_browser,
        http_timeout: float = 30.0,
        browser_timeout: float = 300.0,
        command_timeout: float = 120.0,
    ) -> None:
        super().__init__(account)
        self._vault = vault
        self._say = say
        self._retry = retry
        self._open_browser = open_browser
        self._http_timeout = http_timeout
        self._browser_timeout = browser_timeout
        self._command_timeout = command_timeout
        self._adapter: MsalAdapter | None = None
        self._last: TokenInfo | None = None
        self._mutex = threading.Lock()

    @property
    def app_only(self) -> bool:
        return self.account.flow in APP_ONLY_FLOWS

    @property
    def uses_password(self) -> bool:
        return self.account.mechanism in ("plain", "login")

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault.from_paths()
        return self._vault

    def password(self) -> Secret[str]:
        """The IMAP password for PLAIN/LOGIN accounts (stored with ``account set-secret``)."""
        secret = self.vault.get_account_secret(self.name)
        if not secret:
            raise ConfigError(
                f"account {self.name!r} uses {self.mechanism.upper()} but no password is stored; "
                f"store it with `exoimap account set-secret {self.name}`"
            )
        return secret

    # -- tokens --

    def access_token(self, min_validity: float = 300.0) -> Secret[str]:
        """An access token valid for at least ``min_validity`` seconds (when the issuer's
        lifetime allows it)."""
        return self.token_info(min_validity).token

    async def access_token_async(self, min_validity: float = 300.0) -> Secret[str]:
        """:meth:`access_token` for asyncio callers (runs in a worker thread)."""
        return await asyncio.to_thread(self.access_token, min_validity)

    def checked_token(self) -> TokenClaims | None:
        """The claims of the last token handed out when they passed the Exchange checks
        (audience, IMAP permission), so an IMAP refusal need not list those causes."""
        last = self._last
        return last.claims if last is not None and last.checked else None

    def expires_at(self) -> float:
        """When the last token handed out expires (epoch seconds; 0 before the first one,
        ``math.inf`` when unknown)."""
        return self._last.expires_at if self._last else 0.0

    def token_info(self, min_validity: float = 300.0) -> TokenInfo:
        """Like :meth:`access_token`, with the expiry and claims."""
        if self.uses_password:
            raise ConfigError(
                f"account {self.name!r} signs in with a password ({self.mechanism}), not a token"
            )
        with self._mutex:
            last = self._last
            if (
                self.account.flow == "token-command"
                and last is not None
                and math.isfinite(last.expires_at)
                and last.expires_at - time.time() >= max(min_validity, 0)
            ):
                return last
            with self._audited(interactive=False) as record:
                if self.account.flow == "token-command":
                    info = self._from_command()
                else:
                    info = self._refreshed(min_validity)
                record(info)
            self._last = info
            return info

    def check_vault(self) -> None:
        """Obtain the vault's key now (creating the vault, asking for its passphrase) and
        check that the vault can be written: raises :class:`~exoimap.errors.NoVaultKey`
        when no key can be had, :class:`~exoimap.errors.DiskFull` on a full disk. Called
        before a sign-in starts, so nobody approves one whose result cannot be stored."""
        if self.account.flow != "token-command":  # its tokens are never stored
            self.vault.check_writable()

    def login(self) -> TokenInfo:
        """Sign in (interactively for device/browser) and store the result, replacing any
        earlier sign-in of this account (after :meth:`check_vault`)."""
        self.check_vault()
        with self._mutex, self._audited(interactive=True) as record:
            if self.account.flow == "token-command":
                info = self._from_command()
            else:
                info = self._interactive()
                self._note_refresh(None)
            record(info)
            self._last = info
            return info

    def _refreshed(self, min_validity: float) -> TokenInfo:
        """:meth:`_from_msal`, remembering whether it worked (see ``refresh_status``)."""
        try:
            info = self._from_msal(min_validity)
        except AuthError as exc:
            if not exc.retryable:
                self._note_refresh(exc)
            raise
        self._note_refresh(None)
        return info

    def _note_refresh(self, failure: AuthError | None) -> None:
        """Record (or, with None, forget) a refresh that failed for good. Best effort: a
        full or read-only disk must not hide the sign-in's own outcome."""
        if self.account.flow not in DELEGATED_FLOWS:
            return
        with contextlib.suppress(OSError):
            if failure is None:
                refresh_status.clear(self.vault.directory, self.name)
            else:
                reason = failure.message.removeprefix(f"account {self.name!r}: ").rstrip(".")
                refresh_status.record_failure(self.vault.directory, self.name, reason)

    def _explained(self, exc: ExoimapError) -> ExoimapError:
        """``exc``, saying that the stored sign-in is still there when a transient failure
        left one (and only then: after `logout` there is none to keep)."""
        if not isinstance(exc, TransientAuthError) or self.account.flow == "token-command":
            return exc
        try:
            stored = self.vault.has_token_cache(self.name)
        except (OSError, ExoimapError):
            return exc
        if not stored:
            return exc
        return TransientAuthError(
            sentences(exc.message, "The stored sign-in was kept"), code=exc.code, fix=exc.fix
        )

    @contextlib.contextmanager
    def _audited(self, *, interactive: bool) -> Iterator[Callable[[TokenInfo], None]]:
        """Record every token obtained from the issuer (never a cache hit) and every failure
        in the audit log: flow, client id, scope, tenant and AADSTS code; never the token."""
        account = self.account
        scopes = (
            ()
            if account.flow == "token-command"
            else self.cloud.sign_in_scopes(app_only=self.app_only, smtp=account.smtp_send)
        )
        common: dict[str, Any] = {
            "account": self.name,
            "flow": account.flow,
            "client_id": account.client_id,
            "scopes": scopes,
            "tenant": account.tenant,
        }

        def record(info: TokenInfo) -> None:
            if not info.fresh:
                return
            if interactive or self.app_only or account.flow == "token-command":
                audit.emit(audit.TokenRequested(**common))
            else:
                left = info.expires_at - time.time()
                expires_in = int(left) if math.isfinite(left) else None
                audit.emit(audit.TokenRefreshed(**common, expires_in=expires_in))

        try:
            yield record
        except ExoimapError as exc:
            explained = self._explained(exc)
            code = exc.code if isinstance(exc, AuthError) else None
            audit.emit(
                audit.TokenFailed(**common, aadsts=code, error=f"{type(exc).__name__}: {explained}")
            )
            if explained is exc:
                raise
            raise explained from exc

    def logout(self) -> bool:
        """Remove this account's stored tokens; True when there were some."""
        with self._mutex:
            self._last = None
            if self.account.flow == "token-command":
                return False
            with self.vault.lock(self.name):
                self._note_refresh(None)
                return self.vault.delete_token_cache(self.name)

    def refresh_token_last_used(self) -> float | None:
        """When the stored refresh token was last issued or used (epoch seconds)."""
        import msal

        if self.account.flow not in DELEGATED_FLOWS:
            return None
        stored = self.vault.load_token_cache(self.name)
        if stored is None:
            return None
        cache = msal.SerializableTokenCache()
        cache.deserialize(stored.reveal())
        newest: float | None = None
        for entry in cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN):
            raw = entry.get("last_modification_time") or entry.get("cached_at")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            newest = value if newest is None else max(newest, value)
        return newest

    # -- internals --

    def _msal(self) -> MsalAdapter:
        from exoimap.auth.flows import MsalAdapter

        if self._adapter is None:
            self._adapter = MsalAdapter(
                self.account,
                self.cloud,
                credential=lambda: self.vault.get_account_secret(self.name),
                retry=self._retry,
                http_timeout=self._http_timeout,
                say=self._say,
            )
        return self._adapter

    def _load_cache(self) -> msal.SerializableTokenCache:
        import msal

        cache = msal.SerializableTokenCache()
        stored = self.vault.load_token_cache(self.name)
        if stored is not None:
            try:
                cache.deserialize(stored.reveal())
            except ValueError:
                raise TokenExpiredOrRevoked(
                    f"account {self.name!r}: the stored sign-in could not be read",
                    fix=f"Sign in again: `exoimap login {self.name}`.",
                ) from None
        return cache

    def _save_if_changed(self, cache: msal.SerializableTokenCache) -> None:
        if cache.has_state_changed:
            self.vault.save_token_cache(self.name, Secret(cache.serialize()))
            cache.has_state_changed = False

    def _prune(self, cache: msal.SerializableTokenCache, min_validity: float) -> None:
        """Drop cached access tokens that expire within ``min_validity`` so MSAL refreshes."""
        import msal

        now = time.time()
        for entry in list(
            cache.search(
                msal.TokenCache.CredentialType.ACCESS_TOKEN,
                query={"client_id": self.account.client_id},
            )
        ):
            try:
                left = float(entry["expires_on"]) - now
            except (KeyError, TypeError, ValueError):
                left = 0.0
            if left < min_validity:
                cache.remove_at(entry)

    def _from_msal(self, min_validity: float) -> TokenInfo:
        adapter = self._msal()
        with self.vault.lock(self.name):
            cache = self._load_cache()
            try:
                self._warn_if_inactive(cache)
                self._prune(cache, min_validity)
                # Persist only what MSAL changes: a failed refresh leaves the vault untouched.
                cache.has_state_changed = False
                app = adapter.build(cache)
                if adapter.app_only:
                    result: Mapping[str, Any] | None = adapter.client_token(app)
                else:
                    result = adapter.silent(app, force_refresh=False)
            finally:
                # A rotated refresh token is saved the moment it arrives, whatever follows.
                self._save_if_changed(cache)
        if result is None:
            raise TokenExpiredOrRevoked(
                f"account {self.name!r} is not signed in",
                fix=f"Sign in with `exoimap login {self.name}`.",
            )
        return self._accept(result)

    def _interactive(self) -> TokenInfo:
        import msal

        adapter = self._msal()
        cache = msal.SerializableTokenCache()  # a new sign-in replaces the old one
        app = adapter.build(cache)
        if self.account.flow == "device":
            result = adapter.device_login(app)
        elif self.account.flow == "browser":
            result = adapter.browser_login(
                app, open_browser=self._open_browser, timeout=self._browser_timeout
            )
        else:
            result = adapter.client_token(app)
        with self.vault.lock(self.name):
            self._save_if_changed(cache)
        return self._accept(result)

    def _accept(self, result: Mapping[str, Any]) -> TokenInfo:
        token = Secret(str(result["access_token"]))
        fresh = result.get("token_source") != "cache"
        claims = read_claims(token)
        warnings: list[str] = []
        if claims is not None:
            scope = result.get("scope")
            warnings = check_token(
                claims,
                app_only=self.app_only,
                accepted_audiences=self.cloud.accepted_audiences,
                granted_scope=scope if isinstance(scope, str) else None,
            )
            if fresh:
                for warning in warnings:
                    logger.warning("account %s: %s", self.name, warning)
        if claims is not None and claims.expires_at is not None:
            expires_at = claims.expires_at
        else:
            expires_at = time.time() + float(result.get("expires_in", 0) or 0)
        # check_token raised unless the claims passed: a JWT here is a checked token
        return TokenInfo(token, expires_at, claims, fresh, tuple(warnings), claims is not None)

    def _from_command(self) -> TokenInfo:
        assert self.account.token_command is not None  # config.py requires it for the flow
        got = run_token_command(
            self.account.token_command, account=self.name, timeout=self._command_timeout
        )
        warnings: list[str] = []
        checked = got.claims is not None and self.account.cloud != "custom"
        if got.claims is not None and checked:
            # The user says this is a Microsoft cloud: hold the token to the same policy.
            warnings = check_token(
                got.claims, app_only=got.claims.app_only,
                accepted_audiences=self.cloud.accepted_audiences,
            )  # fmt: skip
            for warning in warnings:
                logger.warning("account %s: %s", self.name, warning)
        if got.expires_at is not None and got.expires_at <= time.time():
            raise AuthError(
                f"account {self.name!r}: the token command returned an expired token",
                fix="Check the token broker (it may need you to sign in again).",
            )
        expires = got.expires_at if got.expires_at is not None else math.inf
        return TokenInfo(got.token, expires, got.claims, True, tuple(warnings), checked)

    def _warn_if_inactive(self, cache: msal.SerializableTokenCache) -> None:
        import msal

        if self.app_only:
            return
        now = time.time()
        for entry in cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN):
            try:
                last = float(entry.get("last_modification_time") or entry.get("cached_at"))
            except (TypeError, ValueError):
                continue
            idle = now - last
            if idle >= REFRESH_TOKEN_WARN_AFTER:
                logger.warning(
                    "account %s: the refresh token was unused for %d days; Microsoft ends it "
                    "after 90 days without use (then `exoimap login %s` is needed)",
                    self.name,
                    idle // 86400,
                    self.name,
                )
